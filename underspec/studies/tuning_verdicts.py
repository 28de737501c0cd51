"""The findings and verdicts of "Tuning when seeds disagree", from the tables of a ``TuningStudy`` (this build)
or of the committed study (``committed_tables``), each decided with ``evidence.effect`` / ``equivalence``
(shown, contradicted, inconclusive):

- the seed study: the (K configurations, S seeds) validation scores cut into disjoint seed sets
  (``metrics.selection``): rank agreement, how often the winner changes, whether the winner chosen on one half
  is told apart from the runner-up on the other, and what keeping the best of k reruns adds;
- the shapes: depth against width at an equal parameter count, funnel against constant (seeds and test images
  resampled);
- over-parameterisation: the test error's curve over widths at each label-noise level, and its bump (a rise
  and a second descent);
- the tuners: the best validation value found against networks trained, and what each tuner picked (its test
  accuracy read once, after choosing).

Every interval is a 95% interval; the seeds are resampled by the delete-one-seed jackknife unless a row says
otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics.selection import best_of_k, best_of_k_inflation, gaps_to, single_seed_winners, split_agreement
from ..metrics.uncertainty import Estimate, seed_estimate
from ..text import interval, number
from .evidence import Verdict, effect, equivalence
from .tuning import NOISE

COMMITTED = "mnist5k-tuning"
TABLES = ("scores", "tuners", "shapes", "contrasts", "overparam")
LEVEL = 0.95


def committed_tables(results: str | Path) -> dict | None:
    """The committed study's tables and provenance (``scripts/tuning_results.py``), or None where it is not
    committed."""
    folder = Path(results) / COMMITTED
    if not (folder / "provenance.json").is_file():
        return None
    tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
    return {**tables, "provenance": json.loads((folder / "provenance.json").read_text())}


# ------------------------------------------------------------------------------------------ the seed study

def score_matrix(scores: pd.DataFrame, column: str = "value") -> tuple[pd.DataFrame, np.ndarray]:
    """The seed study as (configurations: one row per trial with ``number``, ``lr``, ``hidden``; (K, S) of
    ``column``), seeds in the order the study lists them."""
    seeds = list(dict.fromkeys(scores.seed))
    wide = scores.pivot(index="number", columns="seed", values=column)[seeds]
    configs = scores.drop_duplicates("number").set_index("number").loc[wide.index, ["lr", "hidden"]].reset_index()
    return configs, wide.to_numpy(float)


def _mean_spearman(v: np.ndarray, keep: np.ndarray) -> float:
    sub = v[:, keep]
    return float(split_agreement(sub, sub.shape[1] // 2).spearman.mean())


def _changed_share(v: np.ndarray, keep: np.ndarray) -> float:
    sub = v[:, keep]
    return float(1 - split_agreement(sub, sub.shape[1] // 2).same_winner.mean())


def _bounded(e: Estimate, low: float, high: float) -> Estimate:
    """An estimate with its interval clipped to the statistic's range (the jackknife's t interval knows none)."""
    return Estimate(e.value, max(low, e.low), min(high, e.high), e.method, e.n_seeds) if np.isfinite(e.low) else e


def seed_findings(scores: pd.DataFrame) -> dict:
    """The seed study in numbers: ``spearman`` and ``changed`` (Estimates: the mean rank correlation over every
    split into two halves, and the share of those splits whose halves crown different configurations), the
    ``splits`` table, ``alone`` (the share of single seeds whose lone winner differs from all seeds' winner),
    ``winner`` (all seeds' winner, a row of ``configs``), ``gaps`` (on the second half of the seeds, every
    configuration's paired gap to the first half's winner), ``tied`` (configurations the second half cannot
    tell from that winner), ``margin`` (the Estimate of the first half's winner against the second half's best
    other configuration, on the second half) and ``configs``."""
    configs, v = score_matrix(scores)
    k, s = v.shape
    splits = split_agreement(v, s // 2)
    everyone = int(np.argmax(v.mean(1)))
    first, second = np.arange(s // 2), np.arange(s // 2, s)
    chosen = int(np.argmax(v[:, first].mean(1)))
    gaps = gaps_to(v[:, second], chosen, level=LEVEL)
    rival = int(gaps.drop(index=chosen).gap.idxmin())  # the best other configuration on the second half
    d = v[chosen, second] - v[rival, second]
    half = stats.t.ppf((1 + LEVEL) / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
    return {"configs": configs, "splits": splits, "winner": everyone, "chosen": chosen, "rival": rival,
            "spearman": _bounded(seed_estimate(lambda keep: _mean_spearman(v, keep), s), -1.0, 1.0),
            "changed": _bounded(seed_estimate(lambda keep: _changed_share(v, keep), s), 0.0, 1.0),
            "alone": float(np.mean(single_seed_winners(v) != everyone)), "gaps": gaps,
            "tied": int((~gaps.drop(index=chosen).apart).sum()),
            "margin": Estimate(float(d.mean()), float(d.mean() - half), float(d.mean() + half), "t over seeds", len(d))}


def inflation(scores: pd.DataFrame) -> pd.DataFrame:
    """Keeping the best of k reruns, for the configuration all seeds crown: one row per k with
    ``validation`` (the expected best validation accuracy of k seeds minus the mean of all) and ``test`` (the
    expected test accuracy of the seed with the best validation accuracy among k, minus the mean test
    accuracy: what a user who reruns until validation looks good reports), exact from the S seeds' order
    statistics."""
    configs, v = score_matrix(scores)
    _, t = score_matrix(scores, "test_acc")
    w = int(np.argmax(v.mean(1)))
    val = best_of_k_inflation(v[w])
    test = best_of_k_inflation(t[w], by=v[w])
    return pd.DataFrame({"k": val.k, "validation": val.inflation, "test": test.inflation})


def test_inflation(scores: pd.DataFrame, k: int) -> Estimate:
    """The test inflation of the best of ``k`` by validation (``inflation``) with its seed interval."""
    _, v = score_matrix(scores)
    _, t = score_matrix(scores, "test_acc")
    w = int(np.argmax(v.mean(1)))
    return seed_estimate(lambda keep: best_of_k(t[w][keep], min(k, keep.sum()), by=v[w][keep]) - t[w][keep].mean(),
                         v.shape[1])


# ------------------------------------------------------------------------------------ over-parameterisation

def overparam_curve(overparam: pd.DataFrame) -> pd.DataFrame:
    """One row per (label_noise, hidden): the seeds' mean, ``low``, ``high`` (t interval over the seeds) and
    ``sd`` of the test error, and the mean train error."""
    rows = []
    for (noise, width), part in overparam.groupby(["label_noise", "hidden"]):
        e = part.test_error.to_numpy(float)
        half = stats.t.ppf((1 + LEVEL) / 2, len(e) - 1) * e.std(ddof=1) / np.sqrt(len(e)) if len(e) > 1 else np.nan
        rows.append({"label_noise": noise, "hidden": width, "parameters": int(part.parameters.iloc[0]),
                     "test_error": e.mean(), "low": e.mean() - half, "high": e.mean() + half,
                     "sd": e.std(ddof=1) if len(e) > 1 else np.nan, "train_error": part.train_error.mean()})
    return pd.DataFrame(rows)


def bump(errors: np.ndarray) -> float:
    """The double descent's bump of a test-error curve over widths (ascending): the largest, over the inner
    widths, of the smaller of its rise above the best narrower width and its height above the best wider one.
    Positive: the error rises and falls again; negative: no width stands above both sides."""
    errors = np.asarray(errors, dtype=float)
    heights = [min(errors[j] - errors[:j].min(), errors[j] - errors[j + 1:].min()) for j in range(1, len(errors) - 1)]
    return float(max(heights)) if heights else float("nan")


def bump_estimate(overparam: pd.DataFrame, noise: float) -> tuple[Estimate, int]:
    """``bump`` of the seeds' mean curve at label noise ``noise``, with the seed interval, and the width at its
    top."""
    part = overparam[overparam.label_noise == noise]
    wide = part.pivot(index="hidden", columns="seed", values="test_error").sort_index()
    v = wide.to_numpy(float)
    mean = v.mean(1)
    tops = [min(mean[j] - mean[:j].min(), mean[j] - mean[j + 1:].min()) for j in range(1, len(mean) - 1)]
    top = int(wide.index[1 + int(np.argmax(tops))]) if tops else -1
    return seed_estimate(lambda keep: bump(v[:, keep].mean(1)), v.shape[1]), top


# --------------------------------------------------------------------------------------------- the tuners

def trial_means(tuners: pd.DataFrame) -> pd.DataFrame:
    """One row per (tuner, repeat, trial): ``value`` (its seeds' mean validation accuracy), ``test_acc`` (their
    mean test accuracy), ``lr``, ``hidden``, ``networks`` (networks trained up to and with this trial)."""
    t = (tuners.groupby(["tuner", "repeat", "number"], sort=False)
         .agg(value=("value", "mean"), test_acc=("test_acc", "mean"), lr=("lr", "first"), hidden=("hidden", "first"),
              seeds=("seed", "count")).reset_index())
    t["networks"] = t.groupby(["tuner", "repeat"]).seeds.cumsum()
    return t


def tuner_curves(tuners: pd.DataFrame) -> pd.DataFrame:
    """The best validation value found against networks trained: one row per (tuner, networks) with the mean,
    ``low`` and ``high`` (smallest and largest) over the repeats (sampler seeds)."""
    t = trial_means(tuners)
    t["best"] = t.groupby(["tuner", "repeat"]).value.cummax()
    return (t.groupby(["tuner", "networks"], sort=False).best.agg(value="mean", low="min", high="max").reset_index())


def picks(tuners: pd.DataFrame) -> pd.DataFrame:
    """What every tuner picked, repeat by repeat: the trial with the best validation value (``lr``,
    ``hidden``, ``validation``) and, read once after choosing, its seeds' mean ``test`` accuracy."""
    t = trial_means(tuners)
    best = t.loc[t.groupby(["tuner", "repeat"], sort=False).value.idxmax()]
    return best[["tuner", "repeat", "lr", "hidden", "value", "test_acc"]].rename(
        columns={"value": "validation", "test_acc": "test"}).reset_index(drop=True)


def tuner_difference(tuners: pd.DataFrame, a: str, b: str) -> Estimate:
    """The best validation value that tuner ``a`` finds minus tuner ``b``'s at the whole budget, with a Welch
    t interval over their repeats (sampler seeds)."""
    p = picks(tuners)
    x, y = (p[p.tuner == name].validation.to_numpy(float) for name in (a, b))
    diff = x.mean() - y.mean()
    vx, vy = (z.var(ddof=1) / len(z) if len(z) > 1 else np.nan for z in (x, y))
    se = np.sqrt(vx + vy)
    if not np.isfinite(se):
        return Estimate(diff, np.nan, np.nan, "Welch t over sampler seeds", len(x))
    if se == 0:
        return Estimate(diff, diff, diff, "Welch t over sampler seeds", len(x))
    df = (vx + vy) ** 2 / (vx**2 / max(len(x) - 1, 1) + vy**2 / max(len(y) - 1, 1)) if vx + vy > 0 else len(x) - 1
    half = stats.t.ppf((1 + LEVEL) / 2, df) * se
    return Estimate(diff, diff - half, diff + half, "Welch t over sampler seeds", len(x))


# ------------------------------------------------------------------------------------------------ verdicts

def _row(claim, statistic, e: Estimate, verdict: str, finding: str, rule: str, source: str) -> dict:
    return Verdict(claim=claim, paper=source, statistic=statistic, value=e.value, low=e.low, high=e.high,
                   finding=finding, rule=rule, verdict=verdict).row()


def verdicts(tables: dict) -> pd.DataFrame:
    """Every claim of the chapter judged on ``tables`` (``TuningStudy.tables()`` or ``committed_tables``)."""
    rows = []
    seeds = seed_findings(tables["scores"])
    k, s = len(seeds["configs"]), tables["scores"].seed.nunique()
    rho, changed = seeds["spearman"], seeds["changed"]
    rows.append(_row("configurations rank alike on two disjoint sets of seeds", "Spearman rank correlation", rho,
                     effect(rho, +1), f"{k} configurations, {s} seeds cut every way into two halves: mean rank "
                     f"correlation {interval(rho.value, rho.low, rho.high)}", "shown when the interval lies above 0",
                     "the issue"))
    rows.append(_row("the seeds change which configuration wins", "share of splits whose halves crown different "
                     "configurations", changed, effect(changed, +1),
                     f"{changed.value:.0%} of the splits into halves; one seed alone crowns another configuration "
                     f"than all {s} do for {seeds['alone']:.0%} of the seeds", "shown when the interval lies above 0",
                     "the issue"))
    m = seeds["margin"]
    rows.append(_row("the winner on one half of the seeds beats the runner-up on the other half",
                     "validation accuracy, winner - best other (fresh seeds)", m, effect(m, +1),
                     f"{seeds['tied']} of the other {k - 1} configurations cannot be told from it on the fresh "
                     "seeds (paired t interval includes 0)", "shown when the interval lies above 0", "the issue"))
    half = max(1, s // 2)
    e = test_inflation(tables["scores"], half)
    rows.append(_row(f"keeping the best of {half} reruns (by validation) raises the test accuracy",
                     f"test accuracy, best of {half} by validation - mean", e, effect(e, +1),
                     f"validation inflation of the best of {half}: "
                     f"{number(inflation(tables['scores']).set_index('k').validation.get(half, np.nan))}; test: "
                     f"{interval(e.value, e.low, e.high)}", "shown when the interval lies above 0",
                     "a user who reruns until it looks good"))
    contrasts = tables["contrasts"].set_index(["contrast", "metric"])
    deep = contrasts.loc[(next(c for c in contrasts.index.get_level_values(0) if c.startswith("depth")), "accuracy")]
    e = Estimate(deep.value, deep.low, deep.high, "crossed jackknife", 0)
    rows.append(_row("at an equal parameter count, the deeper network is more accurate", "test accuracy, depth 4 - "
                     "depth 1", e, effect(e, +1), f"{interval(e.value, e.low, e.high)} (seeds and test images "
                     "resampled)", "shown when the interval lies above 0", "the lecture: deep MLPs are more "
                     "efficient than wide ones"))
    shapes = tables["shapes"]
    constant = shapes[(shapes.widths == "64-64-64") & (shapes.metric == "accuracy")].iloc[0]
    funnel = contrasts.loc[("funnel - constant", "accuracy")]
    e = Estimate(funnel.value, funnel.low, funnel.high, "crossed jackknife", 0)
    margin = (constant.high - constant.low) / 2  # the constant shape's own seed interval, half-width
    rows.append(_row("a funnel (64-32-16) is as accurate as a constant shape (64-64-64)", "test accuracy, funnel - "
                     "constant", e, equivalence(e, margin), f"{interval(e.value, e.low, e.high)}; margin ±"
                     f"{number(margin, sign=False)}, the half-width of the constant shape's own interval",
                     "equivalence within the margin", "the lecture: try both"))
    over = tables["overparam"]
    for noise in NOISE:
        e, top = bump_estimate(over, noise)
        rows.append(_row(f"test error against width rises and falls again (double descent), label noise "
                         f"{noise:.0%}", "bump of the test error (rise and second descent)", e, effect(e, +1),
                         f"largest bump {number(e.value)} at width {top}" if top > 0 else "too few widths",
                         "shown when the interval lies above 0; contradicted below 0 (no width above both sides)",
                         "the lecture: a farewell to the bias-variance trade-off"))
    for other in ("random", "grid"):
        e = tuner_difference(tables["tuners"], "tpe", other)
        rows.append(_row(f"TPE finds a better validation value than {other} search on the same budget",
                         f"best validation accuracy, TPE - {other}", e, effect(e, +1),
                         f"{interval(e.value, e.low, e.high)} over {e.n_seeds} sampler seeds each",
                         "shown when the interval lies above 0 (Welch t over the sampler seeds)",
                         "the lecture: Bayesian optimisation against grid search"))
    return pd.DataFrame(rows)


"""The verdicts of the chapter "How many seeds?", each decided against the null that fits it with
``evidence.effect`` / ``evidence.equivalence`` (shown, contradicted, inconclusive), from the tables of a
``SeedStudy`` (this build) or of the committed full-size seed study (``committed_tables``).

- how many seeds: two disjoint references of the paper's seven seeds at alpha-hat 0 (within the grid's
  resolution, its smallest non-zero level); a held-out seed as far from seven seeds as from the most, and the
  M from which the held-out curve is flat (``plateau``);
- expressiveness: the share of the setting pairs that accuracy cannot tell apart which alpha-hat tells apart,
  against the share a 95% interval separates by chance (5%), its interval from deleting one setting at a
  time (pairs share settings, as seed pairs share seeds);
- the laws: the disagreement equality and Jordan's spread at the most seeds, every source of randomness as
  diverse as both together; each an equivalence within a tenth of its signal (``evidence.MARGIN_SHARE``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import UnderspecError
from ..metrics.seed_laws import LEVEL, curve_difference, curve_estimates, replicate_estimate, separations
from ..metrics.uncertainty import Estimate, estimate, pair_estimate, seed_estimate
from ..text import interval, number
from .evidence import MARGIN_SHARE, SHOWN, Verdict, effect, equivalence
from .seeds import OUTPUT_NAMES, RESOLUTION

METRICS = {"accuracy": "test accuracy", "churn": "churn (disagreement)", "ece": "calibration error (ECE)",
           "alpha_hat": "alpha-hat"}
COMMITTED = "fashion-mnist-40-seeds"


def _estimate(row, prefix: str = "") -> Estimate:
    return Estimate(float(row[f"{prefix}value" if prefix else "value"]), float(row[f"{prefix}low"]),
                    float(row[f"{prefix}high"]), "jackknife", 0)


# ------------------------------------------------------------------------------------------- expressiveness

def _replicates(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray], int]:
    columns = sorted((c for c in table if c.startswith("r") and c[1:].isdigit()), key=lambda c: int(c[1:]))
    keys = table[table.metric == "accuracy"][["l1", "n_classes"]].reset_index(drop=True)
    reps = {m: part[columns].to_numpy(float) for m, part in table.groupby("metric", sort=False)}
    return keys, reps, len(columns)


def expressiveness(table: pd.DataFrame, n_seeds: int, n_blocks: int) -> pd.DataFrame:
    """Every setting's four summaries with their intervals (seeds and test images resampled), from
    ``SeedStudy.setting_replicates``: one row per (l1, n_classes, metric)."""
    keys, reps, _ = _replicates(table)
    rows = []
    for metric, r in reps.items():
        for (lam, c), row in zip(keys.itertuples(index=False), r):
            e = replicate_estimate(row, n_seeds)
            rows.append({"l1": lam, "n_classes": c, "metric": metric, "value": e.value, "low": e.low, "high": e.high})
    return pd.DataFrame(rows)


def separation_shares(table: pd.DataFrame, n_seeds: int) -> pd.DataFrame:
    """For every ordered pair of summaries (``metric``, ``other``): the share of the setting pairs that
    ``other`` cannot tell apart which ``metric`` tells apart (each difference's 95% interval, seeds and images
    resampled), minus the 5% a 95% interval separates by chance, with the interval of deleting one setting at
    a time, widened by the share's binomial spread over the pairs (Agresti-Coull). One row per pair: ``pairs`` (that ``other`` cannot separate), ``share``, ``excess``, ``low``,
    ``high``."""
    keys, reps, _ = _replicates(table)
    found = {m: separations(r, n_seeds) for m, r in reps.items()}
    rows = []
    for metric in found:
        for other in found:
            if metric == other:
                continue
            v = np.where(found[other], np.nan, found[metric].astype(float))
            np.fill_diagonal(v, np.nan)
            pairs = int(np.isfinite(v[np.triu_indices(len(v), 1)]).sum())
            e = estimate(v[None], lambda means: float(means[0]) - (1 - LEVEL)) if pairs else \
                Estimate(np.nan, np.nan, np.nan, "jackknife", len(v))
            if pairs and np.isfinite(e.low):  # and the share's own binomial spread (Agresti-Coull), which a
                hits = (e.value + 1 - LEVEL) * pairs  # jackknife of identical deletions (all 0) cannot see
                p = (hits + 2) / (pairs + 4)
                half = np.hypot(e.high - e.value, stats.norm.ppf((1 + LEVEL) / 2) * np.sqrt(p * (1 - p) / pairs))
                e = Estimate(e.value, e.value - half, e.value + half, "jackknife and binomial", len(v))
            rows.append({"metric": metric, "other": other, "pairs": pairs, "share": e.value + (1 - LEVEL),
                         "excess": e.value, "low": e.low, "high": e.high})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ verdicts

def seeds_verdicts(draws: pd.DataFrame, n_seeds: int, paper_seeds: int, regime: str) -> list[Verdict]:
    """How many seeds the paper's ``paper_seeds`` were worth, from a ``seeds_curve`` table of ``n_seeds``."""
    curve = curve_estimates(draws, n_seeds)
    out = []
    two = curve[curve.kind == "two references"].set_index("m")
    reached = [m for m, r in two.iterrows() if equivalence(_estimate(r), RESOLUTION) == SHOWN]
    said = (f"two references reach 0 from M = {reached[0]}" if reached else "no M here brings two references to 0")
    if paper_seeds in two.index:
        e = _estimate(two.loc[paper_seeds])
        out.append(Verdict(f"{regime}: two disjoint ensembles of {paper_seeds} seeds are one distribution",
                           "the paper's 7 seeds: each against seed 0", f"alpha-hat, {paper_seeds} vs {paper_seeds} seeds",
                           e.value, e.low, e.high, f"{interval(e.value, e.low, e.high)}; {said}",
                           f"equivalence to 0 within the grid's resolution {RESOLUTION}",
                           equivalence(e, RESOLUTION)))
    held = curve[curve.kind == "held-out"]
    ms = [m for m in held.m if m > paper_seeds]
    if paper_seeds in set(held.m) and ms:
        tests = {m: curve_difference(draws, "held-out", paper_seeds, m, n_seeds) for m in ms}
        testable = [m for m, e in tests.items() if np.isfinite(e.low)]
        top = max(testable) if testable else max(ms)
        e = tests[top]
        flat, last = plateau(draws, n_seeds)
        where = (f"the held-out curve is flat (within {RESOLUTION} of M = {last}) from M = {flat}" if flat is not None
                 else f"the held-out curve is not yet flat (within {RESOLUTION} of M = {last}) at any M tested")
        out.append(Verdict(f"{regime}: one seed is as far from {paper_seeds} seeds as from {top}",
                           "not asked", f"alpha-hat held out, M = {paper_seeds} minus M = {top}", e.value, e.low,
                           e.high, f"{interval(e.value, e.low, e.high)}; {where}",
                           f"equivalence within the grid's resolution {RESOLUTION}", equivalence(e, RESOLUTION)))
    return out


def plateau(draws: pd.DataFrame, n_seeds: int, *, resolution: float = RESOLUTION) -> tuple[int | None, int]:
    """Where the held-out curve of a ``seeds_curve`` table stops falling: the smallest M from which alpha-hat
    at every M up to a reference M, minus alpha-hat at the reference, is shown equivalent to 0 within
    ``resolution`` (``curve_difference``'s delete-one-seed interval). The reference is the largest M up to
    S // 2 (where the two-reference curve stops), so that every draw leaves out at least as many seeds as it
    holds: beyond it the draws overlap so much that the jackknife's interval widens by construction (at
    M = S - 1 every draw holds every seed, and there is none). (M, the reference), or (None, the reference)
    when no M is (the curve still falls, or the seeds are too few to tell)."""
    ms = sorted(int(m) for m in draws[draws.kind == "held-out"].m.unique())
    if not ms:
        raise UnderspecError("the curve has no 'held-out' draws")
    last = max([m for m in ms if m <= n_seeds // 2] or ms[:1])
    flat = None
    for m in reversed([m for m in ms if m < last]):
        if equivalence(curve_difference(draws, "held-out", m, last, n_seeds), resolution) != SHOWN:
            break
        flat = m
    return flat, last


def laws_verdicts(laws: pd.DataFrame, regime: str) -> list[Verdict]:
    """The disagreement equality and Jordan's spread at the configuration with the most seeds; the finding
    counts the outcomes over the grid's configurations."""
    out = []
    best = laws.sort_values("n_seeds").iloc[-1]
    margin = MARGIN_SHARE * float(best.error)
    outcomes = [equivalence(Estimate(r.gap, r.gap_low, r.gap_high, "", 0), MARGIN_SHARE * r.error)
                for r in laws.itertuples()]
    counts = ", ".join(f"{outcomes.count(o)} {o}" for o in dict.fromkeys(outcomes))
    e = Estimate(float(best.gap), float(best.gap_low), float(best.gap_high), "multibootstrap", int(best.n_seeds))
    out.append(Verdict(f"{regime}: disagreement between two seeds equals their test error (Jiang et al.)",
                       "not asked", f"disagreement - error, {int(best.n_seeds)} seeds", e.value, e.low, e.high,
                       f"{interval(e.value, e.low, e.high)} at error {number(best.error, sign=False)}; over the "
                       f"{len(laws)} configurations: {counts}",
                       f"equivalence within a tenth of the error ({number(margin, sign=False)})",
                       equivalence(e, margin)))
    e = Estimate(float(best.ratio) - 1, float(best.ratio_low) - 1, float(best.ratio_high) - 1, "crossed", 0)
    out.append(Verdict(f"{regime}: the seed spread of accuracy is that of independent examples (Jordan)",
                       "not asked", f"observed / predicted SD - 1, {int(best.n_seeds)} seeds", e.value, e.low, e.high,
                       f"observed SD {number(best.observed_sd, 4, sign=False)}, predicted "
                       f"{number(best.predicted_sd, 4, sign=False)}", f"equivalence within {MARGIN_SHARE}",
                       equivalence(e, MARGIN_SHARE)))
    return out


def sources_verdicts(sources: pd.DataFrame, regime: str) -> list[Verdict]:
    """Every source of randomness alone as diverse as both (Summers and Dinneen)."""
    both = sources[sources.source == "both (the paper)"].iloc[0]
    margin = MARGIN_SHARE * float(both.value)
    out = []
    for r in sources[sources.source != "both (the paper)"].itertuples():
        e = Estimate(r.minus_both, r.minus_both_low, r.minus_both_high, "crossed", 0)
        out.append(Verdict(f"{regime}: {r.source} gives the diversity of both seeds", "not asked",
                           f"disagreement, {r.source} minus both", e.value, e.low, e.high,
                           interval(e.value, e.low, e.high),
                           f"equivalence within a tenth of both's disagreement ({number(margin, sign=False)})",
                           equivalence(e, margin)))
    return out


def separation_verdict(shares: pd.DataFrame, regime: str) -> Verdict:
    row = shares[(shares.metric == "alpha_hat") & (shares.other == "accuracy")].iloc[0]
    e = Estimate(row.excess, row.low, row.high, "jackknife", 0)
    return Verdict(f"{regime}: alpha-hat separates settings that accuracy does not", "the alpha-trimming paper: "
                   "more expressive than accuracy, churn or ECE", "share separated minus the 5% of chance",
                   e.value, e.low, e.high, f"{number(row.share, sign=False)} of {int(row.pairs)} setting pairs",
                   "effect above chance (settings deleted one at a time)", effect(e, +1))


def committed_tables(results: str | Path) -> dict | None:
    """The committed full-size seed study's tables (``scripts/seed_study.py``), or None when not yet run."""
    folder = Path(results) / COMMITTED
    names = ("seeds", "laws", "members", "study")
    if not all((folder / f"{n}.parquet").is_file() for n in names[:3]):
        return None
    import json

    try:
        tables = {n: pd.read_parquet(folder / f"{n}.parquet") for n in names[:3]}
    except Exception as exc:  # a Git LFS pointer never pulled, a damaged file
        raise UnderspecError(f"{folder}: cannot read the committed seed study ({exc.__class__.__name__}): pull or "
                             "rerun it with python scripts/seed_study.py") from None
    tables["provenance"] = json.loads((folder / "provenance.json").read_text())
    tables["study"] = json.loads((folder / "study.json").read_text())
    return tables


def verdict_rows(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([v.row() for v in verdicts])



# ------------------------------------------------------------------------------- summaries for the figures

def kernel_estimates(pairs: pd.DataFrame) -> pd.DataFrame:
    """The mean alignment between seeds per (hidden, kernel, record) of ``SeedStudy.kernels``'s pairs, with its
    interval (seeds and probe images resampled: ``uncertainty.pair_estimate``)."""
    rows = []
    for (hidden, kernel, record), part in pairs.groupby(["hidden", "kernel", "record"], sort=True):
        e = pair_estimate(part, "alignment")
        rows.append({"hidden": int(hidden), "kernel": kernel, "record": record, "value": e.value, "low": e.low,
                     "high": e.high})
    return pd.DataFrame(rows)


def seed_means(table: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    """The mean over seeds of ``columns`` per group of ``by``, each with its t interval over the seeds
    (``<column>_low``, ``<column>_high``)."""
    rows = []
    for key, part in table.groupby(by, sort=True):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for column in columns:
            v = part[column].to_numpy(float)
            half = stats.t.ppf((1 + LEVEL) / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
            row.update({column: v.mean(), f"{column}_low": v.mean() - half, f"{column}_high": v.mean() + half})
        rows.append(row)
    return pd.DataFrame(rows)


def outputs_table(compared: pd.DataFrame, used: str) -> pd.DataFrame:
    """``SeedStudy.outputs_compared`` for the page: per scalar output, the mean alpha-hat of a seed against the
    rest with its seed interval, and the rank correlation over the seeds with the output the book uses."""
    base = compared[compared.output == used].set_index("seed").alpha_hat.rank()
    rows = []
    for output, part in compared.groupby("output", sort=False):
        v = part.alpha_hat.to_numpy(float)
        e = seed_estimate(lambda keep: v[keep].mean(), len(v))
        rows.append({"scalar": OUTPUT_NAMES[output], "alpha-hat of a seed vs the rest [95%]":
                     interval(e.value, e.low, e.high, sign=False),
                     f"rank correlation over seeds with the {used}": part.set_index("seed").alpha_hat.rank().corr(base)})
    return pd.DataFrame(rows)


def committed_curves(committed: dict) -> pd.DataFrame:
    """The committed study's curves with intervals and its exchangeable-seeds null, as ``SeedStudy.curves``."""
    draws, n = committed["seeds"], int(committed["study"]["n_seeds"])
    found = curve_estimates(draws[~draws.null].drop(columns="null"), n)
    null = curve_estimates(draws[draws.null].drop(columns="null"), n)[["kind", "m", "value"]]
    return found.merge(null.rename(columns={"value": "null"}), on=["kind", "m"], how="left")


def chapter_verdicts(study, committed: dict | None) -> pd.DataFrame:
    """Every verdict of the chapter: this build's (how many seeds, expressiveness, the laws, the sources) and,
    where committed, the full-size study's (how many seeds, the laws)."""
    regime = study.data.name
    paper_seeds = len(study.grid.seeds)
    verdicts = seeds_verdicts(study.curve_draws(), len(study.specs["many"].grid.seeds), paper_seeds, regime)
    if committed is not None:
        name = f"{committed['study']['dataset']} (full size, committed)"
        draws = committed["seeds"]
        verdicts += seeds_verdicts(draws[~draws.null].drop(columns="null"), int(committed["study"]["n_seeds"]),
                                   paper_seeds, name)
    verdicts.append(separation_verdict(separation_shares(study.setting_replicates(), paper_seeds), regime))
    verdicts += laws_verdicts(study.laws(), regime)
    if committed is not None:
        verdicts += laws_verdicts(committed["laws"], name)
    verdicts += sources_verdicts(study.sources(), regime)
    return verdict_rows(verdicts)

"""Intervals and verdicts for "Redundancy and width", from the tables of ``redundancy.RedundancyStudy``.

Every interval resamples the seeds (delete-one-seed jackknife, 95%, ``uncertainty.seed_estimate``; for seed
pairs ``uncertainty.estimate`` on the pair array): the same seeds train every width, so a trend over widths is
a statistic of the seeds and is resampled as one. A trend "per doubling" is the least-squares slope against
log2(width) of the seed means; a growth factor per doubling is 2 to the slope of log2(count) against
log2(width) (2: the count doubles with the width; 1: it stays). Every verdict is one of ``evidence``'s outcomes
and names what decided it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics.uncertainty import Estimate, estimate, pair_array, seed_estimate
from ..text import fmt_l1, interval
from .evidence import CONTRADICTED, NOT_TESTABLE, SHOWN, effect, equivalence
from .redundancy import CLUSTER_K, LOW_RANK_K

FIXED, EQUAL = "fixed epochs", "equal training loss"


def rule_of(stop_loss) -> str:
    return FIXED if stop_loss is None or pd.isna(stop_loss) else EQUAL


def seed_matrix(members: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(S, W) values of ``column`` per seed and width (NaN where missing), and the widths (W,)."""
    table = members.pivot_table(index="seed", columns="hidden", values=column, aggfunc="mean", dropna=False)
    return table.to_numpy(dtype=float), table.columns.to_numpy(dtype=float)


def _mean(a: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.nanmean(a, 0) if np.isfinite(a).any() else np.full(a.shape[1:], np.nan)


def seed_estimates(table: pd.DataFrame, value: str, by: list[str]) -> pd.DataFrame:
    """The mean of ``value`` over the seeds of every group of ``by``, with its interval (seeds resampled): one row
    per group with ``by``, ``value``, ``low``, ``high``. ``table`` has a ``seed`` column; several rows of one seed
    in a group are averaged first."""
    rows = []
    for key, group in table.groupby(by, sort=True, dropna=False):
        per_seed = group.groupby("seed")[value].mean().to_numpy(dtype=float)
        e = seed_estimate(lambda keep, v=per_seed: float(np.nanmean(v[keep])) if np.isfinite(v[keep]).any() else np.nan,
                          len(per_seed))
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "value": e.value, "low": e.low,
                     "high": e.high})
    return pd.DataFrame(rows)


def slope_estimate(members: pd.DataFrame, column: str, *, log: bool = False) -> Estimate:
    """The change per doubling of width of the seed mean of ``column`` (of log2 of it with ``log``): the slope
    against log2(width), seeds resampled."""
    values, widths = seed_matrix(members, column)

    def statistic(keep):
        mean = _mean(values[keep])
        if log:
            mean = np.log2(np.where(mean > 0, mean, np.nan))
        ok = np.isfinite(mean)
        return float(np.polyfit(np.log2(widths[ok]), mean[ok], 1)[0]) if ok.sum() >= 2 else np.nan
    return seed_estimate(statistic, len(values))


def growth(members: pd.DataFrame, column: str) -> Estimate:
    """The growth factor per doubling of width of ``column`` (a count), 2 ** slope of log2(count), with its
    interval (seeds resampled)."""
    e = slope_estimate(members, column, log=True)
    return Estimate(2 ** e.value, 2 ** e.low, 2 ** e.high, e.method, e.n_seeds)


def pair_excess(pairs: pd.DataFrame, value: str, chance: str) -> Estimate:
    """The mean over seed pairs of ``value`` - ``chance`` (one width and λ), seeds resampled."""
    part = pairs.assign(_excess=pairs[value] - pairs[chance])
    return estimate(pair_array(part, "_excess", [])[2])


def shifted(e: Estimate, by: float) -> Estimate:
    return Estimate(e.value - by, e.low - by, e.high - by, e.method, e.n_seeds)


def _cell(outcome: str, e: Estimate, digits: int = 3, sign: bool = True) -> str:
    return f"{outcome}: {interval(e.value, e.low, e.high, digits, sign=sign)}"


def regime_slices(members: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The regimes of the verdict table: depth 1 at fixed epochs, depth 1 at equal loss (the widths whose every
    network reached the loss), and the deeper line at fixed epochs."""
    rule = members.stop_loss.map(rule_of)
    deep = members.depth.max()
    slices = {f"depth 1, {FIXED}": members[(members.depth == 1) & (rule == FIXED)],
              f"depth 1, {EQUAL}": members[(members.depth == 1) & (rule == EQUAL)]}
    equal = slices[f"depth 1, {EQUAL}"]
    reached = equal.groupby("hidden").reached.transform("all")
    slices[f"depth 1, {EQUAL}"] = equal[reached]
    if deep > 1:
        slices[f"depth {deep}, {FIXED}"] = members[(members.depth == deep) & (rule == FIXED)]
    return slices


def verdicts(members: pd.DataFrame, full: dict[str, pd.DataFrame], tickets: pd.DataFrame, l1: float) -> pd.DataFrame:
    """The project's hypotheses judged at L1 strength ``l1`` in every regime (``regime_slices``): one row per
    hypothesis, a column per regime ("outcome: estimate [95% interval]", or "—" where the regime does not
    measure it), and what decided it. ``members``: every run's members table; ``full``: the width run's
    "lowrank", "clusters", "pairs" and "members"; ``tickets``: the ticket table (λ = its own, the first)."""
    slices = {name: part[part.l1 == l1] for name, part in regime_slices(members).items()}
    fixed = f"depth 1, {FIXED}"
    rows = []

    def per_regime(statistic, judge, growing=False):
        cells = {}
        for name, part in slices.items():
            if part.hidden.nunique() < 2:
                cells[name] = f"{NOT_TESTABLE} (fewer than 2 widths)"
                continue
            e = statistic(part)
            cells[name] = _cell(judge(e), e, sign=e.value < 0 or not growing)
        return cells

    def excess(column, null):
        return lambda part: slope_estimate(part.assign(_x=part[column] - part[null]), "_x")

    rows.append({"hypothesis": "repeated units grow with width", **per_regime(
        excess("repeated", "repeated_untrained"), lambda e: effect(e, +1)),
        "statistic, decided against": "slope per doubling of the mean repeated count (|r| >= 0.5) above the "
                                      "untrained network's; against no change (0)"})
    rows.append({"hypothesis": "prunable units grow with width", **per_regime(
        excess("prunable_random", "prunable_random, untrained"), lambda e: effect(e, +1)),
        "statistic, decided against": "slope per doubling of prunability (random knock-out, agreement 0.8) above "
                                      "the untrained network's; against no change (0)"})
    rows.append({"hypothesis": "the non-prunable part grows slower than width", **per_regime(
        lambda part: growth(part, "nonprunable"), lambda e: effect(Estimate(np.log2(e.value) - 1, np.log2(e.low) - 1,
                                                                            np.log2(e.high) - 1, e.method, e.n_seeds), -1),
        growing=True),
        "statistic, decided against": "growth factor per doubling of the non-prunable count (1 - prunability) x "
                                      "units; against 2 (growing as fast as the width)"})
    rows.append({"hypothesis": "distance from init falls with width", **per_regime(
        lambda part: slope_estimate(part, "rel_dist"), lambda e: effect(e, -1)),
        "statistic, decided against": "slope per doubling of ||W1 - W1_0||_F / ||W1_0||_F; against no change (0)"})
    widest = full["members"][full["members"].l1 == l1].hidden.max()
    one = {k: v[(v.l1 == l1) & (v.hidden == widest)] for k, v in full.items()}
    acc_sd = float(one["members"].test_acc.std())
    low = one["lowrank"]
    k = min(LOW_RANK_K, int(low["rank"].max()))
    gap = low[(low.kind == "top") & (low.k == k)].set_index("seed").acc - one["members"].set_index("seed").test_acc
    e = seed_estimate(lambda keep, v=gap.to_numpy(): float(np.mean(v[keep])), len(gap))
    rows.append({"hypothesis": "W - W0 is effectively low-rank", fixed: _cell(equivalence(e, acc_sd), e),
                 "statistic, decided against": f"test accuracy with the rank-{k} update minus the trained network's, "
                                               f"width {widest}; equivalence within the seeds' s.d. of accuracy "
                                               f"({acc_sd:.3f})"})
    if tickets is None or not (tickets.l1 == l1).any():
        said = "no tickets in this study" if tickets is None else f"tickets at λ = {fmt_l1(tickets.l1.iloc[0])} only"
        rows.append({"hypothesis": "unit-level tickets do not beat a fresh narrow network at equal compute",
                     fixed: f"— ({said})", "statistic, decided against": ""})
    else:
        rows.append(_ticket_row(tickets, fixed))
    cl = one["clusters"][one["clusters"].k == CLUSTER_K].pivot_table(index="seed", columns="which", values="silhouette")
    diff = (cl["trained"] - cl["init"]).to_numpy()
    e = seed_estimate(lambda keep: float(np.mean(diff[keep])), len(diff))
    rows.append({"hypothesis": "trained weight vectors cluster more than at init", fixed: _cell(effect(e, +1), e),
                 "statistic, decided against": f"silhouette (cosine, k = {CLUSTER_K}) trained minus at init, width "
                                               f"{widest}; against no change (0)"})
    e = pair_excess(one["pairs"], "overlap", "overlap_chance")
    rows.append({"hypothesis": "seeds agree on which units are redundant", fixed: _cell(effect(e, +1), e),
                 "statistic, decided against": f"overlap of the droppable units after matching, width {widest}; "
                                               "against its chance level sqrt(|A||B|) / H"})
    table = pd.DataFrame(rows)
    columns = ["hypothesis", *slices, "statistic, decided against"]
    return table.reindex(columns=columns).fillna("—").rename(columns=lambda c: c if c in ("hypothesis",) else c)


def _ticket_row(t: pd.DataFrame, column: str) -> dict:
    """Rewound ticket (|v|·||u||) against Scratch-B: not better than the margin (the s.d. of Scratch-B over
    seeds) is shown, better by more is contradicted."""
    ticket = t[(t.variant == "rewind") & (t.score == "|v|·||u||")].groupby("seed").test_acc.mean()
    scratch = t[t.variant == "scratch-B"].groupby("seed").test_acc.mean()
    margin = float(t[t.variant == "scratch-B"].groupby("k").test_acc.std().mean())
    diff = (ticket - scratch).to_numpy()
    e = seed_estimate(lambda keep: float(np.mean(diff[keep])), len(diff))
    return {"hypothesis": "unit-level tickets do not beat a fresh narrow network at equal compute",
            column: _cell(effect(shifted(e, margin), -1), e),
            "statistic, decided against": "test accuracy of the rewound ticket (|v|·||u||) minus Scratch-B, mean over "
                                          f"k, first λ; shown below the margin {margin:.3f} (the s.d. of Scratch-B over "
                                          "seeds), contradicted above it"}


def growth_table(members: pd.DataFrame) -> pd.DataFrame:
    """Growth factor per doubling of width (2: as fast as the width) of the non-prunable and the non-redundant
    parts, every regime and λ, with intervals."""
    rows = []
    for name, part in regime_slices(members).items():
        for l1, sub in part.groupby("l1"):
            if sub.hidden.nunique() < 2:
                continue
            for column, label in (("nonprunable", "non-prunable units"), ("nonredundant", "non-redundant units (groups)")):
                e = growth(sub, column)
                rows.append({"regime": name, "λ": fmt_l1(l1), "part": label,
                             "growth per doubling": interval(e.value, e.low, e.high, sign=False),
                             "slower than width": effect(Estimate(np.log2(e.value) - 1, np.log2(e.low) - 1,
                                                                  np.log2(e.high) - 1, e.method, e.n_seeds), -1)
                             == SHOWN})
    return pd.DataFrame(rows)


def width_series(members: pd.DataFrame, items: list[dict]) -> pd.DataFrame:
    """Figure rows against width: for every item {"panel", "series", "column", "null" (bool, optional),
    "where" (a dict of column values, optional)} the seed means of ``column`` at every width with their
    intervals: columns panel, series, hidden, value, low, high, null."""
    rows = []
    for item in items:
        part = members
        for key, value in item.get("where", {}).items():
            part = part[part.stop_loss.map(rule_of) == value] if key == "rule" else part[part[key] == value]
        if part.empty or part[item["column"]].isna().all():
            continue
        e = seed_estimates(part.assign(_v=part[item["column"]]), "_v", ["hidden"])
        rows.append(e.assign(panel=item["panel"], series=item["series"], null=item.get("null", False)))
    if not rows:
        return pd.DataFrame(columns=["hidden", "value", "low", "high", "panel", "series", "null"])
    return pd.concat(rows, ignore_index=True)


def curve_series(table: pd.DataFrame, *, x: str, value: str, panel: str, series: str, null=()) -> pd.DataFrame:
    """Figure rows of a curve table (knock-out agreement, low-rank accuracy, silhouettes, spectra): the seed mean
    of ``value`` at every ``x`` for every ``panel`` and ``series`` column value, intervals seeds resampled;
    series named in ``null`` are drawn as nulls."""
    e = seed_estimates(table, value, [panel, series, x])
    return e.rename(columns={panel: "panel", series: "series"}).assign(null=lambda t: t.series.isin(list(null)))


def pair_series(pairs: pd.DataFrame, items: list[dict]) -> pd.DataFrame:
    """Figure rows of seed-pair measures against width: for every item {"panel", "series", "column", "null"
    (optional), "l1"} the mean over the pairs at every width, seeds resampled (pair jackknife)."""
    rows = []
    for item in items:
        part = pairs[pairs.l1 == item["l1"]]
        for hidden, group in part.groupby("hidden"):
            e = estimate(pair_array(group, item["column"], [])[2])
            rows.append({"hidden": hidden, "value": e.value, "low": e.low, "high": e.high, "panel": item["panel"],
                         "series": item["series"], "null": item.get("null", False)})
    return pd.DataFrame(rows)


def ticket_series(tickets: pd.DataFrame) -> pd.DataFrame:
    """The ticket table as figure rows: one per k and variant (and score), the seed mean of test accuracy with
    its interval."""
    t = tickets[tickets.variant != "original"].assign(
        series=lambda d: np.where(d.score == "", d.variant, d.variant + " (" + d.score + ")"))
    return seed_estimates(t, "test_acc", ["k", "series"])


PROFILE = {  # column of the members table -> (what it is, its null column or None)
    "test_acc": ("test accuracy", None),
    "repeated": ("repeated count per unit (|r| >= 0.5)", "repeated_untrained"),
    "repeated_rotated": ("  the same, rotation null", None),
    "nonredundant": ("non-redundant units (groups)", None),
    "prunable_random": ("prunability, random knock-out", "prunable_random, untrained"),
    "prunable_targeted": ("prunability, targeted (by |r|)", None),
    "nonprunable": ("non-prunable units", None),
    "compressibility": ("compressibility (5% of variance)", "compressibility_untrained"),
    "dead": ("dead units", None),
    "merged_0.0001": ("positively parallel units (1 - cos <= 1e-4)", None),
    "flipped_0.0001": ("sign-flipped pairs (1 - |cos| <= 1e-4)", None),
    "rel_dist": ("||W1 - W1_0|| / ||W1_0||", None),
    "capacity_sum": ("sum of ||v_i|| ||u_i - u_i^0||", None),
    "margin5": ("5th-percentile training margin", None),
    "capacity": ("the same / the margin (where > 0)", None),
    "alpha_w": ("power-law alpha of W1's spectrum", None),
}


def profile(members: pd.DataFrame, hidden: int, l1: float) -> pd.DataFrame:
    """One width at depth 1, fixed epochs, by every measure of ``PROFILE``: its seed mean with the 95% interval
    and, where there is one, its null's mean (the untrained network)."""
    part = members[(members.depth == 1) & (members.stop_loss.map(rule_of) == FIXED) & (members.hidden == hidden)
                   & (members.l1 == l1)]
    rows = []
    for column, (name, null) in PROFILE.items():
        e = seed_estimates(part.assign(_v=part[column]), "_v", ["hidden"]).iloc[0]
        text = interval(e.value, e.low, e.high, sign=False)
        if column == "alpha_w" and part[column].isna().all():
            text = f"not fitted: {hidden} eigenvalues (< 50)"
        rows.append({"measure": name, f"width {hidden}": text,
                     "null (untrained)": interval(part[null].mean(), np.nan, np.nan, sign=False) if null else ""})
    return pd.DataFrame(rows)


__all__ = ["CONTRADICTED", "EQUAL", "FIXED", "curve_series", "growth", "growth_table", "pair_excess", "pair_series", "profile",
           "regime_slices", "rule_of", "seed_estimates", "seed_matrix", "slope_estimate", "ticket_series", "verdicts",
           "width_series"]

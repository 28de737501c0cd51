"""The paper's claims (PROTOCOL section 2), each judged by one rule: a statistic, its seed-level interval, and
a verdict. Every chapter and the study call these rules, so they can never disagree.

A rule takes a ``compare`` table (every seed pair, with its null columns) and resamples seeds, never pairs
(``underspec.metrics.uncertainty``: delete-one-seed jackknife, t quantile). It states its statistic (a
difference, a slope, the location of a peak), the statistic's interval, and one verdict of ``VERDICTS``:

- ``confirmed``: the statistic's interval shows what the paper says, against the null that fits the metric;
- ``not confirmed``: it does not, or shows the opposite;
- ``artefact of the chance level``: the raw metric shows it, but so does its null (untrained networks, or
  networks of one fixed similarity at every C): it says nothing about the trained networks;
- ``plateau: peak not identifiable``: a rise and a fall are there, but the top values cannot be told apart;
- ``not testable with this data``: the data cannot decide (too few seeds, a missing null, a degenerate C).

C = 2 is left out of every rule (its second-layer metrics are ties: a Pearson r over 2 numbers is +-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import UnderspecError
from ..metrics.chance import null_fixed_similarity, similarity_for
from ..metrics.uncertainty import Estimate, estimate, pair_array, pair_means
from ..text import fmt_l1, interval

VERDICTS = ("confirmed", "not confirmed", "artefact of the chance level", "plateau: peak not identifiable",
            "not testable with this data")
# What the report states (its text and Figure 3.1), quoted here once.
PAPER_BEST_PE = 0.48
PAPER_BEST_PE_L1 = 0.001
PAPER_BEST_PE_C = 9
PAPER_PE_PEAK_L1 = 0.005
BARELY = 0.2   # "barely moves": a change within +-0.2 of the headroom above chance, interval included
NEAR_ZERO = 0.02  # "near zero" above the null: the excess's interval reaches below this
CLASSES = tuple(range(3, 11))  # C = 2 left out


@dataclass
class Verdict:
    """One claim judged: the claim, what the paper says, the statistic with its value and interval, a sentence
    of what this run finds (numbers computed here), the rule, and the verdict (one of ``VERDICTS``)."""

    claim: str
    paper: str
    statistic: str
    value: float
    low: float
    high: float
    finding: str
    rule: str
    verdict: str
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        return {k: getattr(self, k) for k in ("claim", "verdict", "statistic", "value", "low", "high", "finding",
                                              "rule", "paper")}


class Evidence:
    """A metric of a compare table as seed-pair arrays over configurations (l1, C), C in ``classes``.

    ``minus``: a null column subtracted pair by pair (``"null"``: untrained networks, ``"null_structured"``);
    ``headroom``: (metric - null) / (1 - null), the share of the room above chance that is used.
    """

    def __init__(self, table: pd.DataFrame, metric, *, target: str = "params", minus: str | None = None,
                 headroom: bool = False, classes=CLASSES):
        if not isinstance(table, pd.DataFrame) or not {"seed_a", "seed_b", "l1", "n_classes"} <= set(table):
            raise UnderspecError("the claim rules need a compare table (one row per seed pair), e.g. "
                                 "underspec.compare(run, 'all', null=('untrained', 'structured'))")
        part = table[(table.target == target) & table.n_classes.isin(classes)].copy()
        if part.empty:
            raise UnderspecError(f"no {target} rows with C in {list(classes)} in the table")
        if callable(metric):  # a derived value of each pair's row
            value = metric(part)
        else:
            if metric not in part:
                raise UnderspecError(f"the table has no {metric!r} column: compare with what the rule needs")
            column = f"{metric}_{minus}" if minus in ("null", "null_structured", "random_pairing") else minus
            if column is not None and column not in part:
                raise UnderspecError(f"the table has no {column!r} column: compare with null={minus!r}")
            value = part[metric]
            if column is not None:
                value = (value - part[column]) / (1 - part[column]) if headroom else value - part[column]
        part["_value"] = value
        self.index, self.seeds, self.v = pair_array(part, "_value", ["l1", "n_classes"])

    def means(self) -> pd.Series:
        """Mean over the pairs of every configuration, indexed by (l1, n_classes)."""
        return pd.Series(pair_means(self.v), index=self.index)

    def estimate(self, statistic, **options) -> Estimate:
        """``statistic(means: Series by (l1, n_classes)) -> float`` with its seed-level interval."""
        return estimate(self.v, lambda m: statistic(pd.Series(m, index=self.index)), **options)


def by_c(means: pd.Series) -> pd.Series:
    return means.groupby(level="n_classes").mean()


def by_l1(means: pd.Series) -> pd.Series:
    return means.groupby(level="l1").mean()


def slope(series: pd.Series) -> float:
    """Least-squares slope of a series against its (numeric) index; per unit of the index."""
    x, y = np.asarray(series.index, dtype=float), series.to_numpy(dtype=float)
    ok = np.isfinite(y)
    return float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 else float("nan")


def _peak_position(curve: pd.Series, l1s: list) -> float:
    """The position in ``l1s`` of the curve's maximum (NaN for a draw without pairs)."""
    return float(l1s.index(curve.idxmax())) if curve.notna().any() else float("nan")


def _null_name(column: str) -> str:
    return {"null": "untrained null", "null_structured": "structured null"}.get(column, column)


def _classes(classes) -> str:
    classes = sorted(classes)
    return f"{classes[0]}..{classes[-1]}" if len(classes) > 1 else str(classes[0])


def _interval(e: Estimate, digits: int = 3) -> str:
    return interval(e.value, e.low, e.high, digits)


def _direction(e: Estimate) -> int:
    """+1 / -1 when the interval lies above / below zero, 0 when it includes zero or is undefined."""
    if not np.isfinite(e.low) or not np.isfinite(e.high):
        return 0
    return 1 if e.low > 0 else -1 if e.high < 0 else 0


def _untestable(e: Estimate) -> bool:
    return not (np.isfinite(e.value) and np.isfinite(e.low) and np.isfinite(e.high))


# -------------------------------------------------------------------------------------------------- the rules

def pe_rises_with_c(table: pd.DataFrame, *, hidden: int = 16) -> Verdict:
    """PE's slope in C (mean over lambda), against two questions: does a first-layer similarity that cannot
    sharpen with C (APC-1 above its structured or untrained null) rise too, and how much of PE's rise would
    networks of one fixed similarity show by themselves (the fixed-similarity null, calibrated to PE at the
    largest C)."""
    pe = Evidence(table, "pe")
    rise = pe.estimate(lambda m: slope(by_c(m)))
    null = "null_structured" if "apc1_null_structured" in table else "null"
    apc1 = Evidence(table, "apc1", minus=null)
    similar = apc1.estimate(lambda m: slope(by_c(m)))
    means = by_c(pe.means())
    c_low, c_high = int(means.index.min()), int(means.index.max())
    sigma = similarity_for("pe", float(means.loc[c_high]), c_high, hidden=hidden)
    fixed = {c: null_fixed_similarity(sigma, c, hidden=hidden)["pe"] for c in (c_low, c_high)}
    data_rise, null_rise = means.loc[c_high] - means.loc[c_low], fixed[c_high] - fixed[c_low]
    share = null_rise / data_rise if data_rise > 0 else float("nan")
    if _untestable(rise):
        verdict = "not testable with this data"
    elif _direction(rise) <= 0:
        verdict = "not confirmed"
    elif _direction(similar) > 0:
        verdict = "confirmed"
    else:
        verdict = "artefact of the chance level"
    return Verdict(
        "PE rises with C", "PE grows with the number of classes", "slope of PE per class (C ≥ 3, mean over λ)",
        rise.value, rise.low, rise.high,
        f"PE's slope per class {_interval(rise)}; slope of APC-1 above its {_null_name(null)} (a similarity "
        f"whose resolution does not depend on C) {_interval(similar, 4)}; networks of one fixed similarity "
        f"(calibrated to PE at C = {c_high}) go from PE {fixed[c_low]:.2f} at C = {c_low} to {fixed[c_high]:.2f}: "
        + (f"the metric alone produces {share:.0%} of the rise measured" if np.isfinite(share) else
           "the data show no rise to explain"),
        "confirmed if PE's slope interval lies above 0 and so does that of APC-1 above its null; an artefact "
        "if only PE rises (its resolution grows with C: the fixed-similarity null rises too)", verdict,
        {"fixed_similarity": fixed, "sigma": sigma, "apc1_slope": similar})


def pe_peaks_in_l1(table: pd.DataFrame) -> Verdict:
    """Where PE (mean over C ≥ 3) peaks in lambda: the differences between the top lambda and every other,
    with seed-level intervals, and how often the peak lands on each lambda when seeds are resampled."""
    pe = Evidence(table, "pe")
    curve = by_l1(pe.means())
    l1s = list(curve.index)
    peak = curve.idxmax()
    diffs = {lam: pe.estimate(lambda m, lam=lam: by_l1(m).loc[peak] - by_l1(m).loc[lam]) for lam in l1s
             if lam != peak}
    location = pe.estimate(lambda m: _peak_position(by_l1(m), l1s), method="bootstrap")
    share = {lam: float(np.mean(location.draws == i)) for i, lam in enumerate(l1s)}
    rises = peak != l1s[0] and _direction(diffs[l1s[0]]) > 0
    falls = peak != l1s[-1] and _direction(diffs[l1s[-1]]) > 0
    tied = [lam for lam, d in diffs.items() if _direction(d) == 0]
    near = abs(l1s.index(peak) - l1s.index(min(l1s, key=lambda v: abs(v - PAPER_PE_PEAK_L1)))) <= 1
    if any(_untestable(d) for d in diffs.values()):
        verdict = "not testable with this data"
    elif not (rises and falls):
        verdict = "not confirmed"
    elif tied:
        verdict = "plateau: peak not identifiable"
    else:
        verdict = "confirmed" if near else "not confirmed"
    top = diffs[l1s[0]] if peak != l1s[0] else next(iter(diffs.values()))
    return Verdict(
        "PE rises with λ up to about 0.005, then falls", f"PE peaks near λ = {fmt_l1(PAPER_PE_PEAK_L1)}",
        f"PE at the top λ ({fmt_l1(peak)}) minus PE at λ = 0", top.value, top.low, top.high,
        f"mean PE over C ≥ 3 per λ ({', '.join(f'{fmt_l1(k)}: {v:.3f}' for k, v in curve.items())}); the top λ "
        f"minus each other: " + "; ".join(f"{fmt_l1(k)}: {_interval(d)}" for k, d in diffs.items())
        + "; the peak lands on " + ", ".join(f"λ = {fmt_l1(k)} in {v:.0%}" for k, v in share.items() if v > 0)
        + " of seed resamplings" + (f"; not told apart from the top: λ = {', '.join(map(fmt_l1, tied))}" if tied else ""),
        "confirmed if PE at the top λ exceeds both ends and every other λ (intervals above 0) and the top is "
        f"within one grid step of {fmt_l1(PAPER_PE_PEAK_L1)}; a plateau if it rises and falls but some λ cannot "
        "be told apart from the top", verdict, {"peak": peak, "share": share, "tied": tied})


def best_pe(table: pd.DataFrame) -> Verdict:
    """PE at the paper's cell (lambda 0.001, C = 9) against the paper's 0.48, and the highest PE over all cells
    with an interval that accounts for picking the maximum (seeds resampled, the maximum taken each time)."""
    pe = Evidence(table, "pe")
    means = pe.means()
    cell = (PAPER_BEST_PE_L1, PAPER_BEST_PE_C)
    if cell not in means.index:
        return Verdict("The highest PE, about 0.48, at λ = 0.001 with 9 classes", "PE ≈ 0.48 at λ = 0.001, C = 9",
                       "PE at λ = 0.001, C = 9", np.nan, np.nan, np.nan, "the grid has no λ = 0.001, C = 9",
                       "needs the paper's cell", "not testable with this data")
    at = pe.estimate(lambda m: m.loc[cell])
    excess = Evidence(table, "pe", minus="null").estimate(lambda m: m.loc[cell])
    best = pe.estimate(lambda m: m.max(), method="bootstrap")
    where = means.idxmax()
    if _untestable(at) or _untestable(excess):
        verdict = "not testable with this data"
    elif _direction(excess) <= 0:
        verdict = "artefact of the chance level" if at.low <= PAPER_BEST_PE <= at.high else "not confirmed"
    else:
        verdict = "confirmed" if at.low <= PAPER_BEST_PE <= at.high else "not confirmed"
    return Verdict(
        "The highest PE, about 0.48, at λ = 0.001 with 9 classes", f"PE ≈ {PAPER_BEST_PE} at λ = 0.001, C = 9",
        "PE at λ = 0.001, C = 9", at.value, at.low, at.high,
        f"PE at the paper's cell {at.value:.3f} [{at.low:.3f}, {at.high:.3f}], {_interval(excess)} above the "
        f"untrained null; the highest mean PE "
        f"{means.max():.3f} at λ = {fmt_l1(where[0])}, C = {where[1]}, [{best.low:.3f}, {best.high:.3f}] for the "
        "maximum with its selection (seeds resampled, the maximum over cells taken each time)",
        f"confirmed if the interval at the paper's cell includes {PAPER_BEST_PE} and PE there lies above its "
        "untrained null", verdict)


def apc2_falls_with_c(table: pd.DataFrame) -> Verdict:
    """APC-2's slope in C, raw and in units of the headroom above the untrained null (which falls with C)."""
    raw = Evidence(table, "apc2").estimate(lambda m: slope(by_c(m)))
    headroom = Evidence(table, "apc2", minus="null", headroom=True).estimate(lambda m: slope(by_c(m)))
    if _untestable(raw):
        verdict = "not testable with this data"
    elif _direction(raw) >= 0:
        verdict = "not confirmed"
    else:
        verdict = "confirmed" if _direction(headroom) < 0 else "artefact of the chance level"
    return Verdict(
        "APC-2 falls with C", "APC-2 decreases as the number of classes grows", "slope of APC-2 per class",
        raw.value, raw.low, raw.high,
        f"APC-2's slope per class {_interval(raw)}; slope of its headroom above the untrained null, "
        f"(APC-2 - chance) / (1 - chance), {_interval(headroom)}",
        "confirmed if APC-2 falls (interval below 0) and so does its headroom above chance; an artefact if only "
        "the raw value falls (the chance level of a matching over C-entry columns falls with C)", verdict)


def apc2_barely_moves_with_l1(table: pd.DataFrame) -> Verdict:
    """APC-2 in units of the headroom above chance: its change from lambda = 0 to the largest lambda, judged
    against an equivalence margin (``BARELY``), after asking whether there is any above-chance signal to move."""
    ev = Evidence(table, "apc2", minus="null", headroom=True)
    l1s = sorted({k[0] for k in ev.index})
    at_zero = ev.estimate(lambda m: by_l1(m).loc[l1s[0]])
    change = ev.estimate(lambda m: by_l1(m).loc[l1s[-1]] - by_l1(m).loc[l1s[0]])
    at_end = ev.estimate(lambda m: by_l1(m).loc[l1s[-1]])
    if _untestable(change) or _untestable(at_zero):
        verdict = "not testable with this data"
    elif _direction(at_zero) <= 0:
        verdict = "artefact of the chance level"
    elif -BARELY <= change.low and change.high <= BARELY:
        verdict = "confirmed"
    else:
        verdict = "not confirmed"
    return Verdict(
        "Regularisation barely moves APC-2", "APC-2 is nearly flat in λ",
        f"headroom above chance at λ = {fmt_l1(l1s[-1])} minus at λ = 0", change.value, change.low, change.high,
        f"APC-2's headroom above the untrained null, (APC-2 - chance) / (1 - chance), mean over C ≥ 3: "
        f"{_interval(at_zero)} at λ = 0, {_interval(at_end)} at λ = {fmt_l1(l1s[-1])}; change {_interval(change)}",
        f"confirmed if the change lies within ±{BARELY} of the headroom (interval included); an artefact of "
        "the chance level if there is no headroom used at λ = 0 (then nothing can move)", verdict)


def grad_apc1_collapses(table: pd.DataFrame, *, classes=CLASSES) -> Verdict:
    """APC-1 of the summed gradients above the structured null (the untrained one if the table lacks it) for
    every lambda (mean over ``classes``): near zero for every lambda > 0, above it at lambda = 0?"""
    null = "null_structured" if "apc1_null_structured" in table else "null"
    ev = Evidence(table, "apc1", target="grads", minus=null, classes=classes)
    l1s = sorted({k[0] for k in ev.index})
    excess = {lam: ev.estimate(lambda m, lam=lam: by_l1(m).loc[lam]) for lam in l1s}
    near = {lam: e.low < NEAR_ZERO for lam, e in excess.items()}
    above_zero = _direction(excess[l1s[0]]) > 0 and l1s[0] == 0
    if any(_untestable(e) for e in excess.values()):
        verdict = "not testable with this data"
    else:
        verdict = "confirmed" if above_zero and all(near[lam] for lam in l1s[1:]) else "not confirmed"
    first = excess[l1s[1]] if len(l1s) > 1 else excess[l1s[0]]
    return Verdict(
        "For any λ > 0, APC-1 of the gradients falls to near zero", "APC-1 of the gradients ≈ 0 for every λ > 0",
        f"APC-1 of the gradients above the {_null_name(null)} at λ = {fmt_l1(l1s[min(1, len(l1s) - 1)])}",
        first.value, first.low, first.high,
        f"APC-1 of the summed gradients above the {_null_name(null)}, mean over C in {_classes(classes)}: "
        + "; ".join(f"λ = {fmt_l1(k)}: {_interval(e)}" for k, e in excess.items())
        + f"; near zero (interval reaching below {NEAR_ZERO}) at λ = "
        + (", ".join(fmt_l1(k) for k, v in near.items() if v) or "none"),
        f"confirmed if at every λ > 0 the excess over the null has an interval reaching below {NEAR_ZERO} (\"near "
        "zero\" can mean no more than the null: matching never gives 0) while at λ = 0 it lies above 0", verdict,
        {"excess": excess, "near": near, "null": null})


def representations_alike(cka: pd.DataFrame, baselines: dict[str, float]) -> Verdict:
    """Linear CKA between seeds at the end of training against the strongest baseline: ``cka`` a table of
    seed pairs (seed_a, seed_b, cka); ``baselines`` {name: CKA level} (untrained networks, the input's own
    PCA projection, networks trained for another C)."""
    _, _, v = pair_array(cka, "cka", [])
    strongest = max(baselines, key=baselines.get)
    level = baselines[strongest]
    above = estimate(v, lambda m: m[0] - level)
    verdict = ("not testable with this data" if _untestable(above)
               else "confirmed" if _direction(above) > 0 else "not confirmed")
    return Verdict(
        "Representations look alike across seeds", "the seeds' PCA trajectories look alike",
        f"CKA between seeds minus the strongest baseline ({strongest})", above.value, above.low, above.high,
        f"linear CKA between seeds {above.value + level:.3f}; baselines: "
        + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()) + f"; above the strongest by {_interval(above)}",
        "confirmed if CKA between seeds exceeds the strongest baseline (interval above 0): looking alike must "
        "mean more than what any two representations of these images share", verdict)


def check_all(table: pd.DataFrame, *, cka: pd.DataFrame | None = None, baselines: dict | None = None,
              hidden: int = 16) -> pd.DataFrame:
    """Every claim as one row: claim, verdict, statistic, value, low, high, finding, rule, paper."""
    verdicts = [pe_rises_with_c(table, hidden=hidden), pe_peaks_in_l1(table), best_pe(table), apc2_falls_with_c(table),
                apc2_barely_moves_with_l1(table), grad_apc1_collapses(table)]
    if cka is not None:
        verdicts.append(representations_alike(cka, baselines))
    return pd.DataFrame([v.row() for v in verdicts])


# ------------------------------------------------------------------------- the chapters' verdict sentences

DEAD_PIXEL_EFFECT = 0.01  # APC-1 on all pixels above APC-1 on data pixels by more than this: a boost


def grad_verdict(table: pd.DataFrame, *, n_classes: int | None = None) -> str:
    """The gradients chapter's verdict on "for any λ > 0, APC-1 of the gradients falls to near zero", in
    words: ``grad_apc1_collapses`` itself (the study's rule, over C ≥ 3) and, with ``n_classes``, the same
    rule at that one class count (the slice the chapter's figure shows)."""
    overall = grad_apc1_collapses(table)
    text = ""
    if n_classes is not None:
        one = grad_apc1_collapses(table, classes=(n_classes,))
        text = f"At C = {n_classes}: {_near_sentence(one)}. "
    text += f"Averaged over C ≥ 3 (the study chapter's rule): {_near_sentence(overall)}. "
    near, excess = overall.extra["near"], overall.extra["excess"]
    l1s = sorted(near)
    if overall.verdict == "confirmed":
        return text + "So the paper's observation holds for every λ > 0 here."
    if _direction(excess[l1s[0]]) <= 0:
        return text + ("Even at λ = 0 the summed gradients of two seeds are no more alike than the null makes "
                       "unrelated ones: there is no contrast for λ > 0 to remove.")
    return text + "So the paper's \"for any λ > 0\" holds only for some of the lambdas."


def _near_sentence(verdict: Verdict) -> str:
    near = verdict.extra["near"]
    names = lambda values: ", ".join(fmt_l1(v) for v in values) or "none"  # noqa: E731
    return (f"near the {_null_name(verdict.extra['null'])} (interval reaching below {NEAR_ZERO}): λ = "
            f"{names([k for k, v in near.items() if v])}; clearly above it: λ = "
            f"{names([k for k, v in near.items() if not v])}")


def w1perm_verdict(table: pd.DataFrame, *, l1: float, n_classes: int, target: str = "params") -> str:
    """The matching chapter's verdict on scoring W2 under the W1 matching (one permutation, as the symmetry
    says) instead of its own matching: the difference of the two APC-2s' distances above their untrained
    nulls at (``l1``, ``n_classes``), with its seed-level interval."""
    def gap(part):
        return (part.apc2_w1perm - part.apc2_w1perm_null) - (part.apc2 - part.apc2_null)

    ev = Evidence(table, gap, target=target, classes=(n_classes,))
    d = ev.estimate(lambda m: m.loc[(l1, n_classes)])
    raw = Evidence(table, lambda p: p.apc2_w1perm - p.apc2, target=target, classes=(n_classes,)).means()
    lower = raw.loc[(l1, n_classes)] < 0
    head = (f"The raw number is {'lower' if lower else 'higher'} under the one permutation; its distance above "
            f"chance minus that of the independent matching is {_interval(d)}: ")
    if _direction(d) > 0:
        return head + ("the second layers agree more, not less, once they are matched the way the symmetry says; "
                       "the independent matching mostly measures its own freedom.")
    if _direction(d) < 0:
        return head + "the independent matching finds more agreement than chance explains here."
    return head + "the seeds cannot tell the two apart."


def dead_pixels_verdict(table: pd.DataFrame, *, n_classes: int, target: str = "params") -> str:
    """The matching chapter's verdict on the dead pixels: APC-1 on all pixels minus APC-1 on the pixels that
    carry data, per lambda at ``n_classes``, with seed-level intervals; a boost needs an interval above
    ``DEAD_PIXEL_EFFECT`` at some lambda > 0."""
    if "apc1_data" not in table:
        raise UnderspecError("the table needs apc1_data: compare(..., data=data)")
    ev = Evidence(table, lambda p: p.apc1 - p.apc1_data, target=target, classes=(n_classes,))
    l1s = sorted({k[0] for k in ev.index})
    gaps = {lam: ev.estimate(lambda m, lam=lam: m.loc[(lam, n_classes)]) for lam in l1s}
    boost = [lam for lam in l1s[1:] if gaps[lam].low > DEAD_PIXEL_EFFECT]
    text = (f"At C = {n_classes}, APC-1 on all pixels minus APC-1 on the pixels with data: "
            + "; ".join(f"λ = {fmt_l1(k)}: {_interval(e)}" for k, e in gaps.items()) + ". ")
    if boost:
        return text + f"The dead pixels raise APC-1 mechanically at λ = {', '.join(map(fmt_l1, boost))}."
    return text + ("With SGD the L1 penalty only makes their weights oscillate around zero instead of setting "
                   "them to zero, so the mechanical boost predicted for λ > 0 is not seen here.")

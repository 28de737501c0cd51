"""The paper's claims (PROTOCOL section 2), each checked against a ``summarize`` table by an explicit rule.

Used by the study chapter (book/study.md). Every check returns a ``Verdict``: the claim, what the paper reported, what this
run finds (numbers computed here, never typed), the rule applied, and one of three marks:

- ``confirmed``: the run shows what the paper says;
- ``not confirmed``: it does not;
- ``artefact``: the run shows it, but unrelated networks (the chance level) show it just as well, so it says
  nothing about the trained networks.

The rules are deliberately simple and printed with the verdict, so a reader can disagree with them. C = 2 is
left out of every trend (its second-layer metrics are degenerate: a Pearson r over 2 numbers is always +-1).

The chapters' verdict sentences live here too, next to the rules they share: ``grad_verdict`` (the gradients
chapter, the same rule and thresholds as ``grad_apc1_collapses``, so that chapter and the study chapter cannot
disagree), ``w1perm_verdict`` and ``dead_pixels_verdict`` (the matching chapter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..errors import UnderspecError

# What the report states (its text and Figure 3.1), quoted here once.
PAPER_BEST_PE = 0.48
PAPER_BEST_PE_L1 = 0.001
PAPER_BEST_PE_C = 9
PAPER_PE_PEAK_L1 = 0.005
TREND = 0.7          # |Spearman rho| at or above this is a trend
SMALL = 0.05         # a change smaller than this (in correlation or fraction units) is "barely moves"
NEAR_CHANCE = 0.05   # a metric within this of its chance level is "at chance"
DEAD_PIXEL_EFFECT = 0.01  # APC-1 on all pixels above APC-1 on data pixels by less than this: no boost seen


@dataclass
class Verdict:
    claim: str
    paper: str
    finding: str
    rule: str
    verdict: str


def _means(summary: pd.DataFrame, metric: str, target: str = "params") -> pd.DataFrame:
    part = summary[(summary.metric == metric) & (summary.target == target) & (summary.n_classes > 2)]
    return part


def _rho(x, y) -> float:
    if len(np.unique(x)) < 3 or len(np.unique(y)) < 2:  # no trend can be read off (constant input)
        return float("nan")
    return float(spearmanr(x, y).statistic)


def _trend_in_c(summary, metric: str):
    """Mean of ``metric`` per C (over lambda) and of its chance level, and the Spearman rho against C of the
    metric and of its distance above chance."""
    part = _means(summary, metric)
    by_c = part.groupby("n_classes")["mean"].mean()
    null = part.groupby("n_classes")["null"].mean()
    return by_c, null, _rho(by_c.index, by_c.values), _rho(by_c.index, (by_c - null).values)


def _trend_verdict(rho: float, rho_excess: float, *, rising: bool) -> str:
    """"confirmed" when the metric and its distance above chance both follow the trend, "artefact" when only
    the metric does (chance shows it too), else "not confirmed"."""
    sign = 1 if rising else -1
    if sign * rho >= TREND:
        return "confirmed" if sign * rho_excess >= TREND else "artefact"
    return "not confirmed"


def _fmt(series: pd.Series, key) -> str:
    return ", ".join(f"{key(k)}: {v:.3f}" for k, v in series.items())


def _l1(v) -> str:
    return "0" if v == 0 else f"{v:g}"


def pe_rises_with_c(summary) -> Verdict:
    by_c, _, rho, rho_excess = _trend_in_c(summary, "pe")
    verdict = _trend_verdict(rho, rho_excess, rising=True)
    return Verdict("PE rises with C", "PE grows with the number of classes",
                   f"mean PE over λ per C ({_fmt(by_c, str)}); Spearman ρ = {rho:.2f}, "
                   f"ρ of PE minus chance = {rho_excess:.2f}",
                   f"confirmed if ρ ≥ {TREND} for PE and for PE above chance (C ≥ 3)", verdict)


def pe_peaks_in_l1(summary) -> Verdict:
    part = _means(summary, "pe")
    by_l1 = part.groupby("l1")["mean"].mean()
    peak = by_l1.idxmax()
    l1s = list(by_l1.index)
    rises = by_l1.loc[peak] > by_l1.iloc[0] + SMALL / 2
    falls = peak != l1s[-1] and by_l1.iloc[-1] < by_l1.loc[peak] - SMALL / 2
    near = peak in l1s and abs(l1s.index(peak) - l1s.index(min(l1s, key=lambda v: abs(v - PAPER_PE_PEAK_L1)))) <= 1
    verdict = "confirmed" if rises and falls and near else "not confirmed"
    return Verdict("PE rises with λ up to about 0.005, then falls",
                   f"PE peaks near λ = {_l1(PAPER_PE_PEAK_L1)}",
                   f"mean PE over C ≥ 3 per λ ({_fmt(by_l1, _l1)}); peak at λ = {_l1(peak)}",
                   f"confirmed if the peak is within one grid step of λ = {_l1(PAPER_PE_PEAK_L1)} and exceeds both "
                   f"ends by {SMALL / 2:g}", verdict)


def best_pe(summary, summary_reference=None) -> Verdict:
    part = _means(summary, "pe")
    best = part.loc[part["mean"].idxmax()]
    at_paper = part[(part.l1 == PAPER_BEST_PE_L1) & (part.n_classes == PAPER_BEST_PE_C)]
    finding = (f"highest mean PE {best['mean']:.3f} at λ = {_l1(best.l1)}, C = {int(best.n_classes)} "
               f"(95% interval {best.ci_low:.3f}-{best.ci_high:.3f}, chance {best.null:.3f})")
    same_place = False
    if not at_paper.empty:
        row = at_paper.iloc[0]
        finding += (f"; at the paper's λ = {_l1(PAPER_BEST_PE_L1)}, C = {PAPER_BEST_PE_C}: {row['mean']:.3f} "
                    f"({row.ci_low:.3f}-{row.ci_high:.3f})")
        same_place = best.l1 == PAPER_BEST_PE_L1 and best.n_classes == PAPER_BEST_PE_C
    if summary_reference is not None:
        ref = _means(summary_reference, "pe")
        top = ref.loc[ref["mean"].idxmax()]
        finding += (f"; with the paper's 6 pairs against seed 0 only: highest {top['mean']:.3f} at "
                    f"λ = {_l1(top.l1)}, C = {int(top.n_classes)}")
    close = abs(best["mean"] - PAPER_BEST_PE) <= SMALL
    verdict = "confirmed" if same_place and close else "not confirmed"
    return Verdict(f"The highest PE, about {PAPER_BEST_PE}, is at λ = {_l1(PAPER_BEST_PE_L1)} with "
                   f"{PAPER_BEST_PE_C} classes", f"PE ≈ {PAPER_BEST_PE} at λ = {_l1(PAPER_BEST_PE_L1)}, "
                   f"C = {PAPER_BEST_PE_C}", finding,
                   f"confirmed if the best configuration is the paper's and its PE is within {SMALL} of "
                   f"{PAPER_BEST_PE}", verdict)


def apc2_falls_with_c(summary) -> Verdict:
    by_c, null, rho, rho_excess = _trend_in_c(summary, "apc2")
    verdict = _trend_verdict(rho, rho_excess, rising=False)
    return Verdict("APC-2 falls with C", "APC-2 decreases as the number of classes grows",
                   f"mean APC-2 per C ({_fmt(by_c, str)}); chance level ({_fmt(null, str)}); Spearman ρ = "
                   f"{rho:.2f}, ρ of APC-2 minus chance = {rho_excess:.2f}",
                   f"a fall is ρ ≤ -{TREND}; artefact if APC-2 falls but its distance above chance does not", verdict)


def apc2_barely_moves_with_l1(summary) -> Verdict:
    part = _means(summary, "apc2")
    wide = part.pivot_table(index="n_classes", columns="l1", values="mean")
    spread = wide.max(axis=1) - wide.min(axis=1)
    verdict = "confirmed" if spread.max() < SMALL else "not confirmed"
    return Verdict("Regularisation barely moves APC-2", "APC-2 is nearly flat in λ",
                   f"range of mean APC-2 over λ, per C: {_fmt(spread, str)}; largest {spread.max():.3f}",
                   f"confirmed if the range over λ stays below {SMALL} at every C ≥ 3", verdict)


def _grad_apc1(summary):
    """The gradient rule's inputs: mean APC-1 of the summed gradients per lambda (over C >= 3), its chance
    level per lambda, which lambdas > 0 are within ``NEAR_CHANCE`` of chance (bool Series), and whether
    lambda = 0 stands above it."""
    part = _means(summary, "apc1", "grads")
    by_l1 = part.groupby("l1")["mean"].mean()
    null = part.groupby("l1")["null"].mean()
    positive = by_l1.drop(0.0, errors="ignore")
    at_chance = (positive - null.drop(0.0, errors="ignore")) <= NEAR_CHANCE
    zero_high = bool(0.0 in by_l1.index and by_l1.loc[0.0] > null.loc[0.0] + NEAR_CHANCE)
    return by_l1, null, at_chance, zero_high


def grad_apc1_collapses(summary) -> Verdict:
    by_l1, null, at_chance, zero_high = _grad_apc1(summary)
    verdict = "confirmed" if at_chance.all() and zero_high else "not confirmed"
    return Verdict("For any λ > 0, APC-1 of the gradients falls to near zero",
                   "APC-1 of the gradients ≈ 0 for every λ > 0",
                   f"mean APC-1 of the summed gradients per λ ({_fmt(by_l1, _l1)}); chance level "
                   f"{null.mean():.3f}; at chance for λ = "
                   f"{', '.join(_l1(v) for v in at_chance[at_chance].index) or 'none'}",
                   f"confirmed if every λ > 0 is within {NEAR_CHANCE} of chance (\"near zero\" can mean no more "
                   "than chance: matching never gives 0) while λ = 0 is above it", verdict)


def grad_verdict(summary, *, n_classes: int | None = None) -> str:
    """The gradients chapter's verdict on "for any λ > 0, APC-1 of the gradients falls to near zero", in
    words: which lambdas > 0 are within ``NEAR_CHANCE`` of chance and which stand above it, and what that
    says about the claim. The conclusion applies the rule of ``grad_apc1_collapses`` to the same rows (C >= 3,
    averaged over C), so it agrees with the study chapter's verdict on the same ``summarize`` table.
    ``n_classes``: also say, first, which lambdas are at chance at that one class count (the slice a
    chapter's figure shows), by the same threshold."""
    _, _, at_chance, zero_high = _grad_apc1(summary)
    if n_classes is not None:
        one = summary[summary.n_classes == n_classes]
        if _means(one, "apc1", "grads").empty:
            raise UnderspecError(f"the summary has no APC-1 of the gradients at C = {n_classes} (C ≥ 3 needed)")
        text = f"At C = {n_classes}, {_split(_grad_apc1(one)[2])}. Averaged over C ≥ 3, the study chapter's rule: "
    else:
        text = "Averaged over C ≥ 3, the study chapter's rule: "
    text += _split(at_chance) + ". "
    at, above = list(at_chance.index[at_chance]), list(at_chance.index[~at_chance])
    if not above and zero_high:
        return text + "So the paper's observation holds for every λ > 0 here."
    if not above:
        return text + ("Every λ > 0 is at chance, but so is λ = 0: the collapse is not specific to "
                       "regularisation here.")
    if not at:
        return text + "So the paper's observation does not hold here: no λ > 0 brings it down to chance."
    if max(above) < min(at):
        return text + "So the paper's \"for any λ > 0\" holds only from the larger lambdas on."
    return text + "So the paper's \"for any λ > 0\" holds only for some of the lambdas."


def _split(at_chance: pd.Series) -> str:
    """"within 0.05 of chance: λ = ...; clearly above it: λ = ..." from a bool Series over lambdas."""
    def names(values):
        return ", ".join(_l1(v) for v in values) or "none"

    return (f"within {NEAR_CHANCE:g} of chance: λ = {names(at_chance.index[at_chance])}; clearly above it: "
            f"λ = {names(at_chance.index[~at_chance])}")


def _at(summary, metric: str, l1: float, n_classes: int, target: str = "params") -> pd.Series:
    """The ``summarize`` row of one metric at one configuration (mean, null, ...); a clear error if absent."""
    row = summary[(summary.metric == metric) & (summary.target == target) & (summary.l1 == l1)
                  & (summary.n_classes == n_classes)]
    if row.empty:
        raise UnderspecError(f"the summary has no {metric!r} for target {target!r} at λ = {_l1(l1)}, C = {n_classes}")
    return row.iloc[0]


def w1perm_verdict(summary, *, l1: float, n_classes: int, target: str = "params") -> str:
    """The matching chapter's verdict on scoring W2 under the W1 matching (one permutation, as the symmetry
    says) instead of its own matching: the distance of each APC-2 above its chance level at (``l1``,
    ``n_classes``), from a ``summarize`` table with the ``apc2`` and ``apc2_w1perm`` metrics."""
    own, w1 = _at(summary, "apc2", l1, n_classes, target), _at(summary, "apc2_w1perm", l1, n_classes, target)
    excess_own, excess_w1 = own["mean"] - own["null"], w1["mean"] - w1["null"]
    return (f"The raw number is {'lower' if w1['mean'] < own['mean'] else 'higher'} under the one permutation, "
            f"but it stands {excess_w1:.3f} above its chance level against {excess_own:.3f} for the independent "
            "matching: " + ("the second layers agree more, not less, once they are matched the way the symmetry "
                            "says; the independent matching mostly measures its own freedom."
                            if excess_w1 > excess_own else
                            "the independent matching finds more agreement than chance explains here."))


def dead_pixels_verdict(summary, *, n_classes: int, target: str = "params") -> str:
    """The matching chapter's verdict on the dead pixels: APC-1 on all pixels minus APC-1 on the pixels that
    carry data, per lambda at ``n_classes``, from a ``summarize`` table with ``apc1`` and ``apc1_data``. A
    gap below ``DEAD_PIXEL_EFFECT`` at every lambda means the mechanical boost of L1 is not seen."""
    part = summary[(summary.target == target) & (summary.n_classes == n_classes)]
    wide = part.pivot_table(index="l1", columns="metric", values="mean")
    if not {"apc1", "apc1_data"} <= set(wide.columns):
        raise UnderspecError("the summary needs the metrics apc1 and apc1_data: compare(..., data=data)")
    gap = wide["apc1"] - wide["apc1_data"]
    return (f"Over the lambdas at C = {n_classes}, APC-1 on all pixels minus APC-1 on data pixels ranges from "
            f"{gap.min():+.3f} to {gap.max():+.3f} (at λ = {_l1(gap.idxmin())} and λ = {_l1(gap.idxmax())}). " + (
                "The dead pixels lower APC-1 at λ = 0, as expected, but with SGD the L1 penalty only makes their "
                "weights oscillate around zero instead of setting them exactly to zero, so the mechanical boost "
                "predicted for λ > 0 is not seen here." if gap.max() < DEAD_PIXEL_EFFECT else
                "The dead pixels do move APC-1, in the direction shown in the table below."))


def representations_alike(cka_final: float, cka_init: float) -> Verdict:
    verdict = "confirmed" if cka_final >= 0.8 and cka_final > cka_init + 0.1 else "not confirmed"
    return Verdict("Representations look alike across seeds along the first two PCA components",
                   "the seeds' PCA trajectories look alike",
                   f"linear CKA between seeds at the end of training {cka_final:.2f}, against {cka_init:.2f} for "
                   "untrained networks (λ = 0, C = 10, held-out images)",
                   "confirmed if CKA ≥ 0.8 and at least 0.1 above the untrained level (CKA looks at all 16 "
                   "dimensions, not only two components)", verdict)


def check_all(summary, summary_reference=None, *, cka_final=None, cka_init=None) -> pd.DataFrame:
    """Every claim as one row: claim, paper, finding, rule, verdict."""
    verdicts = [pe_rises_with_c(summary), pe_peaks_in_l1(summary), best_pe(summary, summary_reference),
                apc2_falls_with_c(summary), apc2_barely_moves_with_l1(summary), grad_apc1_collapses(summary)]
    if cka_final is not None:
        verdicts.append(representations_alike(cka_final, cka_init))
    return pd.DataFrame([v.__dict__ for v in verdicts])

"""The paper's claims (PROTOCOL section 2), each judged by one rule: a statistic, its seed-level interval, and
a verdict. Every chapter and the study call these rules, so they can never disagree.

A rule takes a ``compare`` table (every seed pair, with its null columns) and resamples seeds, never pairs
(``underspec.metrics.uncertainty``: delete-one-seed jackknife, t quantile). It decides against the null that
fits its metric (PROTOCOL section 6), and says which one:

- the level of a trained network's metric (APC-1, APC-2, PE of weights or summed gradients): its excess over
  the *structured null* (the same pair with b's hidden units mixed), which keeps what any two networks of this
  data share; the untrained null stays on every figure as the floor;
- a trend across C (PE and APC-2 resolve more finely with more classes): the trend of the excess over the
  *fixed-similarity null* (networks of one constant similarity, calibrated to the data at the largest C), so
  that a trend that constant similarity also shows is not a finding;
- claims about lambda, where L1 erases units: also over the units alive in both networks, beside a null with
  that many live units (PE of k live units: chance 1/k).

Outcomes (``VERDICTS``): an effect is *shown* when its interval excludes no effect in the claimed direction,
*contradicted* when it excludes it the other way, *inconclusive* otherwise; a claim of no effect ("barely
moves", "near zero") is an equivalence test whose margin comes from the data and is printed: *shown* when the
interval lies inside it, *contradicted* when it lies outside, *inconclusive* when it straddles it. Beside
these: *artefact of the null* (the raw metric shows it, the excess over the fitting null does not), *artefact
of dead units* (the all-unit metric shows it, the live units do not), *plateau: peak not identifiable*, and
*not testable with this data* (too few seeds, a missing null, a missing cell).

C = 2 is left out of every rule (its second-layer metrics are ties: a Pearson r over 2 numbers is +-1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics.chance import fixed_similarity_at, fixed_similarity_curve
from ..metrics.uncertainty import estimate, pair_array
from ..text import fmt_l1, interval, number
from .evidence import (ARTEFACT, CLASSES, CONTRADICTED, DEAD_ARTEFACT, INCONCLUSIVE, MARGIN_SHARE, NOT_TESTABLE,
                       PAPER_BEST_PE, PAPER_BEST_PE_C, PAPER_BEST_PE_L1, PAPER_PE_PEAK_L1, PLATEAU, SHOWN, VERDICTS,
                       Evidence, Verdict, _classes, _direction, _interval, _level_null, _live_null, _null_name,
                       _peak_position, _untestable, _who, by_c, by_l1, effect, equivalence, grid_margin, live_chance,
                       slope)
from .sentences import dead_pixels_verdict, w1perm_verdict

__all__ = ["ARTEFACT", "CLASSES", "CONTRADICTED", "DEAD_ARTEFACT", "INCONCLUSIVE", "MARGIN_SHARE", "NOT_TESTABLE",
           "PAPER_BEST_PE", "PAPER_BEST_PE_C", "PAPER_BEST_PE_L1", "PAPER_PE_PEAK_L1", "PLATEAU", "SHOWN", "VERDICTS",
           "Evidence", "Verdict", "apc2_barely_moves_with_l1", "apc2_falls_with_c", "best_pe", "both_unit_sets",
           "by_c", "by_l1", "check_all", "dead_pixels_verdict", "effect", "equivalence", "grad_apc1_collapses",
           "grad_verdict", "grid_margin", "live_chance", "pe_peaks_in_l1", "pe_peaks_in_l1_both", "pe_rises_with_c",
           "representations_alike", "representations_alike_grid", "slope", "w1perm_verdict"]

# -------------------------------------------------------------------------------------------------- the rules

def _trend_in_c(table, metric: str, direction: int, hidden: int):
    """A metric's slope per class, raw and above the fixed-similarity null, with their verdict: shown or
    contradicted by the excess's slope; an artefact of the null when only the raw slope shows the claim. The
    null is calibrated to the metric's mean at the largest C in every resample of the seeds (its uncertainty
    is in the interval), from one precomputed curve (``chance.fixed_similarity_curve``)."""
    ev = Evidence(table, metric)
    classes = sorted(by_c(ev.means()).index)
    curve = fixed_similarity_curve(metric, classes, hidden=hidden)

    def fixed(means: pd.Series) -> pd.Series:
        per_c = by_c(means)
        return pd.Series(fixed_similarity_at(curve, float(per_c.iloc[-1])), index=per_c.index)

    raw = ev.estimate(lambda m: slope(by_c(m)))
    excess = ev.estimate(lambda m: slope(by_c(m) - fixed(m)))
    verdict = effect(excess, direction)
    if verdict == INCONCLUSIVE and effect(raw, direction) == SHOWN:
        verdict = ARTEFACT
    return raw, excess, fixed(ev.means()), verdict


def pe_rises_with_c(table: pd.DataFrame, *, hidden: int = 16) -> Verdict:
    """PE's slope in C decided by the slope of PE minus the fixed-similarity null (calibrated to PE at the
    largest C): a rise that networks of one constant similarity also show is not a finding. The structured
    null's excess slope is reported beside it."""
    raw, excess, fixed, verdict = _trend_in_c(table, "pe", +1, hidden)
    structured = (Evidence(table, "pe", minus="null_structured").estimate(lambda m: slope(by_c(m)))
                  if "pe_null_structured" in table else None)
    c_low, c_high = int(fixed.index.min()), int(fixed.index.max())
    return Verdict(
        "PE rises with C", "PE grows with the number of classes",
        "slope per class of PE minus the fixed-similarity null (C ≥ 3, mean over λ)", excess.value, excess.low,
        excess.high,
        f"PE's own slope per class {_interval(raw, 4)}; networks of one fixed similarity (calibrated to PE at "
        f"C = {c_high}) go from PE {fixed.loc[c_low]:.3f} at C = {c_low} to {fixed.loc[c_high]:.3f}; PE above them "
        f"rises by {_interval(excess, 4)} per class"
        + (f"; above the structured null by {_interval(structured, 4)} per class" if structured else ""),
        "decided against the fixed-similarity null: shown if the slope of PE minus that null lies above 0, "
        "contradicted if below, inconclusive otherwise; an artefact of the null if only PE's own slope rises",
        verdict, {"fixed_similarity": fixed.to_dict(), "raw": raw, "structured": structured})


def apc2_falls_with_c(table: pd.DataFrame, *, hidden: int = 16) -> Verdict:
    """APC-2's slope in C decided by the slope of APC-2 minus the fixed-similarity null (its matching over C
    entries resolves more finely with C: constant similarity makes APC-2 fall too)."""
    raw, excess, fixed, verdict = _trend_in_c(table, "apc2", -1, hidden)
    return Verdict(
        "APC-2 falls with C", "APC-2 decreases as the number of classes grows",
        "slope per class of APC-2 minus the fixed-similarity null", excess.value, excess.low, excess.high,
        f"APC-2's own slope per class {_interval(raw, 4)}; networks of one fixed similarity (calibrated at "
        f"C = {int(fixed.index.max())}) go from {fixed.iloc[0]:.3f} to {fixed.iloc[-1]:.3f}; APC-2 above them "
        f"changes by {_interval(excess, 4)} per class",
        "decided against the fixed-similarity null: shown if the slope of APC-2 minus that null lies below 0, "
        "contradicted if above, inconclusive otherwise; an artefact of the null if only APC-2's own slope falls",
        verdict, {"fixed_similarity": fixed.to_dict(), "raw": raw})


def _peak_verdict(ev: Evidence):
    """Where a curve over lambda peaks: the top lambda, its differences to every other lambda with their
    intervals, how often the peak lands on each lambda when seeds are resampled, and the verdict on "rises up
    to about PAPER_PE_PEAK_L1, then falls"."""
    curve = by_l1(ev.means())
    l1s = list(curve.index)
    peak = curve.idxmax()
    diffs = {lam: ev.estimate(lambda m, lam=lam: by_l1(m).loc[peak] - by_l1(m).loc[lam]) for lam in l1s if lam != peak}
    location = ev.estimate(lambda m: _peak_position(by_l1(m), l1s), method="bootstrap")
    share = {lam: float(np.mean(location.draws == i)) for i, lam in enumerate(l1s)}
    rises = peak != l1s[0] and _direction(diffs[l1s[0]]) > 0
    falls = peak != l1s[-1] and _direction(diffs[l1s[-1]]) > 0
    tied = [lam for lam, d in diffs.items() if _direction(d) == 0]
    near = abs(l1s.index(peak) - l1s.index(min(l1s, key=lambda v: abs(v - PAPER_PE_PEAK_L1)))) <= 1
    ends = [d for lam, d in diffs.items() if lam in (l1s[0], l1s[-1])]
    if any(_untestable(d) for d in diffs.values()):
        verdict = NOT_TESTABLE
    elif not (rises and falls):  # the top is at an end, or an end cannot be told from it
        undecided = any(_direction(d) == 0 for d in ends) or (
            peak in (l1s[0], l1s[-1]) and all(_direction(d) == 0 for d in diffs.values()))
        verdict = INCONCLUSIVE if undecided else CONTRADICTED  # else: the curve rises (or falls) throughout
    elif tied:
        verdict = PLATEAU
    else:
        verdict = SHOWN if near else CONTRADICTED
    base = l1s[0] if peak != l1s[0] else next(iter(diffs))  # the top minus lambda = 0, or minus the next lambda
    return curve, peak, diffs, share, tied, base, verdict


def pe_peaks_in_l1(table: pd.DataFrame, *, alive: bool = False) -> Verdict:
    """Where PE above its null (mean over C ≥ 3) peaks in lambda: over all units, above the structured null
    (the paper's PE counts every unit); with ``alive``, PE over the units alive in both networks above the null
    with the pair's live units (``_live_null``). The differences between the top lambda and every other, with
    seed-level intervals, and how often the peak lands on each lambda when seeds are resampled."""
    metric, minus = ("pe_alive", _live_null(table, "pe_alive")) if alive else ("pe", _level_null(table, "pe"))
    curve, peak, diffs, share, tied, base, verdict = _peak_verdict(Evidence(table, metric, minus=minus))
    top = diffs[base]
    null, who = _null_name(minus, alive), _who(alive)
    return Verdict(
        f"PE rises with λ up to about 0.005, then falls ({who})", f"PE peaks near λ = {fmt_l1(PAPER_PE_PEAK_L1)}",
        f"PE above the {null} at the top λ ({fmt_l1(peak)}) minus at λ = {fmt_l1(base)}, {who}", top.value, top.low,
        top.high,
        f"mean PE above the {null} over C ≥ 3 per λ ({', '.join(f'{fmt_l1(k)}: {number(v)}' for k, v in curve.items())}); "
        f"the top λ minus each other: " + "; ".join(f"{fmt_l1(k)}: {_interval(d)}" for k, d in diffs.items())
        + "; the peak lands on " + ", ".join(f"λ = {fmt_l1(k)} in {v:.0%}" for k, v in share.items() if v > 0)
        + " of seed resamplings" + (f"; not told apart from the top: λ = {', '.join(map(fmt_l1, tied))}" if tied else ""),
        f"decided against the {null}: shown if the top λ exceeds both ends and every other λ "
        f"(intervals above 0) and lies within one grid step of {fmt_l1(PAPER_PE_PEAK_L1)}; a plateau if some λ "
        "cannot be told from the top; contradicted if the curve does not rise and fall, or peaks elsewhere",
        verdict, {"peak": peak, "share": share, "tied": tied, "curve": curve})


def both_unit_sets(rule, table: pd.DataFrame, live_metric: str, **options) -> list[Verdict]:
    """A lambda claim over all units and over the units alive in both networks (where the table has
    ``live_metric`` and a null for it); the all-unit verdict becomes an artefact of dead units where it shows
    the claim and the live units do not (L1 erasing units moves the all-unit metrics by itself)."""
    every = rule(table, **options)
    has_null = any(f"{live_metric}_{n}" in table for n in ("null", "null_structured")) or live_metric == "pe_alive"
    if live_metric not in table or not has_null:
        return [every]
    live = rule(table, alive=True, **options)
    if every.verdict in (SHOWN, PLATEAU) and live.verdict in (INCONCLUSIVE, CONTRADICTED, NOT_TESTABLE):
        every.verdict = DEAD_ARTEFACT
        every.finding += f"; over the units alive in both networks: {live.verdict}"
    return [every, live]


def pe_peaks_in_l1_both(table: pd.DataFrame) -> list[Verdict]:
    """``pe_peaks_in_l1`` over all units and over the live ones (``both_unit_sets``)."""
    return both_unit_sets(pe_peaks_in_l1, table, "pe_alive")


def best_pe(table: pd.DataFrame) -> Verdict:
    """PE at the paper's cell (lambda 0.001, C = 9) against the paper's 0.48: an equivalence test of PE minus
    0.48 within a margin from the data (a tenth of PE's range over the grid), after asking whether PE there lies
    above the structured null at all; and the highest PE over all cells with an interval that accounts for
    picking the maximum."""
    minus = _level_null(table, "pe")
    pe = Evidence(table, "pe")
    means = pe.means()
    cell = (PAPER_BEST_PE_L1, PAPER_BEST_PE_C)
    claim = "The highest PE, about 0.48, at λ = 0.001 with 9 classes"
    if cell not in means.index:
        return Verdict(claim, "PE ≈ 0.48 at λ = 0.001, C = 9", "PE at λ = 0.001, C = 9", np.nan, np.nan, np.nan,
                       "the grid has no λ = 0.001, C = 9", "needs the paper's cell", NOT_TESTABLE)
    at = pe.estimate(lambda m: m.loc[cell])
    off = pe.estimate(lambda m: m.loc[cell] - PAPER_BEST_PE)
    excess = Evidence(table, "pe", minus=minus).estimate(lambda m: m.loc[cell])
    margin = grid_margin(table, "pe")
    best = pe.estimate(lambda m: m.max(), method="bootstrap")
    where = means.idxmax()
    above = effect(excess)
    if _untestable(at) or _untestable(excess):
        verdict = NOT_TESTABLE
    else:
        verdict = equivalence(off, margin)
        if verdict == SHOWN and above != SHOWN:  # 0.48, but unrelated networks of this data score as much
            verdict = ARTEFACT
    return Verdict(
        claim, f"PE ≈ {PAPER_BEST_PE} at λ = 0.001, C = 9", f"PE at λ = 0.001, C = 9 minus {PAPER_BEST_PE}",
        off.value, off.low, off.high,
        f"PE at the paper's cell {interval(at.value, at.low, at.high, sign=False)}, {_interval(off)} from "
        f"{PAPER_BEST_PE} (margin ±{margin:.3f}: a tenth of PE's range over the grid), {_interval(excess)} above the "
        f"{_null_name(minus)}; the highest mean PE {means.max():.3f} at λ = {fmt_l1(where[0])}, C = {where[1]}, "
        f"[{number(best.low, sign=False)}, {number(best.high, sign=False)}] for the maximum with its selection (seeds resampled, the maximum over "
        "cells taken each time)",
        f"an equivalence test: shown if PE minus {PAPER_BEST_PE} at the paper's cell lies within ± a tenth of PE's "
        f"range over the grid and PE there lies above the {_null_name(minus)}; contradicted if it lies outside "
        "that margin; inconclusive if it straddles it; an artefact of the null if it lies within it but PE there "
        "does not lie above that null", verdict, {"margin": margin, "excess": excess})


def apc2_barely_moves_with_l1(table: pd.DataFrame, *, alive: bool = False) -> Verdict:
    """An equivalence test: APC-2 above the structured null (over all units, or with ``alive`` over the units
    alive in both networks, above the null with their live units) changes from lambda = 0 to the largest
    lambda by less than a tenth of its value at lambda = 0 (the signal there is to move), after asking whether
    there is any signal above the null at all."""
    metric = "apc2_alive" if alive else "apc2"
    minus = _live_null(table, metric) if alive else _level_null(table, metric)
    null, who = _null_name(minus, alive), _who(alive)
    ev = Evidence(table, metric, minus=minus)
    l1s = sorted({k[0] for k in ev.index})
    at_zero = ev.estimate(lambda m: by_l1(m).loc[l1s[0]])
    change = ev.estimate(lambda m: by_l1(m).loc[l1s[-1]] - by_l1(m).loc[l1s[0]])
    margin = MARGIN_SHARE * abs(at_zero.value)
    if _untestable(change) or _untestable(at_zero):
        verdict = NOT_TESTABLE
    elif effect(at_zero) != SHOWN:
        verdict = ARTEFACT
    else:
        verdict = equivalence(change, margin)
    return Verdict(
        f"Regularisation barely moves APC-2 ({who})", "APC-2 is nearly flat in λ",
        f"APC-2 above the {null} at λ = {fmt_l1(l1s[-1])} minus at λ = 0, {who}", change.value, change.low,
        change.high,
        f"APC-2 above the {null}, mean over C ≥ 3: {_interval(at_zero)} at λ = 0; change to "
        f"λ = {fmt_l1(l1s[-1])} {_interval(change)}; margin ±{margin:.3f} (a tenth of the excess at λ = 0)",
        f"an equivalence test against the {null}: shown if the change's interval lies within ± a tenth of the "
        "excess at λ = 0, contradicted if it lies outside, inconclusive if it straddles the margin; an artefact "
        "of the null if APC-2 is not above that null at λ = 0 (nothing to move)",
        verdict, {"margin": margin, "at_zero": at_zero})


def grad_apc1_collapses(table: pd.DataFrame, *, classes=CLASSES, alive: bool = False) -> Verdict:
    """APC-1 of the summed gradients above the structured null (the untrained one if the table lacks it; with
    ``alive``, over the units alive in both networks, above the null with their live units) for every lambda
    (mean over ``classes``): above it at lambda = 0 (an effect), and within a margin of it for every lambda > 0
    (an equivalence: "near zero" can mean no more than the null, since matching never gives 0; the margin is a
    tenth of the excess at lambda = 0, the signal that is to collapse)."""
    metric = "apc1_alive" if alive else "apc1"
    null = _live_null(table, metric) if alive else _level_null(table, metric)
    ev = Evidence(table, metric, target="grads", minus=null, classes=classes)
    l1s = sorted({k[0] for k in ev.index})
    excess = {lam: ev.estimate(lambda m, lam=lam: by_l1(m).loc[lam]) for lam in l1s}
    margin = MARGIN_SHARE * abs(excess[l1s[0]].value)
    near = {lam: equivalence(e, margin) for lam, e in excess.items()}
    at_zero = effect(excess[l1s[0]]) if l1s[0] == 0 else NOT_TESTABLE
    later = [near[lam] for lam in l1s[1:]]
    if any(_untestable(e) for e in excess.values()) or not later:
        verdict = NOT_TESTABLE
    elif at_zero != SHOWN:
        verdict = ARTEFACT  # even at lambda = 0 no more alike than the null: nothing to collapse
    elif CONTRADICTED in later:
        verdict = CONTRADICTED
    else:
        verdict = SHOWN if all(v == SHOWN for v in later) else INCONCLUSIVE
    first = excess[l1s[1]] if len(l1s) > 1 else excess[l1s[0]]
    name, who = _null_name(null, alive), _who(alive)
    return Verdict(
        f"For any λ > 0, APC-1 of the gradients falls to near zero ({who})",
        "APC-1 of the gradients ≈ 0 for every λ > 0",
        f"APC-1 of the gradients above the {name} at λ = {fmt_l1(l1s[min(1, len(l1s) - 1)])}, {who}",
        first.value, first.low, first.high,
        f"APC-1 of the summed gradients above the {name}, mean over C in {_classes(classes)}: "
        + "; ".join(f"λ = {fmt_l1(k)}: {_interval(e)} ({near[k]} within ±{margin:.3f})" for k, e in excess.items()),
        f"decided against the {name}: shown if it lies above that null at λ = 0 and, for every λ > 0, "
        f"within ± a tenth of its excess at λ = 0 (an equivalence test); contradicted if it lies outside that "
        "margin at some λ > 0; an artefact of the null if it is not above the null at λ = 0",
        verdict, {"excess": excess, "near": near, "null": null, "margin": margin})


def representations_alike(cka: pd.DataFrame, baselines: dict[str, float]) -> Verdict:
    """Linear CKA between seeds at the end of training against the strongest baseline, in one configuration:
    ``cka`` a table of seed pairs (seed_a, seed_b, cka); ``baselines`` {name: CKA level} (untrained networks,
    the input's own PCA projection, networks trained for another C). ``representations_alike_grid`` judges
    every configuration at once."""
    _, _, v = pair_array(cka, "cka", [])
    strongest = max(baselines, key=baselines.get)
    level = baselines[strongest]
    above = estimate(v, lambda m: m[0] - level)
    return Verdict(
        "Representations look alike across seeds", "the seeds' PCA trajectories look alike",
        f"CKA between seeds minus the strongest baseline ({strongest})", above.value, above.low, above.high,
        f"linear CKA between seeds {above.value + level:.3f}; baselines: "
        + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()) + f"; above the strongest by {_interval(above)}",
        "decided against the strongest baseline: shown if CKA between seeds exceeds it (interval above 0), "
        "contradicted if it lies below, inconclusive otherwise: looking alike must mean more than what any two "
        "representations of these images share", effect(above))


CKA_BASELINES = {"untrained": "the same pair untrained", "input_pca": "the images' own PCA projection"}


def representations_alike_grid(cka: pd.DataFrame) -> Verdict:
    """Linear CKA between seeds at the end of training above the stronger of its baselines, in every (lambda,
    C) configuration of a ``cka_table`` (``metrics.representations``): in each configuration the baseline whose
    mean is the higher there (the same pair untrained, or the images' own PCA projection) is subtracted pair by
    pair; the statistic is the mean over the configurations, its interval resamples the seeds and the probe
    images together (``crossed_estimate``); beside it, each configuration's own verdict."""
    whole = cka[cka.block == -1]
    levels = whole.groupby(["l1", "n_classes"])[list(CKA_BASELINES)].mean()
    stronger = levels.idxmax(axis=1)  # per configuration: the baseline to beat
    pick = pd.Series(list(zip(cka.l1, cka.n_classes))).map(stronger).to_numpy()
    table = cka.assign(excess=cka.cka - np.where(pick == "untrained", cka.untrained, cka.input_pca), target="params")
    ev = Evidence(table, "excess", classes=sorted(set(cka.n_classes)))
    overall = ev.estimate(lambda m: float(m.mean()))
    cells = {key: ev.estimate(lambda m, key=key: m.loc[key]) for key in ev.index}
    outcomes = pd.Series({key: effect(e) for key, e in cells.items()})
    weakest = min(cells, key=lambda key: cells[key].value)
    counts = "; ".join(f"{v} in {n}" for v, n in outcomes.value_counts().items())
    beaten = ", ".join(f"{CKA_BASELINES[b]} in {n}" for b, n in stronger.value_counts().items())
    return Verdict(
        "Representations look alike across seeds", "the seeds' PCA trajectories look alike",
        "CKA between seeds minus the stronger baseline, mean over every (λ, C)", overall.value, overall.low,
        overall.high,
        f"linear CKA between seeds {whole.cka.mean():.3f} on average; the stronger baseline: {beaten} of the "
        f"{len(cells)} configurations; above it by {_interval(overall)} (seeds and probe images resampled); per "
        f"configuration: {counts}; the weakest, λ = {fmt_l1(weakest[0])}, C = {weakest[1]}: "
        f"{_interval(cells[weakest])}",
        "decided against the stronger baseline of each configuration (the same pair untrained, or the images' own "
        "PCA projection): shown if the mean excess over the configurations lies above 0, contradicted if below, "
        "inconclusive otherwise: looking alike must mean more than what any two representations of these images "
        "share", effect(overall), {"cells": outcomes.to_dict(), "stronger": stronger.to_dict()})


def check_all(table: pd.DataFrame, *, cka: pd.DataFrame | None = None, baselines: dict | None = None,
              hidden: int = 16) -> pd.DataFrame:
    """Every claim as one row: claim, verdict, statistic, value, low, high, finding, rule, paper (the lambda
    claims twice: over all units and over the units alive in both networks, where the table has them).
    ``cka``: a ``cka_table`` (every configuration, judged by ``representations_alike_grid``), or one
    configuration's pairs with their ``baselines``."""
    table = table.copy()
    table.attrs["hidden"] = hidden
    verdicts = [pe_rises_with_c(table, hidden=hidden), *pe_peaks_in_l1_both(table), best_pe(table),
                apc2_falls_with_c(table, hidden=hidden),
                *both_unit_sets(apc2_barely_moves_with_l1, table, "apc2_alive"),
                *both_unit_sets(grad_apc1_collapses, table, "apc1_alive")]
    if cka is not None:
        verdicts.append(representations_alike_grid(cka) if "block" in cka else representations_alike(cka, baselines))
    return pd.DataFrame([v.row() for v in verdicts])


# ------------------------------------------------------------------------- the chapters' verdict sentences

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
    if overall.verdict == SHOWN:
        return text + "So the paper's observation holds for every λ > 0 here."
    if overall.verdict == ARTEFACT:
        return text + ("Even at λ = 0 the summed gradients of two seeds are no more alike than the null makes "
                       "unrelated ones: there is no contrast for λ > 0 to remove.")
    if overall.verdict == CONTRADICTED:
        return text + "So the paper's \"for any λ > 0\" does not hold here: at some λ > 0 they stay clearly above it."
    return text + "The seeds cannot tell, for some λ > 0, whether they are within that margin: inconclusive."


def _near_sentence(verdict: Verdict) -> str:
    near, margin = verdict.extra["near"], verdict.extra["margin"]
    names = lambda values: ", ".join(fmt_l1(v) for v in values) or "none"  # noqa: E731
    return (f"within ±{margin:.3f} of the {_null_name(verdict.extra['null'])} (a tenth of its excess at λ = 0): "
            f"λ = {names([k for k, v in near.items() if v == SHOWN])}; clearly beyond it: λ = "
            f"{names([k for k, v in near.items() if v == CONTRADICTED])}; cannot tell: λ = "
            f"{names([k for k, v in near.items() if v not in (SHOWN, CONTRADICTED)])}")

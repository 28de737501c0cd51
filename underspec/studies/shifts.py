"""Seeds under distribution shift, per regime: a configuration's summary per test set, whether L1 or C change
how much more seeds disagree once the data move, and those findings in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics.shift import summarize_shifts
from ..text import fmt_l1, interval, number
from . import claims
from .regimes import Regime


def shift_summary(regime: Regime, l1: float, n_classes: int) -> pd.DataFrame:
    """Seeds under shift at one configuration: per test set (``shift``), the mean accuracy and its standard
    deviation over seeds (``accuracy_sd``), and the accuracy gap and the disagreement between two seeds with
    seed-level intervals (``summarize_shifts``: delete-one-seed jackknife)."""
    part = regime.shifts[(regime.shifts.l1 == l1) & (regime.shifts.n_classes == n_classes)]
    out = summarize_shifts(part)
    whole = part[part.block == -1] if "block" in part else part  # every test image (not a block left out)
    per_seed = pd.concat([whole[["shift", "seed_a", "acc_a"]].set_axis(["shift", "seed", "acc"], axis=1),
                          whole[["shift", "seed_b", "acc_b"]].set_axis(["shift", "seed", "acc"], axis=1)])
    spread = per_seed.drop_duplicates(["shift", "seed"]).groupby("shift", sort=False).acc.std(ddof=1)
    return out.assign(accuracy_sd=out["shift"].map(spread))


def shift_page_table(summaries: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``shift_summary`` of several regimes for the page: one row per (test set, regime), the accuracy with its
    spread over seeds, and the gap and disagreement between seeds with their intervals ("—": a test set the
    regime lacks). Long, not wide, so that it fits the page's width."""
    rows = []
    for name, s in summaries.items():
        for r in s.itertuples():
            rows.append({"test set": r.shift, "regime": name,
                         "accuracy (sd over seeds)": "—" if not np.isfinite(r.accuracy)
                         else f"{number(r.accuracy, sign=False)} ({number(r.accuracy_sd, sign=False)})",
                         "accuracy gap between seeds": interval(r.acc_gap, r.acc_gap_low, r.acc_gap_high, sign=False),
                         "disagreement between seeds": interval(r.disagreement, r.disagreement_low,
                                                                r.disagreement_high, sign=False)})
    order = list(dict.fromkeys(row["test set"] for row in rows))
    table = pd.DataFrame(rows)
    table["_order"] = table["test set"].map(order.index)
    return table.sort_values(["_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


def shift_effects(regime: Regime) -> dict:
    """Do L1 or C change how much more seeds disagree once the data move? Per seed pair, the disagreement on
    the shifted test sets (their mean; the far shift left out, since not every regime has one) minus that in
    distribution; then, with seed-level intervals (``claims.Evidence``, C ≥ 3; seeds and test images resampled
    together where the shift table has image blocks): its mean (``mean``), its change
    from lambda = 0 to the largest lambda without degenerate networks (``l1``), and its slope per class (``c``);
    ``base`` / ``top``: the lambdas compared."""
    s = regime.shifts
    keys = ["l1", "n_classes", "seed_a", "seed_b"] + (["block"] if "block" in s else [])  # blocks: images resampled
    base = s[s["shift"] == "in distribution"].set_index(keys).disagreement
    moved = s[(s["shift"] != "in distribution") & ~s["shift"].str.startswith("far: ")]
    excess = (moved.groupby(keys).disagreement.mean() - base).rename("excess").reset_index().assign(target="params")
    cells = regime.degenerate
    unusable = set(cells[cells.n_classes >= 3].l1)
    l1s = sorted(excess.l1.unique())
    clean = [lam for lam in l1s if lam not in unusable]
    ev = claims.Evidence(excess[excess.l1.isin(clean or l1s)], "excess")
    out = {"top": (clean or l1s)[-1], "base": (clean or l1s)[0], "mean": ev.estimate(lambda m: float(m.mean()))}
    out["l1"] = (ev.estimate(lambda m: claims.by_l1(m).loc[clean[-1]] - claims.by_l1(m).loc[clean[0]])
                 if len(clean) > 1 else None)
    out["c"] = ev.estimate(lambda m: claims.slope(claims.by_c(m))) if excess.n_classes.nunique() > 1 else None
    return out


def _change(e, what: str) -> str:
    if e is None:
        return f"{what}: not testable with this grid (fewer than two values without degenerate networks)"
    if e.low > 0:
        word = "more"
    elif e.high < 0:
        word = "less"
    else:
        return f"{what}: no change the seeds can detect ({interval(e.value, e.low, e.high)})"
    return f"{what}: seeds disagree {word} under shift ({interval(e.value, e.low, e.high)})"


def shift_sentence(regime: Regime) -> str:
    """``shift_effects`` in words."""
    e = shift_effects(regime)
    m = e["mean"]
    span = f"from λ = {fmt_l1(e['base'])} to λ = {fmt_l1(e['top'])}"
    return (f"{regime.name}: under the shifts, two seeds disagree on {interval(m.value, m.low, m.high)} more of the "
            f"images than in distribution (mean over C ≥ {min(claims.CLASSES)} and λ from {fmt_l1(e['base'])} to "
            f"{fmt_l1(e['top'])}); " + _change(e["l1"], span if e["l1"] is not None else "the effect of λ") + "; "
            + _change(e["c"], "per added class") + ".")

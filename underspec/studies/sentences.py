"""Verdict sentences of the chapters that judge no claim of the paper's: the matching chapter's (scoring W2
under the W1 matching; the dead pixels), from the same evidence and outcomes as the claim rules."""

from __future__ import annotations

import pandas as pd

from ..errors import UnderspecError
from ..text import fmt_l1
from .evidence import SHOWN, Evidence, _direction, _interval, effect

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
    carry data, per lambda at ``n_classes``, with seed-level intervals; a boost is that difference shown above
    0 (``effect``) at some lambda > 0 and larger there than at lambda = 0 (where the dead pixels' weights keep
    their independent initial values)."""
    if "apc1_data" not in table:
        raise UnderspecError("the table needs apc1_data: compare(..., data=data)")
    ev = Evidence(table, lambda p: p.apc1 - p.apc1_data, target=target, classes=(n_classes,))
    l1s = sorted({k[0] for k in ev.index})
    gaps = {lam: ev.estimate(lambda m, lam=lam: m.loc[(lam, n_classes)]) for lam in l1s}
    change = {lam: ev.estimate(lambda m, lam=lam: m.loc[(lam, n_classes)] - m.loc[(l1s[0], n_classes)])
              for lam in l1s[1:]}
    boost = [lam for lam in l1s[1:] if effect(gaps[lam]) == SHOWN and effect(change[lam]) == SHOWN]
    text = (f"At C = {n_classes}, APC-1 on all pixels minus APC-1 on the pixels with data: "
            + "; ".join(f"λ = {fmt_l1(k)}: {_interval(e)}" for k, e in gaps.items()) + ". ")
    if boost:
        return text + f"The dead pixels raise APC-1 mechanically at λ = {', '.join(map(fmt_l1, boost))}."
    return text + ("With SGD the L1 penalty only makes their weights oscillate around zero instead of setting "
                   "them to zero, so the mechanical boost predicted for λ > 0 is not seen here.")

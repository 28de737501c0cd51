"""Do two seeds find the same redundant units? After the units of seed b are matched to those of seed a
(Hungarian matching of their activations, ``matching.match_units``; ``perm[i]`` is b's unit matched to a's
unit i):

- ``matched_overlap``: of the units a can drop (A) and those b can drop (B), how many are matched to each
  other, |A ∩ perm(B)| / sqrt(|A| |B|), beside its chance level sqrt(|A| |B|) / H (the expected overlap of two
  unrelated sets of those sizes under a random matching: |A| |B| / H units);
- ``repeated_pair_agreement``: of a's repeated pairs (|r| >= 0.5 between two units), the share whose matched
  pair is repeated in b too, beside its chance level, the share of b's pairs of live units that are repeated.

Both are NaN where there is nothing to compare (a set or a pair list is empty).
"""

from __future__ import annotations

import torch

from ..errors import UnderspecError
from .redundancy import REPEATED_R


def matched_overlap(drop_a: torch.Tensor, drop_b: torch.Tensor, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """drop_a, drop_b (..., H) bool, perm (..., H) -> (overlap, chance), each (...,) float64 (see the module
    doc)."""
    if drop_a.shape != drop_b.shape or perm.shape != drop_a.shape:
        raise UnderspecError(f"matched_overlap takes drop_a, drop_b and perm of one shape (..., H), got "
                             f"{tuple(drop_a.shape)}, {tuple(drop_b.shape)} and {tuple(perm.shape)}")
    both = (drop_a & drop_b.gather(-1, perm.clamp_min(0)) & (perm >= 0)).sum(-1).double()
    size = torch.sqrt(drop_a.sum(-1).double() * drop_b.sum(-1).double())
    nan = torch.full_like(size, float("nan"))
    return (torch.where(size > 0, both / torch.where(size > 0, size, 1.0), nan),
            torch.where(size > 0, size / drop_a.shape[-1], nan))


def repeated_pair_agreement(r_a: torch.Tensor, r_b: torch.Tensor, excluded_b: torch.Tensor, perm: torch.Tensor, *,
                            threshold: float = REPEATED_R) -> tuple[torch.Tensor, torch.Tensor]:
    """r_a, r_b (..., H, H) unit correlations (``redundancy.unit_correlations``; 0 for excluded units),
    excluded_b (..., H) b's dead or constant units, perm (..., H) -> (agreement, chance), each (...,) float64
    (see the module doc)."""
    h = r_a.shape[-1]
    upper = torch.triu(torch.ones(h, h, dtype=torch.bool), 1)
    rep_a = (r_a.abs() >= threshold) & upper
    idx = perm.clamp_min(0)
    rows = r_b.gather(-2, idx.unsqueeze(-1).expand(*idx.shape, h))  # b's rows in a's order
    r_b_matched = rows.gather(-1, idx.unsqueeze(-2).expand(*idx.shape[:-1], h, h))
    rep_b_matched = r_b_matched.abs() >= threshold
    n_a = rep_a.sum((-2, -1)).double()
    agree = (rep_a & rep_b_matched).sum((-2, -1)).double()
    live_b = ~excluded_b
    pairs_b = ((live_b.unsqueeze(-1) & live_b.unsqueeze(-2)) & upper).sum((-2, -1)).double()
    rep_b = ((r_b.abs() >= threshold) & upper).sum((-2, -1)).double()
    nan = torch.full_like(n_a, float("nan"))
    return (torch.where(n_a > 0, agree / torch.where(n_a > 0, n_a, 1.0), nan),
            torch.where(pairs_b > 0, rep_b / torch.where(pairs_b > 0, pairs_b, 1.0), nan))

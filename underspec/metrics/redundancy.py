"""Exact redundancy in ReLU layers, and the power-law exponent of a weight spectrum.

``merge_parallel_units(params)``: two hidden units whose incoming weights and bias are positively parallel,
(w_i, b_i) = c (w_j, b_j) with c > 0, compute relu(c z_j) = c relu(z_j): unit i is removed and c times its
outgoing weights are added to unit j's, and the network computes the same function. A unit whose incoming
weights and bias are all zero outputs relu(0) = 0 everywhere and is removed too. Sign-flipped pairs (c < 0)
compute different functions under ReLU and are left alone. Every hidden layer, first to last.

``powerlaw_alpha(eigenvalues)``: the exponent of a power-law tail p(x) ~ x^-alpha fitted as Clauset, Shalizi and
Newman (2009) do and WeightWatcher after them: for every candidate x_min the continuous maximum-likelihood
alpha = 1 + n / sum(log(x / x_min)) over the n values >= x_min, and the x_min whose fitted tail is closest to
the data in the KS distance; sigma = (alpha - 1) / sqrt(n). ``tests/test_redundancy.py`` holds it to the
``powerlaw`` package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UnderspecError, shown
from ..training.model import depth_of

MIN_EIGENVALUES = 50  # fewer cannot show a tail (the paper's width of 16 gives 16)


def merge_parallel_units(params: dict[str, torch.Tensor], *, tol: float = 1e-6) -> tuple[dict, int]:
    """One network's parameters (``w1``, ``b1``, ..., as ``Member.final`` has them) with every hidden layer's
    positively parallel units merged and its all-zero units removed; and how many units were removed. Units
    are parallel when the cosine of their (w, b) rows is at least 1 - ``tol``."""
    if not isinstance(params, dict) or "w1" not in params or params["w1"].dim() != 2:
        raise UnderspecError("merge_parallel_units takes one network's parameters (w1 of shape (H, D)), e.g. "
                             "run.member(...).final")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
        raise UnderspecError(f"tol is a tolerance on the cosine, in [0, 1), got {shown(tol)}")
    p = {k: v.detach().clone() for k, v in params.items()}
    removed = 0
    for layer in range(1, depth_of(p) + 1):
        w, b, out = p[f"w{layer}"], p[f"b{layer}"], p[f"w{layer + 1}"]
        rows = torch.cat([w, b[:, None]], 1).double()  # (H, fan_in + 1)
        norms = rows.norm(dim=1)
        keep = norms > 0  # an all-zero unit outputs 0 everywhere
        unit = rows / norms.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
        cos = unit @ unit.T
        out = out.double()
        for j in range(len(rows)):
            if not keep[j]:
                continue
            twins = torch.nonzero((cos[j] >= 1 - tol) & keep).squeeze(1)
            for i in twins[twins > j].tolist():  # unit i = c * unit j, c > 0: its output moves onto j's
                out[:, j] += (norms[i] / norms[j]) * out[:, i]
                keep[i] = False
        removed += int((~keep).sum())
        p[f"w{layer}"], p[f"b{layer}"] = w[keep], b[keep]
        p[f"w{layer + 1}"] = out[:, keep].to(w.dtype)
    return p, removed


@dataclass(frozen=True)
class PowerLawFit:
    """A power-law tail fit: ``alpha`` (p(x) ~ x^-alpha), its standard error ``sigma``, ``xmin`` where the tail
    starts, ``n_tail`` values in it, and ``ks`` its KS distance from the data's tail."""

    alpha: float
    sigma: float
    xmin: float
    n_tail: int
    ks: float


def powerlaw_alpha(eigenvalues) -> PowerLawFit:
    """The power-law exponent of the tail of ``eigenvalues`` (1-D, positive: e.g. a weight matrix's squared
    singular values), Clauset-Shalizi-Newman: the x_min minimising the KS distance, the MLE alpha above it."""
    x = np.sort(np.asarray(torch.as_tensor(eigenvalues).detach().double().cpu() if isinstance(eigenvalues, torch.Tensor)
                           else eigenvalues, dtype=float).ravel())
    if len(x) < MIN_EIGENVALUES:
        raise UnderspecError(f"a power-law fit needs at least {MIN_EIGENVALUES} eigenvalues, got {len(x)}: a layer "
                             f"of {len(x)} units cannot show a tail (fit wider layers)")
    if not np.isfinite(x).all() or (x <= 0).any():
        raise UnderspecError("powerlaw_alpha needs finite, positive eigenvalues (drop the zeros of a rank-deficient "
                             "matrix)")
    best = None
    for start in range(len(x) - 1):  # every candidate xmin that leaves at least two values in the tail
        xmin = x[start]
        if start and xmin == x[start - 1]:
            continue
        tail = x[start:]
        logs = np.log(tail / xmin)
        if logs.sum() <= 0:
            continue
        alpha = 1 + len(tail) / logs.sum()
        empirical = np.arange(len(tail)) / len(tail)  # the tail's CDF just below each value
        fitted = 1 - (tail / xmin) ** (1 - alpha)
        ks = float(np.max(np.abs(np.concatenate([empirical - fitted, empirical + 1 / len(tail) - fitted]))))
        if best is None or ks < best.ks:
            best = PowerLawFit(float(alpha), float((alpha - 1) / np.sqrt(len(tail))), float(xmin), len(tail), ks)
    if best is None:
        raise UnderspecError("powerlaw_alpha: the eigenvalues are all equal: there is no tail to fit")
    return best

"""Spectra of weight matrices: the empirical spectral density (ESD) of a layer and of its update W - W0, the
power-law exponent of its tail, and how the spectrum moves over training.

The ESD of W (H, D) is the distribution of the eigenvalues of W W^T (or W^T W): its squared singular values,
min(H, D) of them (Martin and Mahoney 2018 read training's "self-regularisation" off its shape).

``powerlaw_alpha(eigenvalues)``: the exponent of a power-law tail p(x) ~ x^-alpha fitted as Clauset, Shalizi and
Newman (2009) do and WeightWatcher after them: for every candidate x_min the continuous maximum-likelihood
alpha = 1 + n / sum(log(x / x_min)) over the n values >= x_min, and the x_min whose fitted tail is closest to
the data in the KS distance; sigma = (alpha - 1) / sqrt(n). ``tests/test_redundancy.py`` holds it to the
``powerlaw`` package. Fewer than ``MIN_EIGENVALUES`` values are refused: the paper's width of 16 gives 16.

``spectrum_summary`` reduces an ESD to the numbers a table shows (largest eigenvalue, median, stable rank,
alpha where it can be fitted, NaN with the reason where it cannot); ``spectra_over_training`` does it for every
epoch of a member's per-epoch snapshots, for W and for W - W0, so that "an invariant bulk", "an outlier" and
"a heavier tail" (the three regimes of ``seeds/002``) can each be read as a number per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import UnderspecError

MIN_EIGENVALUES = 50  # fewer cannot show a tail (the paper's width of 16 gives 16)


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
    if isinstance(eigenvalues, torch.Tensor):
        eigenvalues = eigenvalues.detach().double().cpu().numpy()
    x = np.sort(np.asarray(eigenvalues, dtype=float).ravel())
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


def esd(w: torch.Tensor) -> torch.Tensor:
    """The eigenvalues of W W^T, largest first: (..., H, D) -> (..., min(H, D)) float64 (squared singular
    values; leading axes are members)."""
    if not isinstance(w, torch.Tensor) or w.dim() < 2:
        raise UnderspecError("esd takes a weight matrix (..., H, D), e.g. run.final['w1']")
    return torch.linalg.svdvals(w.double()) ** 2


def spectrum_summary(eigenvalues) -> dict:
    """One ESD (1-D, any order) as numbers: ``lambda_max``, ``median``, ``stable_rank`` = sum / max (how many
    directions carry the energy), ``alpha`` and ``alpha_sigma`` of the power-law tail (NaN where there are fewer
    than ``MIN_EIGENVALUES`` positive values: ``alpha_note`` says so) and ``n`` the values."""
    x = np.asarray(torch.as_tensor(eigenvalues).double().cpu(), dtype=float).ravel()
    top = float(x.max()) if len(x) else np.nan
    positive = x[x > 1e-12 * top] if top > 0 else x[:0]
    out = {"n": len(x), "lambda_max": top, "median": float(np.median(x)) if len(x) else np.nan,
           "stable_rank": float(x.sum() / x.max()) if len(x) and x.max() > 0 else np.nan,
           "alpha": np.nan, "alpha_sigma": np.nan, "alpha_note": ""}
    if len(positive) < MIN_EIGENVALUES:
        out["alpha_note"] = f"not fitted: {len(positive)} eigenvalues (< {MIN_EIGENVALUES})"
        return out
    fit = powerlaw_alpha(positive)
    out.update(alpha=fit.alpha, alpha_sigma=fit.sigma)
    return out


def spectra_over_training(snapshots: torch.Tensor, *, fit_from: int = 0) -> pd.DataFrame:
    """The spectrum of one layer at every recorded epoch: snapshots (E+1, H, D) (epoch 0 = the initial
    weights) -> one row per epoch and matrix (``"W"`` and ``"W - W0"``; the update has no row at epoch 0) with
    ``spectrum_summary``'s columns and ``bulk_ratio`` = median / the initial median (1: the bulk has not moved)
    and ``outlier_ratio`` = lambda_max / the initial lambda_max. ``fit_from``: the first epoch whose alpha is
    fitted (alpha costs most; earlier epochs get NaN)."""
    if not isinstance(snapshots, torch.Tensor) or snapshots.dim() != 3 or len(snapshots) < 2:
        raise UnderspecError("spectra_over_training takes one member's per-epoch snapshots of a layer (E+1, H, D), "
                             "e.g. run.member(...).snapshots['w1'] of a run trained with snapshots=True")
    eig = esd(snapshots)  # (E+1, K)
    update = esd(snapshots[1:] - snapshots[:1])
    first = spectrum_summary(eig[0]) if fit_from == 0 else {"median": float(eig[0].median()),
                                                             "lambda_max": float(eig[0].max())}
    rows = []
    for epoch in range(len(snapshots)):
        for matrix, values in (("W", eig[epoch]), ("W - W0", update[epoch - 1] if epoch else None)):
            if values is None:
                continue
            summary = spectrum_summary(values) if epoch >= fit_from else _no_fit(values)
            rows.append({"epoch": epoch, "matrix": matrix, **summary,
                         "bulk_ratio": summary["median"] / first["median"],
                         "outlier_ratio": summary["lambda_max"] / first["lambda_max"]})
    return pd.DataFrame(rows)


def _no_fit(values: torch.Tensor) -> dict:
    x = values.double().cpu().numpy()
    return {"n": len(x), "lambda_max": float(x.max()), "median": float(np.median(x)),
            "stable_rank": float(x.sum() / x.max()) if x.max() > 0 else np.nan, "alpha": np.nan,
            "alpha_sigma": np.nan, "alpha_note": "not fitted at this epoch"}

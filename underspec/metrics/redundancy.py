"""Redundant units: repeated units (Casper et al. 2019), their groups, and exact redundancy in ReLU layers.

**Repeated units.** A unit's *repeated count* is the number of other units of its layer whose activations on
held-out images have |Pearson r| >= ``REPEATED_R`` (0.5, Casper et al.'s threshold). A dead unit (the package's
policy, ``metrics.units.DEAD_POLICY``) or a unit that is constant on the images given has no correlation: its
count is 0 and it is flagged, never NaN. ``repeated_groups`` counts the groups that the |r| >= 0.5 relation
joins (connected components among the live units): a layer's *non-redundant part*, each group of repeated units
counted once. The nulls: the same counts for the untrained network (its initial weights), and the structured
null ``rotated``: the layer's activations mixed by a uniform random rotation of its units, which keeps the
layer's whole covariance (what the data alone makes alike) and removes any unit-by-unit alignment.

**Exact redundancy.** Two units whose incoming weights and bias are positively parallel, (w_i, b_i) = c (w_j, b_j)
with c > 0, compute relu(c z_j) = c relu(z_j): ``merge_parallel_units`` removes unit i, adds c times its
outgoing weights to unit j's, and the network computes the same function. A unit whose incoming weights and
bias are all zero outputs relu(0) = 0 everywhere and is removed too. Sign-flipped pairs (c < 0) compute
different functions under ReLU and are left alone; ``parallel_units`` counts both kinds over a sweep of
tolerances on the cosine. Every hidden layer, first to last.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components

from ..errors import UnderspecError, shown
from ..training.model import depth_of
from .chance import random_orthogonal
from .spectra import MIN_EIGENVALUES, PowerLawFit, powerlaw_alpha  # noqa: F401  (public here since 4292ac5)

REPEATED_R = 0.5  # Casper et al.: units whose outputs correlate at |r| >= 0.5 are repeated
TOLERANCES = (1e-6, 1e-4, 1e-3, 1e-2)  # on the cosine of two units' (w, b) rows: 1 - cos <= tol is "parallel"


def unit_correlations(acts: torch.Tensor, dead: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pearson r between the units of a layer on a set of images: acts (..., N, H) -> r (..., H, H) float64
    (accurate to float32 rounding) with 0 on the diagonal, and ``excluded`` (..., H) bool: units that are ``dead`` (..., H) by the caller's policy or
    constant on these images, whose rows and columns of r are 0 (no correlation, never NaN)."""
    if not isinstance(acts, torch.Tensor) or acts.dim() < 2 or acts.shape[-2] < 2:
        raise UnderspecError("unit_correlations takes activations (..., N, H) on at least 2 images")
    x = acts.double()
    excluded = (x == x[..., :1, :]).all(-2)
    if dead is not None:
        excluded = excluded | dead.to(excluded.device)
    z = x - x.mean(-2, keepdim=True)
    norm = torch.linalg.vector_norm(z, dim=-2)
    z = (z / torch.where(excluded, 1.0, norm).unsqueeze(-2)).float()  # standardised in float64, multiplied in
    r = (z.transpose(-1, -2) @ z).double().clamp_(-1.0, 1.0)  # float32: r to 1e-7, far finer than any threshold
    out = excluded.unsqueeze(-1) | excluded.unsqueeze(-2)
    r = r.masked_fill(out, 0.0)
    r.diagonal(dim1=-2, dim2=-1).zero_()
    return r, excluded


def repeated_counts(acts: torch.Tensor, *, threshold: float = REPEATED_R,
                    dead: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Casper et al.'s repeated count of every unit: acts (..., N, H) on held-out images -> counts (..., H)
    int64 (other live units with |r| >= ``threshold``) and ``excluded`` (..., H) bool (dead or constant: count
    0). ``dead``: the caller's dead units (``metrics.units.dead_units``)."""
    _check_threshold(threshold)
    r, excluded = unit_correlations(acts, dead)
    return (r.abs() >= threshold).sum(-1), excluded


def repeated_groups(acts: torch.Tensor, *, threshold: float = REPEATED_R,
                    dead: torch.Tensor | None = None) -> torch.Tensor:
    """The non-redundant part of a layer: acts (..., N, H) -> (...,) int64, the number of groups of live units
    that the relation |r| >= ``threshold`` joins (connected components; a unit with no repeat is its own
    group). Dead and constant units count in no group."""
    _check_threshold(threshold)
    return groups_of(*unit_correlations(acts, dead), threshold=threshold)


def groups_of(r: torch.Tensor, excluded: torch.Tensor, *, threshold: float = REPEATED_R) -> torch.Tensor:
    """``repeated_groups`` from the correlations ``unit_correlations`` gives: r (..., H, H), excluded (..., H)
    -> (...,) int64."""
    linked = (r.abs() >= threshold).cpu().numpy()
    alive = (~excluded).cpu().numpy()
    flat_links, flat_alive = linked.reshape(-1, *linked.shape[-2:]), alive.reshape(-1, alive.shape[-1])
    groups = [connected_components(links[np.ix_(keep, keep)], directed=False)[0] if keep.any() else 0
              for links, keep in zip(flat_links, flat_alive)]
    return torch.tensor(groups, dtype=torch.long).reshape(alive.shape[:-1])


def rotated(acts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The structured null of a layer's activations: acts (..., N, H) mixed by a uniform random rotation of the
    H units, acts @ Q (one Q per leading index). Keeps the layer's covariance up to rotation, removes any
    alignment of single units."""
    q = random_orthogonal(acts.shape[-1], tuple(acts.shape[:-2]), generator)
    return acts.double() @ q


def parallel_units(w: torch.Tensor, b: torch.Tensor, *, tolerances=TOLERANCES) -> dict[str, torch.Tensor]:
    """Exact redundancy of one layer over a sweep of tolerances: w (..., H, D), b (..., H) -> ``"zero"`` (...,)
    units whose (w, b) is all zero, and for every tolerance (last axis, (..., T)): ``"merged"`` the units that
    ``merge_parallel_units`` would remove as positively parallel to another (cosine >= 1 - tol; the zero ones
    not counted) and ``"flipped"`` the pairs of live units with cosine <= -(1 - tol) (not mergeable)."""
    if w.dim() < 2 or b.shape != w.shape[:-1]:
        raise UnderspecError(f"parallel_units takes w (..., H, D) and b (..., H), got {tuple(w.shape)} and "
                             f"{tuple(b.shape)}")
    tolerances = tuple(_check_tolerance(t) for t in tolerances)
    rows = torch.cat([w.double(), b.double().unsqueeze(-1)], -1)
    norms = torch.linalg.vector_norm(rows, dim=-1)
    alive = norms > 0
    unit = rows / norms.clamp_min(torch.finfo(torch.float64).tiny).unsqueeze(-1)
    cos = (unit @ unit.transpose(-1, -2)).cpu().numpy()
    lead = tuple(w.shape[:-2])
    flat_cos, flat_alive = cos.reshape(-1, *cos.shape[-2:]), alive.cpu().numpy().reshape(-1, cos.shape[-1])
    merged = np.zeros((len(flat_cos), len(tolerances)), dtype=np.int64)
    flipped = np.zeros_like(merged)
    upper = np.triu(np.ones(cos.shape[-2:], dtype=bool), 1)
    for n, (c, keep) in enumerate(zip(flat_cos, flat_alive)):
        both = upper & keep[:, None] & keep[None, :]
        for t, tol in enumerate(tolerances):
            merged[n, t] = int((_merge_targets(c, keep, tol) != np.arange(len(keep))).sum())
            flipped[n, t] = int((both & (c <= -(1 - tol))).sum())
    return {"zero": (~alive).sum(-1), "merged": torch.from_numpy(merged).reshape(*lead, len(tolerances)),
            "flipped": torch.from_numpy(flipped).reshape(*lead, len(tolerances))}


def _merge_targets(cos: np.ndarray, alive: np.ndarray, tol: float) -> np.ndarray:
    """For every unit, the unit it merges into (itself when it stays): units in order, each kept unit j takes
    every later kept unit i with cos[j, i] >= 1 - tol. Units not ``alive`` stay themselves (removed apart)."""
    keep, into = alive.copy(), np.arange(len(alive))
    for j in range(len(alive)):
        if not keep[j]:
            continue
        twins = np.nonzero((cos[j, j + 1:] >= 1 - tol) & keep[j + 1:])[0] + j + 1
        keep[twins] = False
        into[twins] = j
    return into


def merge_parallel_units(params: dict[str, torch.Tensor], *, tol: float = 1e-6) -> tuple[dict, int]:
    """One network's parameters (``w1``, ``b1``, ..., as ``Member.final`` has them) with every hidden layer's
    positively parallel units merged and its all-zero units removed; and how many units were removed. Units
    are parallel when the cosine of their (w, b) rows is at least 1 - ``tol``."""
    if not isinstance(params, dict) or "w1" not in params or params["w1"].dim() != 2:
        raise UnderspecError("merge_parallel_units takes one network's parameters (w1 of shape (H, D)), e.g. "
                             "run.member(...).final")
    tol = _check_tolerance(tol)
    p = {k: v.detach().clone() for k, v in params.items()}
    removed = 0
    for layer in range(1, depth_of(p) + 1):
        w, b, out = p[f"w{layer}"], p[f"b{layer}"], p[f"w{layer + 1}"]
        rows = torch.cat([w, b[:, None]], 1).double()  # (H, fan_in + 1)
        norms = rows.norm(dim=1)
        alive = norms > 0  # an all-zero unit outputs 0 everywhere
        unit = rows / norms.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
        into = torch.from_numpy(_merge_targets((unit @ unit.T).numpy(), alive.numpy(), tol))
        out = out.double()
        for i in torch.nonzero(into != torch.arange(len(into))).squeeze(1).tolist():
            j = int(into[i])  # unit i = c * unit j, c > 0: its output moves onto j's
            out[:, j] += (norms[i] / norms[j]) * out[:, i]
        keep = alive & (into == torch.arange(len(into)))
        removed += int((~keep).sum())
        p[f"w{layer}"], p[f"b{layer}"] = w[keep], b[keep]
        p[f"w{layer + 1}"] = out[:, keep].to(w.dtype)
    return p, removed


def _check_threshold(threshold) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise UnderspecError(f"threshold is a |Pearson r| in (0, 1], e.g. 0.5, got {shown(threshold)}")


def _check_tolerance(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
        raise UnderspecError(f"tol is a tolerance on the cosine, in [0, 1), got {shown(tol)}")
    return float(tol)

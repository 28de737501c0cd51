"""Low-rank updates (Nagarajan and Kolter 2019): how much of a layer's update W - W0 the network needs.

The update of a layer, dW = W - W0 (H, D), is projected onto its top-k left singular directions,
dW_k = U_k U_k^T dW (the best rank-k approximation of dW), and the network is evaluated with W0 + dW_k in place
of W. ``energy_kept`` is the share of the update's squared Frobenius norm that dW_k keeps. Beside it, the same
with k uniformly random directions of the same energy: dW projected onto a random k-dimensional subspace of
the H units (Q Q^T dW, Q Haar) and rescaled to the top-k projection's Frobenius norm, so that the two differ
in their directions only. At k = rank(dW) the projection is dW itself and the network is the trained one, to
float rounding (float64 inside, the weights' dtype out).
"""

from __future__ import annotations

import torch

from ..errors import UnderspecError, shown
from .chance import random_orthogonal


def update_svd(w: torch.Tensor, w0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The SVD of the update: w, w0 (..., H, D) -> U (..., H, K), S (..., K), Vh (..., K, D), K = min(H, D),
    float64, singular values largest first."""
    if w.shape != w0.shape or w.dim() < 2:
        raise UnderspecError(f"update_svd takes W and W0 of one shape (..., H, D), got {tuple(w.shape)} and "
                             f"{tuple(w0.shape)}")
    return torch.linalg.svd(w.double() - w0.double(), full_matrices=False)


def rank_ks(rank: int) -> list[int]:
    """The ranks k a curve is drawn at: 1, 2, 4, ... below ``rank``, and ``rank`` itself."""
    ks, k = [], 1
    while k < rank:
        ks.append(k)
        k *= 2
    return ks + [rank]


def low_rank(w0: torch.Tensor, svd, k: int) -> torch.Tensor:
    """W0 + the update's best rank-k part: w0 (..., H, D), ``svd`` = ``update_svd(w, w0)`` -> (..., H, D) in
    w0's dtype."""
    u, s, vh = svd
    k = _check_k(k, s.shape[-1])
    return (w0.double() + (u[..., :k] * s[..., None, :k]) @ vh[..., :k, :]).to(w0.dtype)


def energy_kept(s: torch.Tensor, k: int) -> torch.Tensor:
    """The share of the update's squared Frobenius norm in its top-k directions: s (..., K) -> (...,)."""
    k = _check_k(k, s.shape[-1])
    e = s.double() ** 2
    total = e.sum(-1)
    return torch.where(total > 0, e[..., :k].sum(-1) / torch.where(total > 0, total, 1.0), torch.ones_like(total))


def random_low_rank(w: torch.Tensor, w0: torch.Tensor, k: int, energy: torch.Tensor,
                    generator: torch.Generator) -> torch.Tensor:
    """W0 + the update projected onto k random directions of the units' space and rescaled to carry
    ``energy`` (..., ) (a share of the update's squared norm, e.g. ``energy_kept(s, k)``): (..., H, D)."""
    d = w.double() - w0.double()
    h = d.shape[-2]
    k = _check_k(k, h)
    q = random_orthogonal(h, tuple(d.shape[:-2]), generator)[..., :k]  # (..., H, k)
    p = q @ (q.transpose(-1, -2) @ d)
    norm_p = torch.linalg.vector_norm(p, dim=(-2, -1))
    target = torch.sqrt(energy.double()) * torch.linalg.vector_norm(d, dim=(-2, -1))
    scale = torch.where(norm_p > 0, target / torch.where(norm_p > 0, norm_p, 1.0), torch.zeros_like(norm_p))
    return (w0.double() + scale[..., None, None] * p).to(w0.dtype)


def _check_k(k, limit: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limit:
        raise UnderspecError(f"k is a number of directions from 1 to {limit}, got {shown(k)}")
    return k

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
from ..training.model import depth_of
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


def low_rank_accuracy(params: dict[str, torch.Tensor], init: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                      ks, generator: torch.Generator, *, random_up_to: int = 128) -> dict[str, torch.Tensor]:
    """Test accuracy with the first layer's update cut to rank k, for every k of ``ks``: the top-k directions
    (``low_rank``) and, for k up to ``random_up_to`` (NaN above: what the baseline is for is small k), k random
    directions of the same energy (``random_low_rank``, the random subspace drawn as the QR factor of a
    Gaussian (H, k) matrix: Haar distributed). params, init: (M, ...) networks, x (N, D), y (N,) ->
    {"top", "random", "energy"}: (M, K) float64. The SVD in float64; the products with x once (x W0^T, x V^T,
    x dW^T, in the weights' dtype), so that a curve costs a few forward passes, not two per k."""
    dtype = params["w1"].dtype
    u, s, vh = update_svd(params["w1"], init["w1"])
    rank = s.shape[-1]
    ks = [_check_k(k, rank) for k in ks]
    dw = (params["w1"].double() - init["w1"].double())
    x = x.to(dtype)
    base = x @ init["w1"].transpose(-1, -2) + params["b1"].unsqueeze(-2)  # (M, N, H)
    xv = x @ vh.to(dtype).transpose(-1, -2)  # (M, N, K): x in the update's right singular directions
    xdw = x @ dw.to(dtype).transpose(-1, -2)  # (M, N, H)
    us = (u * s.unsqueeze(-2)).to(dtype)  # (M, H, K)
    total = torch.linalg.vector_norm(dw, dim=(-2, -1))
    out = {name: torch.full((u.shape[0], len(ks)), float("nan"), dtype=torch.float64)
           for name in ("top", "random", "energy")}
    z, done = base.clone(), 0
    for j, k in enumerate(ks):
        z += xv[..., done:k] @ us[..., done:k].transpose(-1, -2)  # adds the directions done..k
        done = k
        energy = energy_kept(s, k)
        out["top"][:, j], out["energy"][:, j] = _accuracy(params, z, y), energy
        if k <= random_up_to:
            gauss = torch.randn(*dw.shape[:-2], dw.shape[-2], k, generator=generator, dtype=torch.float64)
            q = torch.linalg.qr(gauss).Q  # (M, H, k)
            q_dw = torch.linalg.vector_norm(q.transpose(-1, -2) @ dw, dim=(-2, -1))  # ||Q Q^T dW||_F
            scale = torch.where(q_dw > 0, torch.sqrt(energy) * total / torch.where(q_dw > 0, q_dw, 1.0), 0.0)
            q = q.to(dtype)
            z_random = base + scale.to(dtype)[..., None, None] * ((xdw @ q) @ q.transpose(-1, -2))
            out["random"][:, j] = _accuracy(params, z_random, y)
    return out


def _accuracy(params: dict[str, torch.Tensor], z1: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Accuracy on labels y (N,) of the networks whose first layer gives z1 (M, N, H), float64."""
    a = torch.relu(z1)
    depth = depth_of(params)
    for layer in range(2, depth + 2):
        a = a @ params[f"w{layer}"].to(a.dtype).transpose(-1, -2) + params[f"b{layer}"].to(a.dtype).unsqueeze(-2)
        if layer <= depth:
            a = torch.relu(a)
    return (a.argmax(-1) == y).double().mean(-1)

"""Removable units: knock-out of hidden units and the agreement of the pruned network with the intact one
(Casper et al. 2019), and the compressibility of a layer's activations.

**Knock-out.** Removing a hidden unit removes its incoming weights, its bias and its outgoing weights together
(``knock_out``): the unit then adds nothing to the next layer. No rescaling of what is left. ``masked_logits``
computes the same networks without copying their weights, by multiplying each hidden layer's ReLU output by
the mask (``tests/test_pruning.py`` holds the two equal). The units of all hidden layers are numbered layer by
layer (unit u of an L x H network is unit u % H of layer u // H + 1); an *order* lists them in the order they
are removed, and removing a fraction p removes the first round(p * L * H) of them.

**Prunability** (``crossing``): the fraction p at which the agreement (the fraction of test images whose
predicted class the pruned network keeps) first falls below 0.8, interpolated linearly between the two
levels of p that bracket it; a network that keeps 0.8 at every level gets the largest level (censored: the
``censored`` flag says so). Random orders are drawn several times and their agreement averaged before the
crossing is read; a targeted order (units by decreasing |r| with their most correlated neighbour) is one draw,
and so is the order by contribution (units by increasing ||v_i|| x mean activation: what a seed can drop first).

**Compressibility**: the fraction of a layer's principal directions (eigenvectors of its activation covariance
on held-out images) that together hold only ``SHARE`` = 5% of the variance. The smallest eigenvalues are summed
until the next would take the sum past 5%; that crossing eigenvalue counts by the fraction of it that fits
(so the count moves continuously with the variance rather than in whole steps). A layer without variance
(every unit constant) holds nothing: compressibility 1.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UnderspecError, shown
from ..training.model import depth_of

FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)  # the knock-out levels p
AGREEMENT = 0.8  # prunability: where the agreement with the intact network falls below this
SHARE = 0.05  # compressibility: the share of the variance the dropped principal directions hold


def knock_out(params: dict[str, torch.Tensor], keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """The networks with the units where ``keep`` is False removed: their incoming weights, bias and outgoing
    weights set to 0 together. params: (..., ) networks of depth L and width H; keep (..., L, H) bool (leading
    axes broadcast with the parameters')."""
    depth = depth_of(params)
    keep = _check_keep(keep, params, depth)
    out = {}
    for layer in range(1, depth + 2):
        w, b = params[f"w{layer}"], params[f"b{layer}"]
        if layer <= depth:  # this layer's units: rows of w and entries of b
            k = keep[..., layer - 1, :].to(w.dtype)
            w, b = w * k.unsqueeze(-1), b * k
        if layer > 1:  # the previous layer's units: columns of w
            w = w * keep[..., layer - 2, :].to(w.dtype).unsqueeze(-2)
        out[f"w{layer}"], out[f"b{layer}"] = w, b
    return out


def masked_logits(params: dict[str, torch.Tensor], x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Logits of the networks with the units where ``keep`` is False knocked out, computed by masking each
    hidden layer's ReLU output: x (N, D), keep (..., L, H) -> (..., N, C). Equal to
    ``forward(knock_out(params, keep), x)``."""
    depth = depth_of(params)
    keep = _check_keep(keep, params, depth)
    a = x.to(params["w1"].dtype)
    for layer in range(1, depth + 1):
        z = a @ params[f"w{layer}"].transpose(-1, -2) + params[f"b{layer}"].unsqueeze(-2)
        a = torch.relu(z) * keep[..., layer - 1, :].to(z.dtype).unsqueeze(-2)
    return a @ params[f"w{depth + 1}"].transpose(-1, -2) + params[f"b{depth + 1}"].unsqueeze(-2)


def removal_masks(orders: torch.Tensor, fractions=FRACTIONS, *, depth: int = 1) -> torch.Tensor:
    """Which units stay when the first round(p * U) units of each order are removed: orders (..., U) (a
    permutation of the U = depth * H units), fractions (P,) -> keep (..., P, depth, H) bool."""
    fractions = check_fractions(fractions)
    u = orders.shape[-1]
    if u % depth:
        raise UnderspecError(f"an order of {u} units cannot cover {depth} layers of equal width")
    rank = torch.empty_like(orders).scatter_(-1, orders, torch.arange(u).expand_as(orders))  # position of each unit
    removed = torch.tensor([round(p * u) for p in fractions])
    keep = rank.unsqueeze(-2) >= removed.view(-1, 1)  # (..., P, U)
    return keep.reshape(*keep.shape[:-1], depth, u // depth)


def agreement(params: dict[str, torch.Tensor], x: torch.Tensor, keep: torch.Tensor, *,
              chunk: int = 16) -> torch.Tensor:
    """The fraction of the images ``x`` (N, D) whose predicted class each knocked-out network keeps: params of
    M members (leading axis M), keep (M, K, L, H) -> (M, K) float64. Computed member by member, the first
    layer's product once, ``chunk`` masks at a time (memory: chunk x N x H)."""
    m = params["w1"].shape[0]
    if keep.dim() != 4 or keep.shape[0] != m:
        raise UnderspecError(f"agreement takes keep (members, masks, layers, units), got {tuple(keep.shape)} for {m} "
                             "members")
    depth = depth_of(params)
    _check_keep(keep, params, depth)
    out = torch.empty(keep.shape[:2], dtype=torch.float64)
    x = x.to(params["w1"].dtype)
    for i in range(m):
        one = {k: v[i] for k, v in params.items()}
        z1 = x @ one["w1"].T + one["b1"]  # (N, H): the same for every mask
        intact = _from_first(one, z1, torch.ones(keep.shape[2:], dtype=torch.bool)).argmax(-1)
        for start in range(0, keep.shape[1], chunk):
            pruned = _from_first(one, z1, keep[i, start:start + chunk]).argmax(-1)  # (chunk, N)
            out[i, start:start + chunk] = (pruned == intact).double().mean(-1)
    return out


def _from_first(params: dict[str, torch.Tensor], z1: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Logits from the first layer's pre-activations z1 (N, H) on, each hidden layer's ReLU output masked by
    keep (..., L, H): (..., N, C)."""
    depth = depth_of(params)
    if depth == 1:  # mask the output layer's columns instead: no (masks, N, H) tensor
        out = params["w2"] * keep[..., 0, :].to(z1.dtype).unsqueeze(-2)  # (..., C, H)
        return torch.relu(z1) @ out.transpose(-1, -2) + params["b2"]
    a = torch.relu(z1) * keep[..., 0, :].to(z1.dtype).unsqueeze(-2)
    for layer in range(2, depth + 1):
        z = a @ params[f"w{layer}"].T + params[f"b{layer}"]
        a = torch.relu(z) * keep[..., layer - 1, :].to(z.dtype).unsqueeze(-2)
    return a @ params[f"w{depth + 1}"].T + params[f"b{depth + 1}"]


def random_orders(n_members: int, draws: int, n_units: int, generator: torch.Generator) -> torch.Tensor:
    """``draws`` uniformly random removal orders for each of ``n_members`` networks of ``n_units`` hidden units:
    (M, R, U) int64."""
    return torch.rand(n_members, draws, n_units, generator=generator).argsort(-1)


def targeted_order(r_max: torch.Tensor) -> torch.Tensor:
    """The targeted removal order: units by decreasing |r| with their most correlated neighbour in their layer
    (ties: the unit numbered first goes first). r_max (..., L, H) -> (..., L * H)."""
    flat = r_max.reshape(*r_max.shape[:-2], -1).double()
    return torch.sort(-flat, dim=-1, stable=True).indices


def contribution_order(params: dict[str, torch.Tensor], acts: list[torch.Tensor]) -> torch.Tensor:
    """The removal order that drops first what adds least to the next layer: units by increasing contribution
    ||v_i|| x mean a_i, the norm of their outgoing weights times their mean ReLU output on the images of
    ``acts`` (one (..., N, H) tensor per hidden layer) -> (..., L * H)."""
    depth = depth_of(params)
    if len(acts) != depth:
        raise UnderspecError(f"contribution_order needs the activations of all {depth} hidden layers, got {len(acts)}")
    score = torch.stack([torch.linalg.vector_norm(params[f"w{layer + 1}"].double(), dim=-2)
                         * acts[layer - 1].double().mean(-2) for layer in range(1, depth + 1)], -2)  # (..., L, H)
    return torch.sort(score.reshape(*score.shape[:-2], -1), dim=-1, stable=True).indices


def crossing(fractions, curve, *, level: float = AGREEMENT) -> tuple[np.ndarray, np.ndarray]:
    """Prunability: the p at which ``curve`` (..., P), the agreement at each of ``fractions`` (P,), first
    falls below ``level``, interpolated linearly between the last level at or above it and the first below;
    (..., ) float, and ``censored`` (..., ) bool where it never falls below (the largest level is returned)."""
    p = np.asarray(check_fractions(fractions), dtype=float)
    a = np.asarray(curve, dtype=float)
    if a.shape[-1] != len(p):
        raise UnderspecError(f"curve has {a.shape[-1]} levels, fractions {len(p)}")
    below = a < level
    censored = ~below.any(-1)
    first = np.where(censored, len(p) - 1, below.argmax(-1))
    prev = np.maximum(first - 1, 0)
    a0, a1 = np.take_along_axis(a, prev[..., None], -1)[..., 0], np.take_along_axis(a, first[..., None], -1)[..., 0]
    p0, p1 = p[prev], p[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(a0 > a1, (a0 - level) / (a0 - a1), 0.0)
    value = np.where(censored, p[-1], np.where(first == 0, p[0], p0 + np.clip(t, 0, 1) * (p1 - p0)))
    return value, censored


def compressibility(acts: torch.Tensor, *, share: float = SHARE) -> torch.Tensor:
    """The fraction of a layer's principal directions that together hold only ``share`` of its variance (see
    the module doc): acts (..., N, H) on held-out images -> (...,) float64 in [0, 1]."""
    if not 0 < share < 1:
        raise UnderspecError(f"share is a fraction of the variance in (0, 1), got {shown(share)}")
    x = acts.double()
    x = (x - x.mean(-2, keepdim=True)).float()  # centred in float64, multiplied in float32
    eig = torch.linalg.eigvalsh((x.transpose(-1, -2) @ x).double() / max(x.shape[-2] - 1, 1)).clamp_min(0)  # ascending
    total = eig.sum(-1, keepdim=True)
    frac = eig / torch.where(total > 0, total, 1.0)
    before = torch.cumsum(frac, -1) - frac  # the share held by the smaller eigenvalues
    fits = ((share - before) / torch.where(frac > 0, frac, 1.0)).clamp(0, 1)  # how much of each eigenvalue fits
    fits = torch.where(frac > 0, fits, (before <= share).double())
    dims = fits.sum(-1)
    return torch.where(total.squeeze(-1) > 0, dims / eig.shape[-1], torch.ones_like(dims))


def check_fractions(fractions) -> tuple[float, ...]:
    values = tuple(float(p) for p in fractions)
    if len(values) < 2 or values[0] != 0 or any(b <= a for a, b in zip(values, values[1:])) or values[-1] >= 1:
        raise UnderspecError(f"fractions must rise from 0 and stay below 1, e.g. {FRACTIONS}, got {shown(fractions)}")
    return values


def _check_keep(keep: torch.Tensor, params: dict, depth: int) -> torch.Tensor:
    h = params["b1"].shape[-1]
    if not isinstance(keep, torch.Tensor) or keep.dtype != torch.bool or keep.shape[-2:] != (depth, h):
        raise UnderspecError(f"keep must be a bool tensor (..., {depth}, {h}): layers x units of these networks, got "
                             f"{getattr(keep, 'shape', shown(keep))}")
    return keep

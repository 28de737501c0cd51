"""The permutation symmetry of hidden layers: reorder a layer's units, keep the function.

Which axes a hidden layer's permutation moves is declared once, as data, in ``model.permutation_spec``
(``{"h1": (("w1", -2), ("b1", -1), ("w2", -1))}`` for the paper's network); ``permute`` applies any set of
permutations through it. Unit ``i`` of the permuted network is unit ``perm[i]`` of the original one. This is
the convention of every matching in the package: ``match_units(a, b).perm[i]`` is the unit of ``b`` matched
to unit ``i`` of ``a``, so ``permute_hidden(b, perm)`` puts ``b``'s units in ``a``'s order.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UnderspecError, shown
from ..training.model import PARAM_NAMES, PERMUTATION_SPEC


def permute(params: dict[str, torch.Tensor], perms: dict[str, torch.Tensor],
            spec=PERMUTATION_SPEC) -> dict[str, torch.Tensor]:
    """The function-identical network with hidden layer ``name``'s units reordered by ``perms[name]``.

    params: weights ``w<l>`` (..., out, in) and biases ``b<l>`` (..., out); perms: {layer name of ``spec``:
    (..., H) integer permutation}; leading axes of the permutations and the parameters broadcast (one
    permutation per network of a batch, or one for all). Layers without a permutation stay as they are.
    Returns a new dict with the same names.
    """
    unknown = [name for name in perms if name not in spec]
    if unknown:
        raise UnderspecError(f"unknown hidden layer(s) {unknown}: the network has {', '.join(spec)}")
    moves: dict[str, list[tuple[int, torch.Tensor]]] = {name: [] for name in params}
    for layer, perm in perms.items():
        for name, axis in spec[layer]:
            if name not in params:
                raise UnderspecError(f"permuting layer {layer} needs parameter {shown(name)}, which is missing")
            moves[name].append((axis, _check_perm(perm, params[name].shape[axis], params[name].device)))
    lead = np.broadcast_shapes(*(p.shape[:-_rank(n)] for n, p in params.items()),
                               *(perm.shape[:-1] for m in moves.values() for _, perm in m))
    out = {}
    for name, value in params.items():
        value = value.expand(*lead, *value.shape[-_rank(name):])
        for axis, perm in moves[name]:
            value = _take(value, perm.expand(*lead, perm.shape[-1]), axis)
        out[name] = value if moves[name] else value.clone()
    return out


def permute_hidden(params: dict[str, torch.Tensor], perm: torch.Tensor) -> dict[str, torch.Tensor]:
    """The paper's network with its hidden units reordered: unit ``i`` becomes unit ``perm[i]`` of ``params``.

    params: ``w1`` (..., H, D), ``b1`` (..., H), ``w2`` (..., C, H), ``b2`` (..., C); perm: (..., H).
    """
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise UnderspecError(f"permute_hidden needs parameters {list(PARAM_NAMES)}, missing {missing}")
    return permute(params, {"h1": perm})


def _rank(name: str) -> int:
    """Rank of a parameter without leading axes: weights 2, biases 1."""
    return 2 if name.startswith("w") else 1


def _check_perm(perm, hidden: int, device) -> torch.Tensor:
    perm = torch.as_tensor(perm, device=device)
    if perm.dtype.is_floating_point or perm.dtype == torch.bool or perm.shape[-1:] != (hidden,):
        raise UnderspecError(f"perm must be integers of shape (..., {hidden}), got {perm.dtype} {tuple(perm.shape)}")
    if not torch.equal(perm.sort(-1).values, torch.arange(hidden, device=perm.device).expand_as(perm)):
        raise UnderspecError("perm is not a permutation of the hidden units: each of 0..H-1 must appear once")
    return perm.long()


def _take(value: torch.Tensor, perm: torch.Tensor, axis: int) -> torch.Tensor:
    """``value`` (*lead, ...) reordered along ``axis`` (negative) by ``perm`` (*lead, H)."""
    moved = value.movedim(axis, -1)  # (*lead, ..., H)
    index = perm.reshape(*perm.shape[:-1], *([1] * (moved.dim() - perm.dim())), perm.shape[-1])
    return moved.gather(-1, index.expand_as(moved)).movedim(-1, axis)

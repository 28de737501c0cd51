"""The permutation symmetry of the hidden layer: reorder the hidden units, keep the function.

Unit ``i`` of the permuted network is unit ``perm[i]`` of the original one: rows of ``w1`` and ``b1`` and
columns of ``w2`` move together, ``b2`` stays. This is the convention of every matching in the package:
``match_units(a, b).perm[i]`` is the unit of ``b`` matched to unit ``i`` of ``a``, so
``permute_hidden(b, perm)`` puts ``b``'s units in ``a``'s order.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import UnderspecError
from .model import PARAM_NAMES


def permute_hidden(params: dict[str, torch.Tensor], perm: torch.Tensor) -> dict[str, torch.Tensor]:
    """The function-identical network whose unit ``i`` is unit ``perm[i]`` of ``params``.

    params: ``w1`` (..., H, D), ``b1`` (..., H), ``w2`` (..., C, H), ``b2`` (..., C).
    perm: (..., H) integer, a permutation of 0..H-1 along its last axis; leading axes broadcast with the
    parameters' (one permutation per network of a batch, or one for all).
    Returns a new dict with the same names and shapes.
    """
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise UnderspecError(f"permute_hidden needs parameters {list(PARAM_NAMES)}, missing {missing}")
    hidden = params["b1"].shape[-1]
    perm = torch.as_tensor(perm, device=params["w1"].device)
    if perm.dtype.is_floating_point or perm.dtype == torch.bool or perm.shape[-1:] != (hidden,):
        raise UnderspecError(f"perm must be integers of shape (..., {hidden}), got {perm.dtype} {tuple(perm.shape)}")
    if not torch.equal(perm.sort(-1).values, torch.arange(hidden, device=perm.device).expand_as(perm)):
        raise UnderspecError("perm is not a permutation of the hidden units: each of 0..H-1 must appear once")
    perm = perm.long()
    lead = np.broadcast_shapes(perm.shape[:-1], params["b1"].shape[:-1])
    perm = perm.expand(*lead, hidden)
    w1 = params["w1"].expand(*lead, *params["w1"].shape[-2:])
    w2 = params["w2"].expand(*lead, *params["w2"].shape[-2:])
    return {
        "w1": w1.gather(-2, perm.unsqueeze(-1).expand(*lead, hidden, w1.shape[-1])),
        "b1": params["b1"].expand(*lead, hidden).gather(-1, perm),
        "w2": w2.gather(-1, perm.unsqueeze(-2).expand(*lead, w2.shape[-2], hidden)),
        "b2": params["b2"].expand(*lead, params["b2"].shape[-1]).clone(),
    }

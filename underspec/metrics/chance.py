"""Chance levels: what the matching metrics give for networks that share nothing.

Matching maximises correlation, so unrelated networks score well above zero (PROTOCOL section 3): APC-2 of
independent random weights is 1.000 / 0.953 / 0.818 / 0.599 at C = 2 / 3 / 5 / 10, APC-1 about 0.07 and PE
about 1/16. Two nulls:

- ``null_init``: independently initialised, untrained networks (``init_params`` with fresh seeds), by Monte
  Carlo. It depends only on the shapes (C, H, D and the pixel mask), not on the target (parameters,
  gradients, displacement): it is the level of unrelated random vectors of those shapes. Cached per
  argument set within a process; deterministic.
- ``null_shuffle``: the trained pair itself, with its units paired at random instead of by the Hungarian
  algorithm (w1 and w2 independently, so PE falls to 1/H). It keeps whatever correlation every unit of
  ``a`` has with every unit of ``b`` regardless of correspondence: the average digit's shape in summed
  gradients (every gradient row is a weighted sum of the non-negative training images), the dead pixels
  that L1 drives to 0 in every unit. A matched value is informative only as far as it exceeds this level.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..training.model import init_params
from .matching import DEFAULT_POLICY, evaluate_matching, pair_metrics

NULL_SEED_BASE = 1_000_000  # null networks use seeds far from any grid's (the paper's go up to 9999)


def null_init(n_classes: int, *, hidden: int = 16, n_inputs: int = 784, pixel_mask: torch.Tensor | None = None,
              n_pairs: int = 256, seed: int = 0) -> dict[str, float]:
    """Mean of each weight metric of ``pair_metrics`` over ``n_pairs`` pairs of untrained networks.

    Network k of pair i is ``init_params(NULL_SEED_BASE + 2 * n_pairs * seed + 2 * i + k, n_classes, hidden)``.
    pixel_mask: (n_inputs,) bool; when given, ``apc1_data`` is included. Returns {metric: mean} (floats).
    """
    key = None if pixel_mask is None else np.asarray(torch.as_tensor(pixel_mask, dtype=torch.bool)).tobytes()
    return dict(_null_init(int(n_classes), int(hidden), int(n_inputs), key, int(n_pairs), int(seed)))


@functools.lru_cache(maxsize=None)
def _null_init(n_classes, hidden, n_inputs, mask_bytes, n_pairs, seed):
    first = NULL_SEED_BASE + 2 * n_pairs * seed
    nets = [init_params(first + k, n_classes, hidden, n_inputs) for k in range(2 * n_pairs)]
    a = {name: torch.stack([p[name] for p in nets[0::2]]) for name in ("w1", "w2")}
    b = {name: torch.stack([p[name] for p in nets[1::2]]) for name in ("w1", "w2")}
    mask = None if mask_bytes is None else torch.from_numpy(np.frombuffer(mask_bytes, dtype=bool).copy())
    metrics = pair_metrics(a, b, pixel_mask=mask)
    return tuple((k, v.mean().item()) for k, v in metrics.items() if not k.startswith("zero_var"))


def null_shuffle(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, n_shuffles: int = 256, seed: int = 0,
                 policy: str = DEFAULT_POLICY, pixel_mask: torch.Tensor | None = None,
                 acts_a: torch.Tensor | None = None, acts_b: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Each metric of ``pair_metrics(a, b, ...)`` with the units paired at random instead of matched: the
    mean over ``n_shuffles`` random pairings (independent for every layer and view), (...,) per pair.

    Arguments as in ``pair_metrics``; deterministic for a given ``seed``. The APC values estimate the mean
    |r| (or r) over all unit pairs of the two networks, PE estimates 1/H.
    """
    g = torch.Generator().manual_seed(seed)

    def random_pairing(r, zero_a, zero_b, signed):
        perm = torch.rand((n_shuffles, *r.shape[:-2], r.shape[-1]), generator=g).argsort(-1)[..., :r.shape[-2]]
        return evaluate_matching(r, zero_a, zero_b, perm.to(r.device), signed=signed, policy=policy)

    metrics = pair_metrics(a, b, policy=policy, pixel_mask=pixel_mask, acts_a=acts_a, acts_b=acts_b,
                           match=random_pairing)
    return {k: v.nanmean(0) for k, v in metrics.items() if not k.startswith("zero_var")}

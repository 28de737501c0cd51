"""Nulls: what the matching metrics give when there is nothing to find, each built for a question.

Matching maximises correlation, so unrelated networks score well above zero (PROTOCOL section 3): APC-2 of
independent random weights is 1.000 / 0.953 / 0.818 / 0.599 at C = 2 / 3 / 5 / 10, APC-1 about 0.07 and PE
about 1/16. A metric means something only as its distance above the null that fits it:

- ``null_untrained`` ("unrelated weights"): pairs of independently initialised, untrained networks, W drawn
  Xavier-uniform with gain sqrt(2) exactly as the paper's constructor draws them. It depends only on the
  shapes (H, C, the number of pixels compared). 2,000 pairs by default; cached on disk per shape.
- ``null_structured`` ("shared input structure, no unit identity"): the trained pair itself, with the
  hidden units of ``b`` replaced by a random orthogonal mixing of them (W1 -> Q W1, W2 -> W2 Q^T, Q uniform on
  the orthogonal group), then matched as usual. The mixing keeps everything two unrelated networks of this
  data share: ``b``'s input subspace and Gram matrix, the mean digit in every summed gradient, the pixels
  that carry no data; it destroys which unit is which. Trained weights and summed gradients need this
  null: their rows share the data's leading subspace, so even untrained-level networks would not explain them.
- ``random_pairing``: the trained pair with its units paired at random, without matching: the mean |r|
  over all unit pairs. It is a *lower bound* (any matching scores at least this), not a chance level for a
  matched metric; the structured null is never below it in practice (``tests/test_chance.py``).
- the nulls of the metrics over the units alive in both networks (``apc1_alive``, ``apc2_alive``, ``pe_alive``,
  where L1 has erased units): ``null_untrained_alive`` draws untrained pairs with the same numbers of live units
  (PE over k live units has chance about 1/k), and ``null_structured(..., alive=...)`` mixes only ``b``'s live
  units among themselves (a Haar rotation of its live subspace: the polar factor of a Gaussian block), so that
  the number of live units, and with it the metric's resolution, is kept.
- ``null_fixed_similarity`` ("the same similarity at every C"): synthetic pairs b = (a with permuted units)
  + noise at a fixed noise-to-signal ratio ``sigma``, on W1 and W2 alike. Their similarity does not depend
  on C, yet PE and APC-2 do: the matching of C-entry columns sharpens with C. ``similarity_for`` inverts it:
  the sigma at which a metric has a given value, so the null can be drawn at the data's own similarity.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math

import numpy as np
import torch

from ..errors import UnderspecError
from ..files import atomic_text
from ..training.data import cache_dir
from .matching import DEFAULT_POLICY, evaluate_matching, metrics_of, mixed_correlation, pair_metrics, pair_units

NULL_SEED_BASE = 1_000_000  # null draws use seeds far from any grid's (the paper's go up to 9999)
GAIN = math.sqrt(2)  # the paper's Xavier gain
N_PAIRS = 2000
MIX_ELEMENTS = 2**18  # mixings of the structured null computed at once: up to this many H x H entries


def xavier(shape, fan_in: int, fan_out: int, generator: torch.Generator) -> torch.Tensor:
    """Xavier-uniform draws with the paper's gain: U(-a, a), a = sqrt(2) * sqrt(6 / (fan_in + fan_out))."""
    bound = GAIN * math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound


def untrained_pairs(n_pairs: int, n_classes: int, hidden: int, n_inputs: int, seed: int = 0):
    """``n_pairs`` pairs of untrained networks: (a, b) with ``w1`` (n, H, D) and ``w2`` (n, C, H)."""
    g = torch.Generator().manual_seed(NULL_SEED_BASE + seed)
    nets = [{"w1": xavier((n_pairs, hidden, n_inputs), n_inputs, hidden, g),
             "w2": xavier((n_pairs, n_classes, hidden), hidden, n_classes, g)} for _ in range(2)]
    return nets[0], nets[1]


def null_untrained(n_classes: int, *, hidden: int = 16, n_inputs: int = 784, pixel_mask: torch.Tensor | None = None,
                   n_pairs: int = N_PAIRS, seed: int = 0) -> dict[str, float]:
    """Mean of each weight metric of ``pair_metrics`` over ``n_pairs`` pairs of untrained networks.

    pixel_mask: (n_inputs,) bool; when given, ``apc1_data`` is included. Deterministic for a seed; cached in
    the process and on disk (``<data cache>/nulls``), since it depends only on the shapes.
    """
    mask = None if pixel_mask is None else np.asarray(torch.as_tensor(pixel_mask, dtype=torch.bool))
    key = (int(n_classes), int(hidden), int(n_inputs), None if mask is None else mask.tobytes(), int(n_pairs),
           int(seed))
    return dict(_null_untrained(*key))


null_init = null_untrained  # the earlier name


@functools.lru_cache(maxsize=None)
def _null_untrained(n_classes, hidden, n_inputs, mask_bytes, n_pairs, seed):
    name = hashlib.sha256(repr((n_classes, hidden, n_inputs, mask_bytes, n_pairs, seed, 1)).encode()).hexdigest()
    path = cache_dir() / "nulls" / f"untrained-{name[:20]}.json"
    try:
        return tuple(json.loads(path.read_text()).items())
    except (OSError, ValueError, AttributeError):
        pass
    a, b = untrained_pairs(n_pairs, n_classes, hidden, n_inputs, seed)
    mask = None if mask_bytes is None else torch.from_numpy(np.frombuffer(mask_bytes, dtype=bool).copy())
    metrics = pair_metrics(a, b, pixel_mask=mask)
    levels = {k: v.double().mean().item() for k, v in metrics.items() if not k.startswith("zero_var")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_text(path, json.dumps(levels))
    except OSError:  # a cache that cannot be written is only slower
        pass
    return tuple(levels.items())


ALIVE_METRICS = ("apc1_alive", "apc2_alive", "pe_alive")
N_ALIVE_PAIRS = 500


def null_untrained_alive(n_classes: int, alive_a: int, alive_b: int, *, hidden: int = 16, n_inputs: int = 784,
                         n_pairs: int = N_ALIVE_PAIRS, seed: int = 0) -> dict[str, float]:
    """Mean of ``apc1_alive``, ``apc2_alive`` and ``pe_alive`` over ``n_pairs`` pairs of untrained networks of
    which ``alive_a`` units of a and ``alive_b`` units of b count as alive (the first ones: the units of an
    untrained network are exchangeable). The null of the live-unit metrics of a trained pair with those
    numbers of live units. Deterministic; cached in the process and on disk, as ``null_untrained``."""
    if not (0 <= alive_a <= hidden and 0 <= alive_b <= hidden):
        raise UnderspecError(f"live units must lie in 0..{hidden}, got {alive_a} and {alive_b}")
    return dict(_null_untrained_alive(int(n_classes), int(alive_a), int(alive_b), int(hidden), int(n_inputs),
                                      int(n_pairs), int(seed)))


@functools.lru_cache(maxsize=None)
def _null_untrained_alive(n_classes, alive_a, alive_b, hidden, n_inputs, n_pairs, seed):
    if min(alive_a, alive_b) == 0:  # nothing alive in one network: nothing to match
        return tuple((k, float("nan")) for k in ALIVE_METRICS)
    name = hashlib.sha256(repr((n_classes, alive_a, alive_b, hidden, n_inputs, n_pairs, seed, 1)).encode()).hexdigest()
    path = cache_dir() / "nulls" / f"untrained-alive-{name[:20]}.json"
    try:
        return tuple(json.loads(path.read_text()).items())
    except (OSError, ValueError, AttributeError):
        pass
    a, b = untrained_pairs(n_pairs, n_classes, hidden, n_inputs, seed)
    units = torch.arange(hidden)
    metrics = pair_metrics(a, b, alive=(units < alive_a, units < alive_b))
    levels = {k: metrics[k].double().mean().item() for k in ALIVE_METRICS}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_text(path, json.dumps(levels))
    except OSError:  # a cache that cannot be written is only slower
        pass
    return tuple(levels.items())


def random_orthogonal(n: int, shape: tuple, generator: torch.Generator) -> torch.Tensor:
    """Uniform (Haar) random orthogonal matrices (*shape, n, n): QR of Gaussians with the sign fix."""
    return haar_orthogonal(torch.randn(*shape, n, n, generator=generator, dtype=torch.float64))


def haar_orthogonal(z: torch.Tensor) -> torch.Tensor:
    """The orthogonal factors (..., n, n) of Gaussian matrices ``z`` (..., n, n), signs fixed so that they are
    Haar distributed."""
    q, r = torch.linalg.qr(z)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def live_orthogonal(z: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """Haar rotations of the live units only: (..., n, n) from Gaussians ``z`` (..., n, n) and ``live``
    (..., n) bool, orthogonal, the identity on the other units and Haar distributed on the live ones. The
    polar factor U V^T of the Gaussian's live block (the rest set to the identity): block-diagonal because the
    polar factor of a block-diagonal matrix is, and Haar because a Gaussian block is invariant under
    rotations on both sides."""
    both = (live.unsqueeze(-1) & live.unsqueeze(-2)).to(z.dtype)
    block = z * both + torch.diag_embed((~live).to(z.dtype))
    u, _, vh = torch.linalg.svd(block)
    return u @ vh


def null_structured(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, n_mix: int = 16, seed: int = 0,
                    policy: str = DEFAULT_POLICY, pixel_mask: torch.Tensor | None = None,
                    acts_a: torch.Tensor | None = None, acts_b: torch.Tensor | None = None,
                    alive: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Each metric of ``pair_metrics(a, b, ...)`` with ``b``'s hidden units mixed by random orthogonal
    matrices: the mean over ``n_mix`` mixings, (...,) per pair (see the module doc). Arguments as in
    ``pair_metrics``; deterministic for a ``seed``. Every view is mixed by the same Q (a rotation of b's
    hidden space), computed without forming the mixed weights (``matching.mixed_correlation``).

    alive: (alive_a, alive_b) (..., H) bool: also the live-unit metrics (``apc1_alive``, ``apc2_alive``,
    ``pe_alive``), each with b's live units mixed among themselves only (``live_orthogonal``), so that both
    networks keep their numbers of live units."""
    plain = _mixed_metrics(a, b, n_mix, seed, policy, pixel_mask, acts_a, acts_b, None)
    if alive is None:
        return plain
    live = _mixed_metrics(a, b, n_mix, seed, policy, None, None, None, alive)
    return {**plain, **{k: live[k] for k in ALIVE_METRICS}}


def _mixed_metrics(a, b, n_mix, seed, policy, pixel_mask, acts_a, acts_b, alive) -> dict[str, torch.Tensor]:
    """``null_structured``'s mean over its mixings; with ``alive``, b's live units mixed among themselves."""
    g = torch.Generator().manual_seed(seed)
    lead, h = a["w1"].shape[:-2], a["w1"].shape[-2]
    views = pair_units(a, b, pixel_mask=pixel_mask, acts_a=acts_a, acts_b=acts_b)
    # a few mixings at a time, each drawn when needed: their Gaussians, QR and every view's (mixings, ..., H, H)
    # float64 tensors for wide layers take hundreds of megabytes at once; the metrics of each mixing do not
    # depend on the others. The draws are those of all mixings at once wherever a chunk holds a multiple of 16
    # numbers (torch draws normals 16 at a time), as it does for every H divisible by 4.
    per_chunk = max(1, MIX_ELEMENTS // (math.prod(lead) * h * h))
    parts = []
    for start in range(0, n_mix, per_chunk):
        gaussians = torch.randn(min(per_chunk, n_mix - start), *lead, h, h, generator=g, dtype=torch.float64)
        q = haar_orthogonal(gaussians) if alive is None else live_orthogonal(gaussians, alive[1].cpu())
        q = q.to(a["w1"].device)  # (chunk, ..., H, H)
        metrics = metrics_of({view: mixed_correlation(ua, ub, q) for view, (ua, ub) in views.items()},
                             policy=policy, alive=alive)
        parts.append({k: v.double() for k, v in metrics.items() if not k.startswith("zero_var")})
    return {k: torch.cat([part[k] for part in parts]).mean(0) for k in parts[0]}


def random_pairing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, n_pairings: int = 256, seed: int = 0,
                   policy: str = DEFAULT_POLICY, pixel_mask: torch.Tensor | None = None,
                   acts_a: torch.Tensor | None = None, acts_b: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Each metric of ``pair_metrics(a, b, ...)`` with the units paired at random instead of matched: the
    mean over ``n_pairings`` random pairings (independent for every layer and view), (...,) per pair. A lower
    bound for a matched metric, not its chance level. The APC values estimate the mean |r| (or r) over all
    unit pairs of the two networks, PE estimates 1/H. Deterministic for a ``seed``."""
    g = torch.Generator().manual_seed(seed)

    def pairing(r, zero_a, zero_b, signed):
        perm = torch.rand((n_pairings, *r.shape[:-2], r.shape[-1]), generator=g).argsort(-1)[..., :r.shape[-2]]
        return evaluate_matching(r, zero_a, zero_b, perm.to(r.device), signed=signed, policy=policy)

    metrics = pair_metrics(a, b, policy=policy, pixel_mask=pixel_mask, acts_a=acts_a, acts_b=acts_b, match=pairing)
    return {k: v.nanmean(0) for k, v in metrics.items() if not k.startswith("zero_var")}


SIGMAS = tuple(np.round(np.geomspace(0.05, 20.0, 20), 4))  # noise-to-signal ratios of the fixed-similarity null


def null_fixed_similarity(sigma: float, n_classes: int, *, hidden: int = 16, n_inputs: int = 784,
                          n_pairs: int = 300, seed: int = 0) -> dict[str, float]:
    """Mean of each weight metric over ``n_pairs`` synthetic pairs of a fixed similarity: ``a`` untrained,
    ``b`` = ``a`` with its hidden units permuted at random, plus Gaussian noise of ``sigma`` times each
    matrix's own spread, in W1 and W2 alike. Cached in the process."""
    return dict(_null_fixed(float(sigma), int(n_classes), int(hidden), int(n_inputs), int(n_pairs), int(seed)))


@functools.lru_cache(maxsize=None)
def _null_fixed(sigma, n_classes, hidden, n_inputs, n_pairs, seed):
    name = hashlib.sha256(repr((sigma, n_classes, hidden, n_inputs, n_pairs, seed, 1)).encode()).hexdigest()
    path = cache_dir() / "nulls" / f"fixed-{name[:20]}.json"
    try:  # deterministic for its arguments: cached on disk, as the untrained null is
        return tuple(json.loads(path.read_text()).items())
    except (OSError, ValueError, AttributeError):
        pass
    levels = _draw_fixed(sigma, n_classes, hidden, n_inputs, n_pairs, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_text(path, json.dumps(dict(levels)))
    except OSError:  # a cache that cannot be written is only slower
        pass
    return levels


def _draw_fixed(sigma, n_classes, hidden, n_inputs, n_pairs, seed):
    a, _ = untrained_pairs(n_pairs, n_classes, hidden, n_inputs, seed)
    g = torch.Generator().manual_seed(NULL_SEED_BASE + 7 + seed)
    perm = torch.rand(n_pairs, hidden, generator=g).argsort(-1)  # (n, H): unit i of b is unit perm[i] of a
    b = {"w1": a["w1"].gather(-2, perm[..., None].expand_as(a["w1"])),
         "w2": a["w2"].gather(-1, perm[:, None, :].expand_as(a["w2"]))}
    b = {k: v + sigma * v.std() * torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in b.items()}
    metrics = pair_metrics(a, b)
    return tuple((k, v.double().mean().item()) for k, v in metrics.items() if not k.startswith("zero_var"))


def similarity_for(metric: str, value: float, n_classes: int, *, hidden: int = 16, n_inputs: int = 784,
                   n_pairs: int = 300) -> float:
    """The noise-to-signal ratio sigma at which the fixed-similarity null's ``metric`` equals ``value``
    (interpolated on ``SIGMAS``, in log sigma; clipped to its ends). The metric falls as sigma grows."""
    levels = np.array([null_fixed_similarity(s, n_classes, hidden=hidden, n_inputs=n_inputs, n_pairs=n_pairs)[metric]
                       for s in SIGMAS])
    order = np.argsort(levels)  # increasing metric = decreasing sigma
    return float(np.exp(np.interp(value, levels[order], np.log(np.array(SIGMAS))[order])))


def fixed_similarity_curve(metric: str, classes, *, hidden: int = 16, n_inputs: int = 784,
                           n_pairs: int = 300) -> np.ndarray:
    """The fixed-similarity null of ``metric`` at every sigma of ``SIGMAS`` and every C of ``classes``:
    (len(SIGMAS), len(classes)), each entry cached on disk. With ``fixed_similarity_at`` it gives the null
    calibrated to any value at the largest C without drawing again (for every resample of the seeds)."""
    return np.array([[null_fixed_similarity(s, int(c), hidden=hidden, n_inputs=n_inputs, n_pairs=n_pairs)[metric]
                      for c in classes] for s in SIGMAS])


def fixed_similarity_at(curve: np.ndarray, value: float) -> np.ndarray:
    """The fixed-similarity null at every C of ``curve`` (``fixed_similarity_curve``), at the similarity where
    its value at the last C equals ``value`` (interpolated in log sigma, clipped to ``SIGMAS``' ends): (C,)."""
    log_sigma = np.log(np.array(SIGMAS))
    last = curve[:, -1]
    order = np.argsort(last)
    at = np.interp(value, last[order], log_sigma[order])
    return np.array([np.interp(at, log_sigma, curve[:, j]) for j in range(curve.shape[1])])

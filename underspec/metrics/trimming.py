"""The alpha-trimmed Kolmogorov-Smirnov distance between two samples of a scalar (after Alvarez-Esteban, del
Barrio, Cuesta-Albertos and Matran 2012, "Similarity of samples and trimming"), the statistic behind the
alpha-trimming level of seed variability (arXiv 2406.08307).

``alpha_trimmed_ks(sample, reference, alpha)``: trim a share ``alpha`` of ``sample`` (reweight its points, no
point's weight above 1 / (n (1 - alpha))) so that its distribution comes as close as it can to ``reference``
in the KS distance; the distance left. At alpha = 0 it is the two-sample KS statistic; it falls as alpha grows;
a sample that is ``reference`` contaminated by a share a of something else is at distance 0 (up to sampling
error) once alpha >= a.

The estimator. Writing u = F(x) and g = G(x) for the two empirical CDFs, a trimming of F is F~ = h(F) with h
nondecreasing, h(0) = 0, h(1) = 1 and slope at most L = 1 / (1 - alpha), and d_alpha = min_h sup_x |h(u) - g|.
A band of half-width eps around g holds such an h exactly when every pair of points k before m satisfies
g_m - g_k - L (u_m - u_k) <= 2 eps, with the two ends h(0) = 0 and h(1) = 1 as points of zero width; so
d_alpha = max(0, max(g - L u), max(1 - g - L (1 - u)), max_m (a_m - min_{k <= m} a_k) / 2) with a = g - L u,
one running minimum after sorting, evaluated at 2n + 2 points (the ends of the stretches where F is constant,
``_cdfs``): O(n log m + m log m), vectorised over any leading axes (models, bootstraps), with every alpha of
the grid read from one pass over the CDFs. ``tests/test_trimming.py`` holds it to a linear program over the
weights on small samples, and to the formula at every jump of either CDF on larger ones with ties.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import UnderspecError, shown

ALPHAS = (0.0, 0.01, 0.025, 0.05, 0.075, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45)  # the alpha-hat grid
NOT_REACHED = 0.5  # alpha-hat where no alpha of the grid brings the distance within the bound
GAP_CLIP = 15.0  # logit gaps are clipped to +-this (never set to 0, as the published script did)
OUTPUTS = ("margin", "top2", "ovr")


def alpha_trimmed_ks(sample, reference, alpha: float):
    """The alpha-trimmed KS distance of ``sample`` (the one trimmed) from ``reference``: (..., n) and (..., m)
    arrays or tensors of finite values (leading axes broadcast), ``alpha`` in [0, 1). A float for 1-D inputs,
    else a float64 tensor of the leading shape."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha < 1:
        raise UnderspecError(f"alpha is the share trimmed, in [0, 1), got {shown(alpha)}")
    x, y = _tensor(sample), _tensor(reference)
    if x.dim() == 0 or y.dim() == 0 or x.shape[-1] == 0 or y.shape[-1] == 0:
        raise UnderspecError("alpha_trimmed_ks needs two non-empty samples (a value per test image)")
    _check_finite(x, y, what="alpha_trimmed_ks: the samples")
    d = trimmed_distances(*_cdfs(x, y), (alpha,))[..., 0]
    return float(d) if d.dim() == 0 else d


def _tensor(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values).double()


def _check_finite(*tensors, what: str) -> None:
    if not all(bool(torch.isfinite(t).all()) for t in tensors):
        raise UnderspecError(f"{what} hold NaN or infinite values (a diverged model?): leave that model out")


def _cdfs(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two empirical CDFs u = F, g = G at the points that decide d_alpha: (..., 2n + 2) each, for samples
    x (..., n) (the trimmed one) and y (..., m) (leading axes broadcast).

    Between two consecutive points of x, F is constant and G rises, so a = G - L F rises too: the maxima of a
    and of 1 - G - L (1 - F) and the running minimum of a are reached at the first and the last point of each
    such stretch, which are the value at x_(i) and the left limit at x_(i+1). So the points are: (0, 0) first,
    then for every x_(i) in order its left limit and its value (a left limit of a repeated x is its value, so
    that no point comes before one that precedes it), then (1, 1): O(n log m) after sorting y, whatever m."""
    lead = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x, y = _sorted(x.expand(*lead, x.shape[-1])), _sorted(y.expand(*lead, y.shape[-1]))
    return _points(x, torch.searchsorted(y, x, right=True), torch.searchsorted(y, x, right=False), y.shape[-1])


def _sorted(t: torch.Tensor) -> torch.Tensor:
    """``t`` sorted along its last axis, contiguous (numpy's sort: several times torch's on a CPU)."""
    return torch.from_numpy(np.sort(t.detach().cpu().contiguous().numpy(), axis=-1))


def _points(x: torch.Tensor, below_or_at: torch.Tensor, below: torch.Tensor, m: int):
    """``_cdfs`` from x sorted (..., n) and, at each x_(i), the counts of reference values <= x_(i) and < x_(i)
    (out of ``m``)."""
    n = x.shape[-1]
    u_right = torch.searchsorted(x, x, right=True).double() / n  # F(x_i)
    g_right = below_or_at.double() / m  # G(x_i)
    repeated = torch.zeros_like(x, dtype=torch.bool)
    repeated[..., 1:] = x[..., 1:] == x[..., :-1]
    u_left = torch.where(repeated, u_right, torch.searchsorted(x, x, right=False).double() / n)  # F(x_i-)
    g_left = torch.where(repeated, g_right, below.double() / m)  # G(x_i-)
    zero = torch.zeros(*x.shape[:-1], 1, dtype=torch.float64)
    u = torch.cat([zero, torch.stack([u_left, u_right], -1).flatten(-2), zero + 1], -1)
    g = torch.cat([zero, torch.stack([g_left, g_right], -1).flatten(-2), zero + 1], -1)
    return u, g


def trimmed_distances(u: torch.Tensor, g: torch.Tensor, alphas) -> torch.Tensor:
    """d_alpha for every alpha of ``alphas`` from the two CDFs at the jump points (``_cdfs``): (..., A)."""
    out = []
    for alpha in alphas:
        slope = 1.0 / (1.0 - alpha)
        a = g - slope * u
        pairs = (a - torch.cummin(a, -1).values).amax(-1) / 2
        ends = torch.maximum(a.amax(-1), (1 - g - slope * (1 - u)).amax(-1))
        out.append(torch.clamp(torch.maximum(pairs, ends), min=0.0))
    return torch.stack(out, -1)


def scalar_outputs(logits: torch.Tensor, labels: torch.Tensor | None = None, kind: str = "margin") -> torch.Tensor:
    """One scalar per test image for the alpha-trimming level, from logits (..., T, C), clipped to +-GAP_CLIP:

    - ``margin``: the true class's logit minus the largest other (needs ``labels`` (T,));
    - ``top2``: the largest logit minus the second (label-free);
    - ``ovr``: one-vs-rest, each class's logit minus the log-sum-exp of the others: (..., T, C), a scalar per
      class.

    For C = 2 each is the paper's logit gap (up to its sign)."""
    if kind not in OUTPUTS:
        raise UnderspecError(f"unknown output {shown(kind)}: use one of {', '.join(OUTPUTS)}")
    logits = torch.as_tensor(logits).double()
    if logits.shape[-1] < 2 or logits.shape[-2] == 0:
        raise UnderspecError("scalar_outputs needs logits of at least 2 classes on at least one image")
    if not torch.isfinite(logits).all():
        raise UnderspecError("scalar_outputs: the logits hold NaN or infinite values (a diverged model?)")
    if kind == "margin":
        if labels is None:
            raise UnderspecError("the true-class margin needs the labels; the label-free gap is kind='top2'")
        true = logits.gather(-1, torch.as_tensor(labels).expand(*logits.shape[:-1])[..., None]).squeeze(-1)
        others = logits.scatter(-1, torch.as_tensor(labels).expand(*logits.shape[:-1])[..., None], -math.inf)
        gap = true - others.amax(-1)
    elif kind == "top2":
        top = logits.topk(2, -1).values
        gap = top[..., 0] - top[..., 1]
    else:
        c = logits.shape[-1]
        rest = torch.stack([torch.logsumexp(torch.cat([logits[..., :k], logits[..., k + 1:]], -1), -1)
                            for k in range(c)], -1)
        gap = logits - rest
    return gap.clamp(-GAP_CLIP, GAP_CLIP)


def bound(n: int, eps: float = 0.01) -> float:
    """delta = sqrt(log(2 / eps) / n) + 1 / n: the KS distance two samples of n values from one distribution
    stay within, with probability at least 1 - eps (the alpha-hat threshold; the statistic's resolution)."""
    return math.sqrt(math.log(2 / eps) / n) + 1 / n


def alpha_hat(values, reference, *, n_boot: int = 100, eps: float = 0.01, seed: int = 0,
              alphas=ALPHAS) -> float:
    """The alpha-trimming level of one model against a reference of other models (arXiv 2406.08307): the
    smallest alpha of ``alphas`` whose trimmed KS distance between the model's values and the reference
    mixture is within delta = sqrt(log(2 / eps) / n) + 1 / n (n: half the test images), ``NOT_REACHED`` where
    none is; averaged over ``n_boot`` bootstrap resamples of the test images, each split in halves (the model on
    one half, the reference on the other, so that the two samples are independent).

    values: (T,) the model's scalar output on every test image; reference: (R, T) the reference models' (their
    mixture: all R x half values pooled). ``alpha_hats`` does many models at once, with the same draws."""
    x, ref = _tensor(values), _tensor(reference)
    if ref.dim() == 1:
        ref = ref[None]
    if x.dim() != 1 or ref.dim() != 2:
        raise UnderspecError(f"alpha_hat needs (T,) values and (R, T) reference values, got {tuple(x.shape)} and "
                             f"{tuple(ref.shape)}")
    return float(alpha_hats(x[None], ref[None], n_boot=n_boot, eps=eps, seed=seed, alphas=alphas)[0])


def alpha_hats(sample, reference, *, n_boot: int = 100, eps: float = 0.01, seed: int = 0, alphas=ALPHAS,
               chunk: int = 2**24) -> torch.Tensor:
    """``alpha_hat`` of K samples at once, vectorised over the samples and the bootstraps, each sample against
    its own reference, with the same bootstrap draws of the test images for all (those ``alpha_hat`` makes
    with the same ``seed``).

    sample: (K, T) one model's values per row, or (K, Ra, T) a mixture of Ra models (pooled, then trimmed);
    reference: (K, Rb, T) the reference models (their mixture). Returns (K,) float64. ``chunk``: values sorted
    at once (bootstraps are taken in groups that fit; the result does not depend on it)."""
    x, ref = _tensor(sample), _tensor(reference)
    if x.dim() == 2:
        x = x[:, None]
    if x.dim() != 3 or ref.dim() != 3 or len(x) != len(ref) or x.shape[-1] != ref.shape[-1]:
        raise UnderspecError(f"alpha_hats needs samples (K, T) or (K, Ra, T) and references (K, Rb, T) on the same "
                             f"T images, got {tuple(x.shape)} and {tuple(ref.shape)}")
    if len(x) == 0 or x.shape[1] == 0:
        raise UnderspecError("alpha-hat needs at least one model to compare")
    if ref.shape[1] == 0:
        raise UnderspecError("alpha-hat needs a reference of at least one other model: with one model there is "
                             "nothing to compare it with; train more seeds")
    t = x.shape[-1]
    if t < 4:
        raise UnderspecError(f"alpha-hat needs at least 4 test images (two halves of 2), got {t}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise UnderspecError(f"n_boot must be a positive integer, got {shown(n_boot)}")
    if not 0 < eps < 1:
        raise UnderspecError(f"eps must be in (0, 1), got {shown(eps)}")
    _check_finite(x, ref, what="alpha-hat: the values")
    g = torch.Generator().manual_seed(seed)
    half = t // 2
    order = torch.stack([torch.randint(0, t, (t,), generator=g) for _ in range(n_boot)])  # (B, T) resampled
    mine, theirs = order[:, :half], order[:, half:2 * half]  # (B, n) each
    delta = bound(half, eps)
    grid = torch.tensor([*alphas, NOT_REACHED], dtype=torch.float64)
    per_boot = max(1, chunk // (len(x) * half * (x.shape[1] + ref.shape[1])))
    levels = []  # (K, b) per group of bootstraps
    for start in range(0, n_boot, per_boot):
        m, o = mine[start:start + per_boot], theirs[start:start + per_boot]  # (b, n)
        a = x[:, :, m].permute(0, 2, 1, 3).reshape(len(x), len(m), -1)  # (K, b, Ra * n) pooled
        r = ref[:, :, o].permute(0, 2, 1, 3).reshape(len(x), len(o), -1)  # (K, b, Rb * n)
        reached = trimmed_distances(*_cdfs(a, r), alphas) <= delta  # (K, b, A)
        first = torch.where(reached.any(-1), reached.double().argmax(-1), len(alphas))  # the first alpha that holds
        levels.append(grid[first])
    return torch.cat(levels, -1).mean(-1)  # (K,): the same reduction as alpha_hats_loo's


def alpha_hats_loo(values, *, n_boot: int = 100, eps: float = 0.01, seed: int = 0, alphas=ALPHAS) -> torch.Tensor:
    """``alpha_hats`` of every model against the mixture of all the others (leave one out), equal to
    ``alpha_hats(values, values[others])`` with the same draws, but sorting the pooled reference halves once per
    bootstrap for all models: the count of the others' values below a point is the pool's count minus the
    model's own. values: (S, T), S >= 2 -> (S,) float64."""
    x = _tensor(values)
    if x.dim() != 2:
        raise UnderspecError(f"alpha_hats_loo needs (S, T) values, got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise UnderspecError("alpha-hat needs a reference of at least one other model: with one model there is "
                             "nothing to compare it with; train more seeds")
    s, t = x.shape
    if t < 4:
        raise UnderspecError(f"alpha-hat needs at least 4 test images (two halves of 2), got {t}")
    _check_finite(x, what="alpha-hat: the values")
    g = torch.Generator().manual_seed(seed)
    half = t // 2
    order = torch.stack([torch.randint(0, t, (t,), generator=g) for _ in range(n_boot)])  # as alpha_hats draws
    delta = bound(half, eps)
    grid = torch.tensor([*alphas, NOT_REACHED], dtype=torch.float64)
    levels = []  # (S,) per bootstrap
    for b in range(n_boot):
        mine = _sorted(x[:, order[b, :half]])  # (S, n)
        own = _sorted(x[:, order[b, half:2 * half]])  # (S, n): each model's reference half
        pool = _sorted(own.reshape(-1))  # (S n,): every model's, sorted once
        counts = [torch.searchsorted(pool, mine, right=r) - torch.searchsorted(own, mine, right=r) for r in (True, False)]
        reached = trimmed_distances(*_points(mine, *counts, (s - 1) * half), alphas) <= delta  # (S, A)
        levels.append(grid[torch.where(reached.any(-1), reached.double().argmax(-1), len(alphas))])
    return torch.stack(levels, -1).mean(-1)

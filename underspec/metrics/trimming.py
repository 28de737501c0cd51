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
one running minimum after sorting: O((n + m) log(n + m)), vectorised over any leading axes (models,
bootstraps). ``tests/test_trimming.py`` holds it to a linear program over the weights on small samples.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UnderspecError, shown


def alpha_trimmed_ks(sample, reference, alpha: float):
    """The alpha-trimmed KS distance of ``sample`` (the one trimmed) from ``reference``: (..., n) and (..., m)
    arrays or tensors of finite values (leading axes broadcast), ``alpha`` in [0, 1). A float for 1-D inputs,
    else a float64 tensor of the leading shape."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha < 1:
        raise UnderspecError(f"alpha is the share trimmed, in [0, 1), got {shown(alpha)}")
    x, y = (torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).double() for v in
            (sample, reference))
    if x.dim() == 0 or y.dim() == 0 or x.shape[-1] == 0 or y.shape[-1] == 0:
        raise UnderspecError("alpha_trimmed_ks needs two non-empty samples (a value per test image)")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise UnderspecError("alpha_trimmed_ks: the samples hold NaN or infinite values (a diverged model?): "
                             "leave that model out")
    lead = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x, y = x.expand(*lead, x.shape[-1]).sort(-1).values, y.expand(*lead, y.shape[-1]).sort(-1).values
    z = torch.cat([x, y], -1).sort(-1).values  # every point where a CDF jumps
    u = torch.searchsorted(x.contiguous(), z.contiguous(), right=True).double() / x.shape[-1]  # F at each point
    g = torch.searchsorted(y.contiguous(), z.contiguous(), right=True).double() / y.shape[-1]  # G at each point
    slope = 1.0 / (1.0 - alpha)
    a = g - slope * u
    pairs = (a - torch.cummin(a, -1).values).amax(-1) / 2
    ends = torch.maximum(a.amax(-1), (1 - g - slope * (1 - u)).amax(-1))
    d = torch.clamp(torch.maximum(pairs, ends), min=0.0)
    return float(d) if d.dim() == 0 else d

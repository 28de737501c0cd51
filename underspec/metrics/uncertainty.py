"""Uncertainty from seeds: intervals for statistics of seed pairs, resampling seeds, never pairs.

The S(S-1)/2 pairs of S seeds share seeds, so they are not independent: an interval must come from
resampling the seeds and forming the pairs of the resampled seeds (a seed paired with itself is dropped).
Everything here works on a *pair array* ``V`` (K, S, S): for K configurations (or metrics), the value of every
seed pair, symmetric, NaN where a pair was not measured (the diagonal; pairs of the reference view that do
not involve the reference seed; pairs with a diverged member).

Methods (``METHODS``):

- ``"jackknife"`` (default): delete one seed at a time (every pair it is in goes), recompute the statistic,
  and use the jackknife variance with a t quantile of S - 1 degrees of freedom. It covers the true mean at the
  nominal rate already with 5 to 7 seeds (``tests/test_uncertainty.py`` simulates it), where the bootstrap
  does not.
- ``"bootstrap"``: draw S seeds with replacement, form their pairs, recompute; percentile interval. Its draws
  also give the sampling distribution of discrete statistics (where a peak lies). Under-covers at 7 seeds
  (about 85% for a nominal 95%).
- ``"pairs"``: the pair bootstrap of earlier versions, which treats pairs as independent: too narrow; kept
  only to show by how much.

In the paper's *reference* view (every pair has the reference seed), the reference is fixed and only the
other seeds are resampled: its own effect on every pair cannot be estimated from one reference.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import UnderspecError, check_choice

METHODS = ("jackknife", "bootstrap", "pairs")


@dataclass(frozen=True)
class Estimate:
    """A statistic with its seed-level interval: ``value``, ``low``, ``high`` (NaN when the seeds cannot
    give one), ``method``, ``n_seeds``; ``draws``: the bootstrap replicates (``"bootstrap"`` only)."""

    value: float
    low: float
    high: float
    method: str
    n_seeds: int
    draws: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.high - self.low

    def excludes(self, x: float = 0.0) -> bool:
        """The interval lies entirely above or below ``x``."""
        return bool(self.low > x or self.high < x)


def pair_array(table: pd.DataFrame, value: str, by: list[str]) -> tuple[pd.Index, list[int], np.ndarray]:
    """A compare table's column ``value`` as a pair array: (index of the K groups of ``by``, the S seeds,
    V (K, S, S)); NaN where a pair is missing or its value is NaN."""
    seeds = sorted(set(table.seed_a) | set(table.seed_b))
    position = {s: i for i, s in enumerate(seeds)}
    groups = table.groupby(by, sort=False, dropna=False).ngroup().to_numpy() if by else np.zeros(len(table), dtype=int)
    keys = table.drop_duplicates(by)[by] if by else pd.DataFrame(index=[0])
    v = np.full((groups.max() + 1 if len(groups) else 0, len(seeds), len(seeds)), np.nan)
    a = table.seed_a.map(position).to_numpy()
    b = table.seed_b.map(position).to_numpy()
    v[groups, a, b] = v[groups, b, a] = table[value].to_numpy(dtype=float)
    return pd.MultiIndex.from_frame(keys) if len(by) > 1 else pd.Index(keys.iloc[:, 0] if by else [0]), seeds, v


def reference_of(v: np.ndarray) -> int | None:
    """The reference seed's position when every measured pair involves it (the paper's view), else None."""
    measured = ~np.isnan(v).all(0)  # (S, S): pairs measured in some group
    counts = measured.sum(1)
    if measured.sum() == 0:
        return None
    ref = int(np.argmax(counts))
    others = np.delete(np.delete(measured, ref, 0), ref, 1)
    return ref if not others.any() and counts[ref] > 1 else None


def pair_means(v: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Mean over the measured pairs of some seeds: (K,) for v (K, S, S), or (B, K) for B draws at once.

    keep: None (every seed), bool (S,) (the seeds kept), or seed positions (n,) or (B, n) with repeats (a
    bootstrap draw: its pairs are the pairs of distinct draws; a seed drawn twice is not paired with itself).
    """
    s = v.shape[-1]
    if keep is None:
        keep = np.arange(s)
    elif keep.dtype == bool:
        keep = np.flatnonzero(keep)
    draws = np.atleast_2d(keep)  # (B, n)
    iu, ju = np.triu_indices(draws.shape[1], 1)
    a, b = draws[:, iu], draws[:, ju]  # (B, P)
    values = v[:, a, b]  # (K, B, P)
    values = np.where(a == b, np.nan, values)
    with warnings.catch_warnings():  # a group without any measured pair has no mean: NaN, expected
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values, -1).T  # (B, K)
    return means[0] if keep.ndim == 1 else means


def estimate(v: np.ndarray, statistic=None, *, method: str = "jackknife", level: float = 0.95,
             n_boot: int = 2000, seed: int = 0) -> Estimate:
    """``statistic`` of the per-group pair means, with a seed-level interval (see the module doc).

    v: (K, S, S) pair array; statistic: (K,) pair means -> float (default: the single group's mean, K = 1).
    """
    check_choice(method, METHODS, "interval method")
    if not 0 < level < 1:
        raise UnderspecError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    statistic = statistic or (lambda means: float(means[0]))
    value = statistic(pair_means(v))
    ref = reference_of(v)
    seeds = [i for i in range(v.shape[-1]) if i != ref]  # the seeds that are resampled
    if method == "jackknife":
        variance, m = _seed_jackknife(v, statistic, seeds)
        if m < 3:
            return Estimate(value, np.nan, np.nan, method, v.shape[-1])
        half = stats.t.ppf((1 + level) / 2, m - 1) * np.sqrt(variance)
        return Estimate(value, value - half, value + half, method, v.shape[-1])
    rng = np.random.default_rng(seed)
    if method == "pairs":
        iu, ju = np.triu_indices(v.shape[-1], 1)
        measured = ~np.isnan(v[:, iu, ju]).all(0)
        iu, ju = iu[measured], ju[measured]
        pick = rng.integers(0, len(iu), (n_boot, len(iu)))
        draws = np.array([statistic(np.nanmean(v[:, iu[p], ju[p]], -1)) for p in pick])
    else:
        drawn = rng.choice(seeds, size=(n_boot, len(seeds)), replace=True)
        if ref is not None:
            drawn = np.concatenate([np.full((n_boot, 1), ref), drawn], 1)
        draws = np.array([statistic(means) for means in pair_means(v, drawn)], dtype=float)
    finite = draws[np.isfinite(draws)]
    if len(finite) < 0.9 * len(draws):  # most draws cannot give the statistic: no interval
        return Estimate(value, np.nan, np.nan, method, v.shape[-1], draws)
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(value, float(low), float(high), method, v.shape[-1], draws)


def _seed_jackknife(v: np.ndarray, statistic, seeds: list[int]) -> tuple[float, int]:
    """The delete-one-seed jackknife variance of ``statistic`` of the pair means, deleting each of ``seeds``
    in turn, and the number of deletions that gave a finite value (fewer than 3: no variance, NaN)."""
    if len(seeds) < 3:
        return np.nan, len(seeds)
    loo = np.array([statistic(pair_means(v, np.array([i != k for i in range(v.shape[-1])]))) for k in seeds])
    loo = loo[np.isfinite(loo)]
    m = len(loo)
    return ((m - 1) / m * ((loo - loo.mean()) ** 2).sum() if m >= 3 else np.nan), m


def seed_estimate(statistic, n_seeds: int, *, level: float = 0.95) -> Estimate:
    """``statistic(keep)`` of the seeds kept (``keep``: bool (S,)), with the delete-one-seed jackknife interval
    (t quantile, S - 1 degrees of freedom): for statistics of the seeds themselves rather than of their pairs
    (an ensemble's accuracy, the best seed's). NaN interval below 3 seeds."""
    if not 0 < level < 1:
        raise UnderspecError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    everyone = np.ones(n_seeds, dtype=bool)
    value = float(statistic(everyone))
    if n_seeds < 3:
        return Estimate(value, np.nan, np.nan, "jackknife", n_seeds)
    loo = np.array([float(statistic(np.arange(n_seeds) != k)) for k in range(n_seeds)])
    half = stats.t.ppf((1 + level) / 2, n_seeds - 1) * np.sqrt((n_seeds - 1) / n_seeds * ((loo - loo.mean()) ** 2).sum())
    return Estimate(value, value - half, value + half, "jackknife", n_seeds)


def multibootstrap(v: np.ndarray, *, level: float = 0.95) -> Estimate:
    """The mean of an example-level pair statistic over seed pairs and examples, with an interval that
    resamples the seeds and the examples together (after the MultiBERTs multibootstrap).

    v: (S, S, N), the value of every seed pair on every example (symmetric; the diagonal is ignored; NaN where a
    pair or an example was not measured). The two sources of variation are crossed and add: the seeds', by the
    delete-one-seed jackknife of the pairs' means over the examples (as every seed interval here: it covers
    at 5 to 7 seeds, where a bootstrap over the seeds does not), and the examples', by the bootstrap of the
    examples' means over the pairs (for a mean its variance is var / N in closed form, so nothing is drawn).
    Interval: the mean ± a t quantile (S - 1 degrees of freedom) times the root of their sum. Resampling seeds
    alone treats the examples as fixed: where examples differ in difficulty (every pair errs on the same hard
    images) that interval is too narrow (``tests/test_uncertainty.py`` simulates both). NaN below 3 seeds.
    """
    if not 0 < level < 1:
        raise UnderspecError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    v = np.asarray(v, dtype=float)
    if v.ndim != 3 or v.shape[0] != v.shape[1]:
        raise UnderspecError(f"multibootstrap needs a (seeds, seeds, examples) array, got shape {v.shape}")
    s, _, n = v.shape
    iu, ju = np.triu_indices(s, 1)
    pairs = v[iu, ju]  # (P, N)
    with warnings.catch_warnings():  # a pair or an example with nothing measured has no mean: NaN, expected
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(np.nanmean(pairs))
        if s < 3 or n < 2:
            return Estimate(value, np.nan, np.nan, "multibootstrap", s)
        means = np.full((1, s, s), np.nan)
        means[0, iu, ju] = means[0, ju, iu] = np.nanmean(pairs, 1)
        loo = np.array([pair_means(means, np.arange(s) != k)[0] for k in range(s)])
        by_example = np.nanmean(pairs, 0)  # (N,)
    by_example = by_example[np.isfinite(by_example)]
    variance = (s - 1) / s * ((loo - loo.mean()) ** 2).sum() + by_example.var(ddof=1) / len(by_example)
    half = stats.t.ppf((1 + level) / 2, s - 1) * np.sqrt(variance)
    return Estimate(value, value - half, value + half, "multibootstrap", s)


def crossed_estimate(v: np.ndarray, blocks: np.ndarray, statistic=None, *, level: float = 0.95) -> Estimate:
    """``statistic`` of the per-group pair means of a value that depends on the seeds *and* on the examples it
    is measured on, when it is not a mean over examples (CKA on probe images, a loss barrier), with an
    interval from both sources: the seeds' delete-one-seed jackknife (as ``estimate``) and the examples'
    delete-a-block jackknife, variances added, t quantile of S - 1 degrees of freedom. It is the
    multibootstrap's crossed design (``multibootstrap``, for means) for such statistics.

    v: (K, S, S) pair array on every example; blocks: (B, K, S, S), the same with example block b left out;
    statistic: (K,) pair means -> float (default: the single group's mean). NaN interval below 3 seeds.
    """
    if not 0 < level < 1:
        raise UnderspecError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    v, blocks = np.asarray(v, dtype=float), np.asarray(blocks, dtype=float)
    if v.ndim != 3 or blocks.ndim != 4 or blocks.shape[1:] != v.shape or len(blocks) < 2:
        raise UnderspecError(f"crossed_estimate needs v (K, S, S) and blocks (B >= 2, K, S, S), got {v.shape} and "
                             f"{blocks.shape}")
    statistic = statistic or (lambda means: float(means[0]))
    value = statistic(pair_means(v))
    ref = reference_of(v)
    var_seeds, m = _seed_jackknife(v, statistic, [i for i in range(v.shape[-1]) if i != ref])
    if m < 3:
        return Estimate(value, np.nan, np.nan, "crossed jackknife", v.shape[-1])
    theta = np.array([statistic(pair_means(b)) for b in blocks])
    theta = theta[np.isfinite(theta)]
    if len(theta) < 2:
        return Estimate(value, np.nan, np.nan, "crossed jackknife", v.shape[-1])
    var_examples = (len(theta) - 1) / len(theta) * ((theta - theta.mean()) ** 2).sum()
    half = stats.t.ppf((1 + level) / 2, m - 1) * np.sqrt(var_seeds + var_examples)
    return Estimate(value, value - half, value + half, "crossed jackknife", v.shape[-1])


def seed_image_estimate(statistic, n_seeds: int, n_examples: int, *, n_blocks: int = 10,
                        level: float = 0.95) -> Estimate:
    """``statistic(keep_seeds, keep_examples)`` (bool (S,) and (N,) -> float) of seeds measured on examples (an
    ensemble's accuracy gain, an accuracy difference, a barrier over pairs), with an interval that resamples
    both: the delete-one-seed jackknife and the delete-a-block jackknife over ``n_blocks`` contiguous blocks of
    examples, variances added, t quantile of S - 1 degrees of freedom (``crossed_estimate`` for statistics
    computed from scratch). NaN interval below 3 seeds."""
    if not 0 < level < 1:
        raise UnderspecError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    if n_examples < 2 * n_blocks:
        raise UnderspecError(f"{n_examples} examples are too few for {n_blocks} blocks")
    seeds, examples = np.ones(n_seeds, dtype=bool), np.ones(n_examples, dtype=bool)
    value = float(statistic(seeds, examples))
    if n_seeds < 3:
        return Estimate(value, np.nan, np.nan, "crossed jackknife", n_seeds)
    by_seed = np.array([float(statistic(np.arange(n_seeds) != k, examples)) for k in range(n_seeds)])
    block = np.arange(n_examples) * n_blocks // n_examples
    by_block = np.array([float(statistic(seeds, block != b)) for b in range(n_blocks)])
    variance = sum((len(d) - 1) / len(d) * ((d - d.mean()) ** 2).sum() for d in (by_seed, by_block))
    half = stats.t.ppf((1 + level) / 2, n_seeds - 1) * np.sqrt(variance)
    return Estimate(value, value - half, value + half, "crossed jackknife", n_seeds)


def pair_estimate(table: pd.DataFrame, column: str, *, level: float = 0.95) -> Estimate:
    """The mean of a pair metric over the seed pairs of ``table`` with its interval: seeds resampled
    (``estimate``), or seeds and examples together where the table has example blocks (a ``block`` column,
    -1 for every example: ``crossed_estimate``)."""
    if "block" not in table:
        return estimate(pair_array(table, column, [])[2], level=level)
    whole = pair_array(table[table.block == -1], column, [])[2]
    left = np.stack([pair_array(table[table.block == b], column, [])[2] for b in sorted(set(table.block) - {-1})])
    return crossed_estimate(whole, left, level=level)

"""Choosing a configuration when the seed moves its score: pure functions of a score table ``scores`` (K, S),
the validation metric of K configurations, each trained with the same S seeds (column s: seed s).

- ``best_of_k``: what a user who reruns a configuration k times and keeps the best run sees, exactly, from the
  order statistics of the S observed seeds (no simulation): the k runs are k of the S seeds drawn without
  replacement, and the j-th smallest of S is the best of k with probability C(j-1, k-1) / C(S, k);
- ``seed_splits``: every way to cut the seeds into two disjoint sets of a size (each unordered split once);
- ``split_agreement``: per split, the Spearman rank correlation of the configurations' mean scores on the two
  sets and whether the two sets crown the same configuration;
- ``single_seed_winners``: the configuration each seed alone would crown (one seed per trial, as most tuning
  is done);
- ``gaps_to``: every configuration's paired gap to a chosen one, seed by seed, with a t interval over the seeds
  (the seeds are shared, so the gap is paired).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import UnderspecError


def best_of_k_weights(n: int, k: int) -> np.ndarray:
    """(n,) the probability that the j-th smallest of n values (j = 1..n, ascending) is the largest of k drawn
    from them without replacement: C(j-1, k-1) / C(n, k); they sum to 1."""
    if not 1 <= k <= n:
        raise UnderspecError(f"best of k needs 1 <= k <= n = {n} seeds, got k = {k}")
    return np.array([math.comb(j - 1, k - 1) for j in range(1, n + 1)], dtype=float) / math.comb(n, k)


def best_of_k(values, k: int, by=None) -> float:
    """The expected ``values`` of the best of k seeds drawn without replacement from the n observed, the best
    by ``by`` (default: by ``values`` themselves, the expected maximum). values, by: (n,). Seeds tied in ``by``
    share their ranks' weights evenly (a tie is broken at random). Exact: no draws."""
    values = np.asarray(values, dtype=float)
    by = values if by is None else np.asarray(by, dtype=float)
    if values.ndim != 1 or by.shape != values.shape or not np.isfinite(by).all():
        raise UnderspecError(f"best_of_k needs two finite (n,) arrays, got {values.shape} and {by.shape}")
    order = np.argsort(by, kind="stable")
    w = best_of_k_weights(len(values), k)
    ranked_by, ranked = by[order], values[order]
    expected = 0.0
    for tie in np.unique(ranked_by):
        at = ranked_by == tie
        expected += w[at].sum() * ranked[at].mean()
    return float(expected)


def best_of_k_inflation(values, ks=None, by=None) -> pd.DataFrame:
    """For every k in ``ks`` (default 1..n): ``k``, ``expected`` (``best_of_k``) and ``inflation`` (expected -
    the mean of all n seeds: what keeping the best of k reruns adds, 0 at k = 1)."""
    values = np.asarray(values, dtype=float)
    ks = range(1, len(values) + 1) if ks is None else ks
    rows = [{"k": int(k), "expected": best_of_k(values, k, by)} for k in ks]
    table = pd.DataFrame(rows)
    table["inflation"] = table.expected - values.mean()
    return table


def seed_splits(n: int, size: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every split of seeds 0..n-1 into two disjoint sets of ``size`` seeds (the rest, if any, unused), each
    unordered split once: n = 4, size 2 gives ((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))."""
    if size < 1 or 2 * size > n:
        raise UnderspecError(f"two disjoint sets of {size} seeds need 1 <= {size} and 2 x {size} <= {n}")
    splits = []
    for a in itertools.combinations(range(n), size):
        rest = [s for s in range(n) if s not in a]
        for b in itertools.combinations(rest, size):
            if a < b:
                splits.append((a, b))
    return splits


def _check(scores) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] < 2 or not np.isfinite(scores).all():
        raise UnderspecError(f"scores must be a finite (configurations >= 2, seeds) array, got {scores.shape}")
    return scores


def split_agreement(scores, size: int) -> pd.DataFrame:
    """One row per split of the seeds into two disjoint sets of ``size`` (``seed_splits``): ``set_a``,
    ``set_b`` (seed positions), ``spearman`` (rank correlation of the K configurations' mean scores on the two
    sets; NaN where one set scores every configuration alike), ``winner_a``, ``winner_b`` (each set's best
    configuration, a row of ``scores``) and ``same_winner``. scores: (K, S)."""
    scores = _check(scores)
    rows = []
    for a, b in seed_splits(scores.shape[1], size):
        ma, mb = scores[:, a].mean(1), scores[:, b].mean(1)
        flat = np.ptp(ma) == 0 or np.ptp(mb) == 0
        rho = np.nan if flat else float(stats.spearmanr(ma, mb).statistic)
        wa, wb = int(np.argmax(ma)), int(np.argmax(mb))
        rows.append({"set_a": a, "set_b": b, "spearman": rho, "winner_a": wa, "winner_b": wb, "same_winner": wa == wb})
    return pd.DataFrame(rows)


def single_seed_winners(scores) -> np.ndarray:
    """(S,) the configuration (row) each seed alone crowns. scores: (K, S)."""
    return np.argmax(_check(scores), axis=0)


def gaps_to(scores, chosen: int, *, level: float = 0.95) -> pd.DataFrame:
    """Every configuration's gap to configuration ``chosen``, seed by seed (the same seeds: paired): one row
    per configuration with ``gap`` (mean over seeds of chosen - it), ``low``, ``high`` (t interval over the S
    seeds, S - 1 degrees of freedom; NaN below 2 seeds) and ``apart`` (the interval lies above 0: the seeds
    tell it from the chosen one). scores: (K, S)."""
    scores = _check(scores)
    d = scores[chosen] - scores  # (K, S)
    s = d.shape[1]
    mean = d.mean(1)
    if s < 2:
        half = np.full(len(d), np.nan)
    else:
        half = stats.t.ppf((1 + level) / 2, s - 1) * d.std(1, ddof=1) / np.sqrt(s)
    table = pd.DataFrame({"config": np.arange(len(d)), "gap": mean, "low": mean - half, "high": mean + half})
    table["apart"] = table.low > 0
    return table

"""Seed-level intervals: on simulated studies with a known mean, resampling seeds covers it at close to the
nominal rate; resampling pairs, as if they were independent, does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from underspec import UnderspecError
from underspec.metrics.uncertainty import estimate, pair_array, pair_means


def simulated_study(rng, n_seeds=7, mean=0.3, seed_sd=0.03, pair_sd=0.02) -> np.ndarray:
    """A pair array (1, S, S) of a seed model: value(i, j) = mean + u_i + u_j + e_ij."""
    u = rng.normal(0, seed_sd, n_seeds)
    v = mean + u[:, None] + u[None, :] + rng.normal(0, pair_sd, (n_seeds, n_seeds))
    v = np.triu(v, 1)
    v = v + v.T
    np.fill_diagonal(v, np.nan)
    return v[None]


def coverage(method: str, n_studies=200, **kwargs) -> float:
    rng = np.random.default_rng(7)
    hits = 0
    for k in range(n_studies):
        est = estimate(simulated_study(rng, **kwargs), method=method, n_boot=400, seed=k)
        hits += est.low <= 0.3 <= est.high
    return hits / n_studies


def test_the_seed_level_interval_covers_the_mean_at_close_to_the_nominal_rate():
    assert 0.90 <= coverage("jackknife") <= 0.99
    assert 0.90 <= coverage("jackknife", seed_sd=0.05, pair_sd=0.0) <= 0.99  # seeds all the variation


def test_the_pair_bootstrap_under_covers():
    assert coverage("pairs") < 0.75


def test_pair_means_form_pairs_of_distinct_draws():
    v = np.full((1, 3, 3), np.nan)
    v[0, 0, 1] = v[0, 1, 0] = 1.0
    v[0, 0, 2] = v[0, 2, 0] = 2.0
    v[0, 1, 2] = v[0, 2, 1] = 4.0
    assert pair_means(v)[0] == pytest.approx(7 / 3)
    assert pair_means(v, np.array([0, 0, 2]))[0] == pytest.approx(2.0)  # (0, 0) is no pair; (0, 2) twice
    assert pair_means(v, np.array([True, False, True]))[0] == pytest.approx(2.0)


def test_a_statistic_of_several_configurations_is_jackknifed_over_shared_seeds():
    """The difference of two configurations' means: each left-out seed leaves both at once."""
    rng = np.random.default_rng(0)
    v = np.concatenate([simulated_study(rng, mean=0.3), simulated_study(rng, mean=0.5)])
    est = estimate(v, lambda means: means[1] - means[0])
    loo = []
    for k in range(7):
        keep = np.arange(7) != k
        loo.append(pair_means(v, keep)[1] - pair_means(v, keep)[0])
    loo = np.array(loo)
    from scipy import stats

    half = stats.t.ppf(0.975, 6) * np.sqrt(6 / 7 * ((loo - loo.mean()) ** 2).sum())
    assert (est.low, est.high) == (pytest.approx(est.value - half), pytest.approx(est.value + half))
    assert est.excludes(0)


def test_pair_array_reads_a_compare_table():
    table = pd.DataFrame({"l1": [0.0, 0.0, 0.0, 0.01], "seed_a": [0, 0, 42, 0], "seed_b": [42, 7, 7, 42],
                          "pe": [0.1, 0.2, 0.3, 0.9]})
    index, seeds, v = pair_array(table, "pe", ["l1"])
    assert list(index) == [0.0, 0.01] and seeds == [0, 7, 42]
    assert v[0, 0, 2] == v[0, 2, 0] == 0.1 and v[0, 1, 2] == 0.3 and np.isnan(v[1, 1, 2])


def seeds_by_examples(rng, n_seeds=7, n_examples=200, mean=0.2, seed_sd=0.02, example_sd=0.3, noise_sd=0.1):
    """(S, S, N): value(i, j, n) = mean + u_i + u_j + d_n + e_ijn, every pair on the same N examples, whose
    difficulty d_n is shared by all pairs (a hard image is hard for every seed)."""
    u = rng.normal(0, seed_sd, n_seeds)
    d = rng.normal(0, example_sd, n_examples)
    e = rng.normal(0, noise_sd, (n_seeds, n_seeds, n_examples))
    e = np.triu(e.transpose(2, 0, 1), 1).transpose(1, 2, 0)
    v = mean + u[:, None, None] + u[None, :, None] + d[None, None, :] + e + e.transpose(1, 0, 2)
    v[np.arange(n_seeds), np.arange(n_seeds)] = np.nan
    return v


def test_the_multibootstrap_covers_an_example_level_mean_where_resampling_seeds_alone_under_covers():
    from underspec.metrics.uncertainty import multibootstrap

    rng = np.random.default_rng(11)
    joint = seeds_only = 0
    n_studies = 200
    for k in range(n_studies):
        v = seeds_by_examples(rng)
        e = multibootstrap(v)
        joint += e.low <= 0.2 <= e.high
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):  # the diagonal's empty mean
            means = np.nanmean(v, -1)[None]
        alone = estimate(means)  # the examples fixed: every pair's mean over them
        seeds_only += alone.low <= 0.2 <= alone.high
    assert 0.90 <= joint / n_studies <= 0.99, joint / n_studies
    assert seeds_only / n_studies < 0.85, seeds_only / n_studies
    rng = np.random.default_rng(3)  # where the seeds carry nearly all the variation, it still covers
    hits = 0
    for k in range(n_studies):
        e = multibootstrap(seeds_by_examples(rng, seed_sd=0.05, example_sd=0.01))
        hits += e.low <= 0.2 <= e.high
    assert 0.90 <= hits / n_studies <= 0.99, hits / n_studies


def test_the_crossed_jackknife_covers_a_statistic_of_seeds_and_examples_where_the_seeds_alone_under_cover():
    """``crossed_estimate`` from the pairs on every example and with each block of examples left out: on the
    seeds x examples world it covers the true mean at close to the nominal rate, as the multibootstrap does,
    where the seeds' jackknife alone does not, with intervals as wide as the multibootstrap's; a ratio of means
    (not a mean over examples) is covered too."""
    from underspec.metrics.uncertainty import crossed_estimate, multibootstrap

    def pieces(v, n_blocks=10):
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):  # the diagonal's empty means
            whole = np.nanmean(v, -1)[None]
            blocks = np.stack([np.nanmean(np.delete(v, np.s_[b::n_blocks], -1), -1)[None] for b in range(n_blocks)])
        return whole, blocks

    rng = np.random.default_rng(5)
    crossed = seeds_only = ratio_hits = 0
    widths = []
    n_studies = 200
    for _ in range(n_studies):
        v = seeds_by_examples(rng)
        whole, blocks = pieces(v)
        e = crossed_estimate(whole, blocks)
        crossed += e.low <= 0.2 <= e.high
        widths.append(e.width / multibootstrap(v).width)
        alone = estimate(whole)
        seeds_only += alone.low <= 0.2 <= alone.high
        ratio = crossed_estimate(whole, blocks, lambda m: float(m[0] / 0.4))
        ratio_hits += ratio.low <= 0.5 <= ratio.high
    assert crossed / n_studies >= 0.93 and ratio_hits / n_studies >= 0.93, (crossed, ratio_hits)
    assert 0.8 <= np.median(widths) <= 1.25, np.median(widths)  # as wide as the multibootstrap
    assert seeds_only / n_studies < 0.85, seeds_only / n_studies
    with pytest.raises(UnderspecError, match="blocks"):
        crossed_estimate(whole, blocks[:1])


def test_a_statistic_of_seeds_on_images_is_resampled_over_both():
    """``seed_image_estimate``: for a mean over seeds and images of seeds x examples data, the interval covers
    the true mean at close to the nominal rate, where deleting seeds alone does not (hard images are hard for
    every seed); ``pair_estimate`` takes a table with image blocks through ``crossed_estimate``."""
    from underspec.metrics.uncertainty import pair_estimate, seed_image_estimate

    rng = np.random.default_rng(2)
    both = seeds = 0
    for _ in range(200):
        v = 0.5 + rng.normal(0, 0.02, (7, 1)) + rng.normal(0, 0.3, (1, 300)) + rng.normal(0, 0.1, (7, 300))
        e = seed_image_estimate(lambda s, i: v[s][:, i].mean(), 7, 300)
        both += e.low <= 0.5 <= e.high
        alone = seed_image_estimate(lambda s, i: v[s].mean(), 7, 300)  # the images never left out
        seeds += alone.low <= 0.5 <= alone.high
    assert both / 200 >= 0.92 and seeds / 200 < 0.85, (both, seeds)
    table = pd.DataFrame({"seed_a": [0, 0, 1] * 3, "seed_b": [1, 2, 2] * 3, "block": [-1] * 3 + [0] * 3 + [1] * 3,
                          "barrier": [0.3, 0.5, 0.4, 0.31, 0.52, 0.41, 0.29, 0.48, 0.39]})
    e = pair_estimate(table, "barrier")
    assert e.value == pytest.approx(0.4) and e.method == "crossed jackknife"
    with pytest.raises(UnderspecError, match="too few"):
        seed_image_estimate(lambda s, i: 0.0, 7, 15)

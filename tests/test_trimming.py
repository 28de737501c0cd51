"""The alpha-trimmed KS distance: the vectorised estimator against a linear program over the trimmed weights,
the KS statistic at alpha = 0, contamination trimmed away, the sampling bound, and hostile inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.optimize import linprog

import underspec
from underspec import UnderspecError


def brute_force(x: np.ndarray, y: np.ndarray, alpha: float) -> float:
    """min eps over weights w on x's points (0 <= w_i <= 1 / (n (1 - alpha)), sum 1) with |F~ - G| <= eps at
    every point where a CDF jumps (right values and left limits): a linear program."""
    n = len(x)
    z = np.unique(np.concatenate([x, y]))
    rows, rhs = [], []
    for point in z:
        for inclusive in (True, False):  # F~(z) and F~(z-), against G(z) and G(z-)
            below = (x <= point) if inclusive else (x < point)
            g = np.mean(y <= point) if inclusive else np.mean(y < point)
            rows += [np.append(below, -1.0), np.append(-below.astype(float), -1.0)]
            rhs += [g, -g]
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    bounds = [(0, 1 / (n * (1 - alpha)))] * n + [(0, None)]
    result = linprog(cost, A_ub=np.array(rows, dtype=float), b_ub=np.array(rhs), A_eq=[np.append(np.ones(n), 0.0)],
                     b_eq=[1.0], bounds=bounds, method="highs")
    assert result.success
    return float(result.x[-1])


@pytest.mark.parametrize("case", range(30))
def test_the_estimator_equals_the_linear_program_on_small_samples(case):
    rng = np.random.default_rng(case)
    n, m = rng.integers(3, 15, 2)
    x = rng.normal(0, 1, n)
    y = rng.normal(rng.uniform(-1, 1), rng.uniform(0.5, 2), m)
    if case % 3 == 0:  # ties within and between the samples
        x, y = np.round(x, 1), np.round(y, 1)
    alpha = float(rng.choice([0.0, 0.05, 0.1, 0.25, 0.5, 0.9]))
    assert underspec.alpha_trimmed_ks(x, y, alpha) == pytest.approx(brute_force(x, y, alpha), abs=1e-9)


@pytest.mark.parametrize("case", range(24))
def test_at_alpha_0_it_is_scipys_two_sample_ks_statistic(case):
    """Samples of different sizes (one value up to 300), shifted and scaled, every other one with ties within
    and between the samples."""
    rng = np.random.default_rng(200 + case)
    n, m = (1, 7) if case == 0 else rng.integers(1, 300, 2)
    x, y = rng.normal(0, 1, n), rng.normal(rng.uniform(-1, 1), rng.uniform(0.5, 2), m)
    if case % 2:
        x, y = np.round(x), np.round(y)
    assert underspec.alpha_trimmed_ks(x, y, 0.0) == pytest.approx(stats.ks_2samp(x, y).statistic, abs=1e-12)


def test_it_falls_as_alpha_grows():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 300), rng.normal(0.3, 1, 200)
    values = [underspec.alpha_trimmed_ks(x, y, a) for a in (0, 0.05, 0.1, 0.2, 0.4)]
    assert all(a >= b for a, b in zip(values, values[1:])) and values[-1] < values[0]


def test_a_contamination_is_trimmed_away_once_alpha_reaches_it():
    """F = (1 - a) G + a H: d_alpha is at the sampling error for alpha >= a, well above it below."""
    rng = np.random.default_rng(1)
    n, share = 4000, 0.2
    x = np.where(rng.random(n) < share, rng.normal(6, 1, n), rng.normal(0, 1, n))  # a fifth far away
    y = rng.normal(0, 1, n)
    delta = np.sqrt(np.log(2 / 0.01) / n) + 1 / n
    assert underspec.alpha_trimmed_ks(x, y, 0.1) > 3 * delta
    for alpha in (share, 0.25, 0.3, 0.45):  # from alpha = a on, at the sampling error
        assert underspec.alpha_trimmed_ks(x, y, alpha) <= delta


def test_two_samples_of_one_distribution_are_within_the_bound_at_its_rate():
    """d_0 <= delta = sqrt(log(2 / eps) / n) + 1 / n in at least 1 - eps of simulations (eps = 0.01), for the
    KS distance of a sample from a larger reference (the alpha-hat procedure's setting)."""
    rng = np.random.default_rng(2)
    n, eps = 500, 0.01
    delta = np.sqrt(np.log(2 / eps) / n) + 1 / n
    x, y = torch.from_numpy(rng.normal(0, 1, (400, n))), torch.from_numpy(rng.normal(0, 1, (400, 20 * n)))
    d = underspec.alpha_trimmed_ks(x, y, 0.0)  # 400 simulations at once (leading axis)
    assert d.shape == (400,) and float((d <= delta).double().mean()) >= 1 - eps


def test_bad_input_is_one_clear_error():
    for args, message in [(([1.0, float("nan")], [0.0, 1.0], 0.1), "NaN or infinite"),
                          (([], [0.0, 1.0], 0.1), "non-empty"), (([1.0], [0.0], 1.0), "alpha is the share"),
                          (([1.0], [0.0], -0.1), "alpha is the share"), (([1.0], [0.0], True), "alpha is the share")]:
        with pytest.raises(UnderspecError, match=message):
            underspec.alpha_trimmed_ks(*args)


def test_alpha_hat_is_0_for_one_distribution_and_reaches_a_contamination():
    from underspec.metrics.trimming import alpha_hat

    rng = np.random.default_rng(3)
    t = 2000
    reference = rng.normal(0, 1, (4, t))
    assert alpha_hat(rng.normal(0, 1, t), reference, n_boot=40) <= 0.02
    shifted = np.where(rng.random(t) < 0.2, rng.normal(5, 1, t), rng.normal(0, 1, t))
    assert 0.15 <= alpha_hat(shifted, reference, n_boot=40) <= 0.3
    with pytest.raises(UnderspecError, match="on the same T images"):
        alpha_hat(np.zeros(10), np.zeros((2, 9)))


def test_scalar_outputs_clip_gaps_and_agree_for_two_classes():
    from underspec.metrics.trimming import GAP_CLIP, scalar_outputs

    logits = torch.tensor([[3.0, -1.0], [0.0, 40.0], [2.0, 2.5]])
    labels = torch.tensor([0, 0, 1])
    margin = scalar_outputs(logits, labels, "margin")
    assert margin.tolist() == [4.0, -GAP_CLIP, 0.5]  # clipped, never zeroed
    assert scalar_outputs(logits, kind="top2").tolist() == [4.0, GAP_CLIP, 0.5]
    ovr = scalar_outputs(logits, kind="ovr")  # for C = 2: each class's logit minus the other's
    assert ovr[:, 0].tolist() == [4.0, -GAP_CLIP, -0.5]
    for bad, message in [((torch.tensor([[float("nan"), 0.0]]), labels[:1], "margin"), "NaN or infinite"),
                         ((logits, None, "margin"), "needs the labels"), ((logits, labels, "gap"), "unknown output"),
                         ((torch.zeros(0, 3), None, "top2"), "at least one image")]:
        with pytest.raises(UnderspecError, match=message):
            scalar_outputs(*bad)


def test_the_vectorised_alpha_hat_equals_a_loop_of_single_models_and_does_not_depend_on_chunks():
    from underspec.metrics.trimming import alpha_hat, alpha_hats

    rng = np.random.default_rng(4)
    k, r, t = 5, 3, 300
    values = rng.normal(0, 1, (k, t)) + rng.uniform(0, 1, (k, 1))  # some shifted, some not
    reference = rng.normal(0, 1, (k, r, t))
    together = alpha_hats(values, reference, n_boot=25, seed=7)
    alone = [alpha_hat(values[i], reference[i], n_boot=25, seed=7) for i in range(k)]
    assert together.tolist() == pytest.approx(alone, abs=1e-12)
    assert alpha_hats(values, reference, n_boot=25, seed=7, chunk=1).tolist() == pytest.approx(alone, abs=1e-12)
    assert together.max() > 0.1 and together.min() < 0.05  # the shifts are seen


def test_two_mixtures_of_one_distribution_are_at_level_0_and_a_contaminated_one_is_not():
    from underspec.metrics.trimming import alpha_hats

    rng = np.random.default_rng(5)
    t = 2000
    a, b = rng.normal(0, 1, (1, 4, t)), rng.normal(0, 1, (1, 4, t))
    assert float(alpha_hats(a, b, n_boot=20)[0]) <= 0.02
    a[0, 0] = rng.normal(6, 1, t)  # one model of four far away: a quarter of the mixture
    assert 0.2 <= float(alpha_hats(a, b, n_boot=20)[0]) <= 0.3


@pytest.mark.parametrize("sample, reference, message", [
    (np.zeros((2, 0)), np.zeros((2, 3, 0)), "at least 4 test images"),  # an empty test set
    (np.zeros((1, 10)), np.zeros((1, 0, 10)), "with one model there is nothing to compare"),  # one model
    (np.zeros((0, 10)), np.zeros((0, 2, 10)), "at least one model"),
    (np.array([[np.nan] * 10]), np.zeros((1, 2, 10)), "NaN or infinite"),
    (np.zeros((2, 10)), np.zeros((2, 2, 9)), "on the same T images"),
])
def test_hostile_inputs_to_alpha_hat_get_one_clear_error(sample, reference, message):
    from underspec.metrics.trimming import alpha_hats

    with pytest.raises(UnderspecError, match=message):
        alpha_hats(sample, reference, n_boot=3)


def test_nan_logits_are_refused_before_any_work():
    from underspec.metrics.trimming import scalar_outputs

    logits = torch.zeros(2, 5, 3)
    logits[1, 2, 0] = float("nan")
    with pytest.raises(UnderspecError, match="NaN or infinite"):
        scalar_outputs(logits, kind="top2")


def every_point(x: np.ndarray, y: np.ndarray, alpha: float) -> float:
    """The envelope formula evaluated at every point where either CDF jumps (no reduction to x's stretches)."""
    z = np.sort(np.concatenate([x, y]))
    u = np.searchsorted(np.sort(x), z, side="right") / len(x)
    g = np.searchsorted(np.sort(y), z, side="right") / len(y)
    slope = 1 / (1 - alpha)
    a = g - slope * u
    return max(0.0, a.max(), (1 - g - slope * (1 - u)).max(), ((a - np.minimum.accumulate(a)) / 2).max())


@pytest.mark.parametrize("case", range(40))
def test_the_reduced_points_give_the_formula_at_every_jump_on_larger_samples_with_ties(case):
    rng = np.random.default_rng(100 + case)
    n, m = rng.integers(1, 400, 2)
    x, y = rng.normal(0, 1, n), rng.normal(rng.uniform(-1, 1), rng.uniform(0.5, 2), m)
    if case % 2:
        x, y = np.round(x, 0), np.round(y, 0)  # a handful of values, tied many times within and between
    alpha = float(rng.choice([0.0, 0.01, 0.1, 0.3, 0.45]))
    assert underspec.alpha_trimmed_ks(x, y, alpha) == pytest.approx(every_point(x, y, alpha), abs=1e-12)


def test_leave_one_out_alpha_hat_equals_the_general_one():
    from underspec.metrics.trimming import alpha_hats, alpha_hats_loo

    rng = np.random.default_rng(6)
    values = np.round(rng.normal(0, 1, (6, 301)) + rng.uniform(0, 0.6, (6, 1)), 1)  # ties too
    others = np.array([[j for j in range(6) if j != i] for i in range(6)])
    general = alpha_hats(values, values[others], n_boot=150, seed=3, chunk=20_000)  # bootstraps in groups
    assert alpha_hats_loo(values, n_boot=150, seed=3).tolist() == general.tolist()  # exactly: the same counts
    assert general.max() > 0  # and not only zeros
    with pytest.raises(UnderspecError, match="nothing to compare"):
        alpha_hats_loo(values[:1])

"""Exact redundancy on constructed networks where the truth is known, and the power-law fit against the
reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import underspec
from underspec import UnderspecError
from underspec.training.model import forward, init_params


def planted(depth: int, dtype) -> dict:
    """A network in ``dtype`` whose every hidden layer has unit 5 = 2.5 x unit 1, unit 7 = 0.3 x unit 2 and
    unit 9 = -1 x unit 3 (sign-flipped: not the same function under ReLU)."""
    params = init_params(0, 10, hidden=12, n_inputs=30, depth=depth)
    g = torch.Generator().manual_seed(9)
    params = {k: (v + 0.05 * torch.randn(v.shape, generator=g)).to(dtype) for k, v in params.items()}
    for layer in range(1, depth + 1):
        w, b = params[f"w{layer}"], params[f"b{layer}"]
        for copy, unit, scale in ((5, 1, 2.5), (7, 2, 0.3), (9, 3, -1.0)):
            w[copy], b[copy] = scale * w[unit], scale * b[unit]
    return params


@pytest.mark.parametrize("depth", [1, 2])
def test_planted_parallel_units_are_merged_and_the_function_stays(depth):
    params = planted(depth, torch.float32)
    merged, removed = underspec.merge_parallel_units(params)
    assert removed == 2 * depth  # the two scaled copies per layer; the sign-flipped one stays
    assert all(merged[f"w{layer}"].shape[0] == 10 for layer in range(1, depth + 1))
    x = torch.randn(200, 30, generator=torch.Generator().manual_seed(1))
    logits = forward(params, x)  # float32: equal to 1e-6 of the logits' scale (about 8 here), float rounding
    assert (forward(merged, x) - logits).abs().max() <= 1e-6 * logits.abs().max()
    exact = planted(depth, torch.float64)  # float64: equal to 1e-12
    x = x.double()
    assert (forward(underspec.merge_parallel_units(exact)[0], x) - forward(exact, x)).abs().max() < 1e-12


def test_an_all_zero_unit_is_removed_and_nothing_else_without_parallels():
    params = init_params(1, 3, hidden=8, n_inputs=20)
    params["w1"][4], params["b1"][4] = 0.0, 0.0
    merged, removed = underspec.merge_parallel_units(params)
    assert removed == 1 and merged["w1"].shape == (7, 20) and merged["w2"].shape == (3, 7)
    x = torch.randn(50, 20, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(forward(merged, x), forward(params, x), rtol=0, atol=1e-6)
    with pytest.raises(UnderspecError, match="one network's parameters"):
        underspec.merge_parallel_units({k: v[None] for k, v in params.items()})


@pytest.mark.filterwarnings("ignore")  # the reference package warns as it searches
def test_the_power_law_fit_recovers_a_known_exponent_and_agrees_with_the_reference():
    powerlaw = pytest.importorskip("powerlaw")
    rng = np.random.default_rng(0)
    alpha, xmin = 2.5, 1.0
    x = xmin * (1 - rng.random(2000)) ** (-1 / (alpha - 1))  # Pareto: p(x) ~ x^-2.5 above 1
    fit = underspec.powerlaw_alpha(x)
    assert abs(fit.alpha - alpha) < 3 * fit.sigma, fit
    reference = powerlaw.Fit(x, xmin=fit.xmin, verbose=False)  # the same x_min: the same MLE
    assert fit.alpha == pytest.approx(reference.power_law.alpha, rel=1e-9)
    free = powerlaw.Fit(x, verbose=False)  # its own x_min search
    assert abs(free.power_law.alpha - fit.alpha) < 2 * fit.sigma


def test_too_few_eigenvalues_are_refused_in_one_line():
    with pytest.raises(UnderspecError, match="at least 50 eigenvalues, got 16") as err:
        underspec.powerlaw_alpha(np.linspace(1, 2, 16))
    assert "\n" not in str(err.value)
    with pytest.raises(UnderspecError, match="finite, positive"):
        underspec.powerlaw_alpha(np.r_[np.zeros(10), np.linspace(1, 2, 60)])


# ------------------------------------------------------------------------------------ repeated units

def planted_layer(n_images: int = 400, seed: int = 0):
    """Activations of a layer of 10 units on ``n_images`` images: units 0-5 independent, unit 6 = unit 0,
    unit 7 = 3 x unit 1 (a scaled copy), unit 8 dead (0 on every image), unit 9 = unit 0 + 0.2 x unit 2. With
    the |r| >= 0.5 threshold: unit 0 repeats 6 and 9, unit 6 repeats 0 and 9, unit 9 repeats 0 and 6 (r of unit
    0 + 0.2 unit 2 with unit 0 is about 0.98), unit 1 and 7 repeat each other."""
    g = torch.Generator().manual_seed(seed)
    a = torch.relu(torch.randn(n_images, 10, generator=g))
    a[:, 6] = a[:, 0]
    a[:, 7] = 3 * a[:, 1]
    a[:, 8] = 0.0
    a[:, 9] = a[:, 0] + 0.2 * a[:, 2]
    return a


def test_planted_duplicates_give_the_known_repeated_count_and_dead_units_no_nan():
    from underspec.metrics.redundancy import repeated_counts, repeated_groups, unit_correlations

    a = planted_layer()
    counts, excluded = repeated_counts(a)
    assert counts.tolist() == [2, 1, 0, 0, 0, 0, 2, 1, 0, 2]
    assert excluded.tolist() == [i == 8 for i in range(10)]
    r, _ = unit_correlations(a)
    assert torch.isfinite(r).all() and (r[8] == 0).all() and (r[:, 8] == 0).all()
    # groups among the 9 live units: {0, 6, 9}, {1, 7}, and 2, 3, 4, 5 alone
    assert repeated_groups(a).item() == 6
    # a unit the caller's policy calls dead (e.g. erased by L1) is excluded even if it varies
    counts, excluded = repeated_counts(a, dead=torch.tensor([False] * 9 + [True]))
    assert counts.tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 0, 0] and excluded[9]
    batched, _ = repeated_counts(torch.stack([a, planted_layer(seed=1)]))  # members batch
    assert batched.shape == (2, 10) and batched[0].tolist() == [2, 1, 0, 0, 0, 0, 2, 1, 0, 2]
    every_unit_dead, _ = repeated_counts(torch.zeros(50, 4))
    assert every_unit_dead.tolist() == [0, 0, 0, 0] and repeated_groups(torch.zeros(50, 4)).item() == 0


def test_the_rotation_null_keeps_the_covariance_and_breaks_the_copies():
    from underspec.metrics.redundancy import repeated_counts, rotated

    a = planted_layer(2000)
    q = rotated(a, torch.Generator().manual_seed(0))
    centred = a.double() - a.double().mean(0)
    mixed = q - q.mean(0)
    # the rotation keeps the covariance's eigenvalues, only the units' axes move
    torch.testing.assert_close(torch.linalg.eigvalsh(mixed.T @ mixed), torch.linalg.eigvalsh(centred.T @ centred))
    assert repeated_counts(q)[0].sum() != repeated_counts(a)[0].sum()


def test_parallel_units_counts_merges_and_flips_over_tolerances():
    from underspec.metrics.redundancy import parallel_units

    params = planted(1, torch.float64)
    w, b = params["w1"], params["b1"]
    w[11] = 0.0
    b[11] = 0.0
    w[4] = w[0] * (1 + 1e-3 * torch.randn(w.shape[1], generator=torch.Generator().manual_seed(3)))  # nearly parallel
    b[4] = b[0]
    out = parallel_units(torch.stack([w, w]), torch.stack([b, b]), tolerances=(1e-9, 1e-3))
    assert out["zero"].tolist() == [1, 1]
    assert out["merged"][0].tolist() == [2, 3]  # the two planted copies; at 1e-3 also the near copy
    assert out["flipped"][0].tolist() == [1, 1]  # unit 9 = -unit 3
    merged, removed = underspec.merge_parallel_units(params, tol=1e-9)
    assert removed == 3 and merged["w1"].shape[0] == 9  # two copies + the zero unit
    with pytest.raises(UnderspecError, match="tolerance on the cosine"):
        parallel_units(w, b, tolerances=(1.5,))

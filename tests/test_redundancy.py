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

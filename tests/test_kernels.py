"""The closed-form empirical NTK against torch.func's, at every depth; permutation invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call, jacrev

import underspec
from underspec import UnderspecError
from underspec.metrics.kernels import conjugate_kernel
from underspec.metrics.symmetry import permute
from underspec.training.model import PaperMLP, init_params, permutation_spec


def func_ntk(params: dict, x: torch.Tensor) -> torch.Tensor:
    """The NTK as PyTorch's tutorial computes it: the Jacobian of the outputs over every parameter, contracted."""
    depth = len(params) // 2 - 1
    widths = tuple(params[f"w{layer}"].shape[0] for layer in range(1, depth + 1))  # per layer: they may differ
    model = PaperMLP(params[f"w{depth + 1}"].shape[0], widths, params["w1"].shape[1], depth).double()
    names = dict(zip((n for n, _ in model.named_parameters()), params))
    weights = {n: params[k].double() for n, k in names.items()}

    def outputs(w, xs):
        return functional_call(model, w, (xs,))

    jac = jacrev(outputs)(weights, x)  # {name: (N, C, *shape)}
    return sum(torch.einsum("nc...,md...->nmcd", j, j) for j in jac.values())


@pytest.mark.parametrize("widths", [(6,), (6, 6), (6, 6, 6), (6,) * 5, (7, 3), (5, 9, 4), (3, 8, 2, 6)])
def test_the_closed_form_ntk_equals_torch_funcs(widths):
    """Every depth and every shape the engine trains (a width per layer, ``Grid(widths=...)``)."""
    params = init_params(0, 4, hidden=widths, n_inputs=9, depth=len(widths))
    params = {k: v + 0.1 * torch.randn(v.shape, generator=torch.Generator().manual_seed(1)) for k, v in params.items()}
    x = torch.randn(7, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ours = underspec.empirical_ntk(params, x)
    assert ours.shape == (7, 7, 4, 4)
    torch.testing.assert_close(ours, func_ntk(params, x), rtol=1e-6, atol=1e-6)


def test_the_kernel_of_a_permuted_network_is_its_own():
    params = init_params(3, 5, hidden=8, n_inputs=12, depth=2)
    x = torch.randn(6, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    perms = {"h1": torch.randperm(8, generator=torch.Generator().manual_seed(4)),
             "h2": torch.randperm(8, generator=torch.Generator().manual_seed(5))}
    moved = permute(params, perms, permutation_spec(2))
    torch.testing.assert_close(underspec.empirical_ntk(moved, x), underspec.empirical_ntk(params, x))
    torch.testing.assert_close(conjugate_kernel(moved, x), conjugate_kernel(params, x))


def test_a_stack_of_networks_is_refused():
    params = init_params(0, 3, hidden=4, n_inputs=5)
    with pytest.raises(UnderspecError, match="one network"):
        underspec.empirical_ntk({k: v[None] for k, v in params.items()}, torch.zeros(2, 5))
    with pytest.raises(UnderspecError, match="conjugate_kernel takes one network"):
        conjugate_kernel({k: v[None] for k, v in params.items()}, torch.zeros(2, 5))


def test_kernel_alignment_of_gram_matrices_is_linear_cka_and_of_a_permuted_network_is_1():
    from underspec.metrics.kernels import kernel_alignment
    from underspec.metrics.representations import linear_cka

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 5, generator=g, dtype=torch.float64), torch.randn(20, 7, generator=g, dtype=torch.float64)
    assert kernel_alignment(x @ x.T, y @ y.T) == pytest.approx(float(linear_cka(x, y)), abs=1e-12)
    assert kernel_alignment(x @ x.T, 3 * x @ x.T + 2.0) == pytest.approx(1.0, abs=1e-12)  # scale and a constant
    params = init_params(1, 4, hidden=8, n_inputs=12, depth=1)
    probe = torch.randn(6, 12, generator=g, dtype=torch.float64)
    moved = permute(params, {"h1": torch.randperm(8, generator=g)}, permutation_spec(1))
    for kernel in (underspec.empirical_ntk, conjugate_kernel):
        assert kernel_alignment(kernel(params, probe), kernel(moved, probe)) == pytest.approx(1.0, abs=1e-12)
    other = init_params(2, 4, hidden=8, n_inputs=12, depth=1)
    assert kernel_alignment(underspec.empirical_ntk(params, probe), underspec.empirical_ntk(other, probe)) < 1 - 1e-3


def test_kernel_alignment_known_value_and_movement():
    from underspec.metrics.kernels import kernel_alignment, kernel_movement

    a = torch.diag(torch.tensor([1.0, -1.0, 0.0])) @ torch.ones(3, 3) @ torch.diag(torch.tensor([1.0, -1.0, 0.0]))
    b = torch.eye(3)
    # a = v v^T with v = (1, -1, 0): its rows sum to 0, so centring keeps it; H b H = H (H = I - 11^T / 3);
    # <a, H> = |v|^2 - (v . 1)^2 / 3 = 2, |a| = |v|^2 = 2, |H| = sqrt(2): the alignment is 1 / sqrt(2)
    assert kernel_alignment(a, b) == pytest.approx(2 ** -0.5, abs=1e-12)
    assert kernel_movement(b, 2 * b) == pytest.approx(1.0) and kernel_movement(b, b) == 0.0
    for bad in (torch.zeros(3, 4), torch.zeros(2, 3, 3)):
        with pytest.raises(UnderspecError, match="one kernel"):
            kernel_alignment(bad, bad)
    with pytest.raises(UnderspecError, match="NaN or infinite"):
        kernel_alignment(torch.full((2, 2), float("nan")), b[:2, :2])
    assert np.isnan(kernel_alignment(torch.ones(3, 3), b))  # constant after centring

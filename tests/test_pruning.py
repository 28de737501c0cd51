"""Knock-out, prunability and compressibility on constructed networks where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from underspec import UnderspecError
from underspec.metrics.pruning import (FRACTIONS, agreement, compressibility, contribution_order, crossing, knock_out,
                                       masked_logits, random_orders, removal_masks, targeted_order)
from underspec.training.model import forward, init_params, preactivations


@pytest.mark.parametrize("depth", [1, 2])
def test_a_knock_out_removes_weights_bias_and_outgoing_weights_together(depth):
    params = init_params(0, 10, hidden=12, n_inputs=30, depth=depth)
    params = {k: v + 0.1 for k, v in params.items()}  # no zero biases: a removed bias must show
    keep = torch.ones(depth, 12, dtype=torch.bool)
    keep[0, 3] = keep[-1, 7] = False
    out = knock_out(params, keep)
    assert (out["w1"][3] == 0).all() and out["b1"][3] == 0 and (out["w2"][:, 3] == 0).all()
    assert (out[f"w{depth}"][7] == 0).all() and out[f"b{depth}"][7] == 0 and (out[f"w{depth + 1}"][:, 7] == 0).all()
    changed = sum(int((out[k] != params[k]).sum()) for k in params)
    assert changed == sum(int(((knock_out(params, keep)[k] == 0) & (params[k] != 0)).sum()) for k in params)
    x = torch.rand(40, 30, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(masked_logits(params, x, keep), forward(out, x), rtol=0, atol=1e-6)
    masks = torch.stack([keep, torch.ones_like(keep)])  # a batch of masks
    torch.testing.assert_close(masked_logits(params, x, masks)[1], forward(params, x), rtol=0, atol=1e-6)


def test_removal_masks_remove_the_first_units_of_each_order():
    orders = torch.stack([torch.arange(10), torch.arange(10).flip(0)])
    keep = removal_masks(orders, (0.0, 0.3, 0.5), depth=2)  # two layers of 5
    assert keep.shape == (2, 3, 2, 5)
    assert keep[:, 0].all() and (keep.flatten(-2).sum(-1) == torch.tensor([10, 7, 5])).all()
    assert not keep[0, 1, 0, :3].any() and keep[0, 1, 0, 3:].all()  # order 0..9: units 0-2 of layer 1 go first
    assert not keep[1, 1, 1, 2:].any()  # reversed: the last units of layer 2 go first
    with pytest.raises(UnderspecError, match="rise from 0"):
        removal_masks(orders, (0.2, 0.1))


def planted_network(h: int = 20, k: int = 12, seed: int = 0):
    """A width-h network whose first h - k units are essential (each the only route of one class: unit j
    responds to pixel j and feeds class j) and whose last k units output nothing (their outgoing weights are
    0)."""
    g = torch.Generator().manual_seed(seed)
    essential = h - k
    w1 = torch.zeros(h, essential)
    w1[:essential] = torch.eye(essential)
    w1[essential:] = torch.rand(k, essential, generator=g)  # busy, but their output goes nowhere
    w2 = torch.zeros(essential, h)
    w2[:, :essential] = torch.eye(essential)
    params = {"w1": w1, "b1": torch.zeros(h), "w2": w2, "b2": torch.zeros(essential)}
    x = torch.eye(essential).repeat(5, 1) + 0.01 * torch.rand(5 * essential, essential, generator=g)
    return params, x


def test_prunability_of_planted_zero_output_units_is_at_least_their_share():
    h, k = 20, 12
    params, x = planted_network(h, k)
    acts = [torch.relu(preactivations(params, x)[0])]
    order = contribution_order(params, acts)
    assert set(order[:k].tolist()) == set(range(h - k, h))  # the silent outputs go first
    members = {key: v[None] for key, v in params.items()}
    curve = agreement(members, x, removal_masks(order[None, None], FRACTIONS)[:, 0])  # (1, P)
    p, censored = crossing(FRACTIONS, curve)
    assert p[0] >= k / h and not censored[0]
    assert np.all(curve[0, np.asarray(FRACTIONS) <= k / h].numpy() == 1.0)
    # random orders: an essential unit removed changes its class's images; removing only planted units does not
    orders = random_orders(1, 4, h, torch.Generator().manual_seed(0))
    keep = removal_masks(orders, FRACTIONS)[0]  # (4, P, 1, H)
    curve = agreement(members, x, keep.reshape(1, -1, 1, h)).reshape(4, -1)
    essential_kept = keep[..., 0, : h - k].all(-1)
    assert (curve[essential_kept] == 1).all() and (curve[~essential_kept] < 1).all()


def test_crossing_interpolates_and_flags_censored_curves():
    p = (0.0, 0.5, 0.9)
    value, censored = crossing(p, np.array([[1.0, 0.9, 0.7], [1.0, 0.95, 0.85], [1.0, 0.6, 0.5]]))
    np.testing.assert_allclose(value, [0.5 + 0.4 * 0.5, 0.9, 0.5 * 0.2 / 0.4])
    assert censored.tolist() == [False, True, False]


def test_targeted_order_goes_by_decreasing_correlation():
    r_max = torch.tensor([[0.1, 0.9, 0.5], [0.95, 0.0, 0.5]])  # 2 layers x 3 units
    assert targeted_order(r_max).tolist() == [3, 1, 2, 5, 0, 4]


def test_compressibility_of_known_spectra():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    z = (z - z.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T  # exactly white
    # variances 0.02, 0.02, 0.46, 0.5: the two smallest hold 4%, the third would pass 5%: 2 + 0.01/0.46
    acts = z * torch.tensor([0.02, 0.02, 0.46, 0.5], dtype=torch.float64).sqrt()
    assert compressibility(acts).item() == pytest.approx((2 + 0.01 / 0.46) / 4, abs=1e-5)  # float32 products
    assert compressibility(z).item() == pytest.approx(0.2 / 4, abs=1e-5)  # float32 products  # equal variances: a fifth of one
    dead = torch.zeros(30, 5)
    assert compressibility(dead).item() == 1.0  # no variance: nothing to keep
    half = torch.cat([z[:, :2], torch.zeros(len(z), 2, dtype=z.dtype)], 1)  # two constant units hold nothing
    assert compressibility(half).item() == pytest.approx((2 + 0.1) / 4, abs=1e-5)  # float32 products

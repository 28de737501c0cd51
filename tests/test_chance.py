"""The nulls that fit each metric, and dead units: each tested on a world where the truth is known."""

from __future__ import annotations

import pytest
import torch

import underspec
from underspec import Grid, train
from underspec.metrics.chance import (null_fixed_similarity, null_structured, null_untrained, random_orthogonal,
                                      random_pairing, similarity_for)
from underspec.metrics.units import dead_units, distance_from_init


def test_the_untrained_null_is_the_papers_chance_level_from_2000_pairs():
    level = null_untrained(10)
    assert level["apc2"] == pytest.approx(0.599, abs=0.006) and level["apc1"] == pytest.approx(0.068, abs=0.003)
    assert null_untrained(3)["apc2"] == pytest.approx(0.953, abs=0.006)


def test_the_fixed_similarity_null_reproduces_pes_rise_with_c():
    """Pairs of one similarity at every C (b = permuted a + noise): PE still climbs with C, from about 0.11
    at C = 3 to about 0.75 at C = 10, while APC-1 (a first-layer metric) does not move."""
    pe = {c: null_fixed_similarity(1.0, c)["pe"] for c in (3, 5, 10)}
    assert pe[3] == pytest.approx(0.11, abs=0.03) and pe[10] == pytest.approx(0.75, abs=0.05)
    assert pe[3] < pe[5] < pe[10]
    apc1 = [null_fixed_similarity(1.0, c)["apc1"] for c in (3, 5, 10)]
    assert max(apc1) - min(apc1) < 0.01
    sigma = similarity_for("pe", pe[10], 10)
    assert sigma == pytest.approx(1.0, rel=0.15)  # the similarity is recovered from the metric


@pytest.fixture(scope="module")
def two_nets(mnist5k):
    run = train(Grid(seeds=(0, 42), epochs=3), mnist5k, progress=False)
    return run.member(0, 0.0, 10), run.member(42, 0.0, 10)


def test_the_structured_null_is_at_least_random_pairing_on_summed_gradients(two_nets):
    a, b = (m.grad_sum for m in two_nets)
    structured = null_structured(a, b, n_mix=32)
    pairing = random_pairing(a, b, n_pairings=512)
    untrained = null_untrained(10)
    for metric in ("apc1", "apc2"):
        assert structured[metric].item() >= pairing[metric].item(), metric
    # the summed gradients share the mean digit: both structure-aware levels are far above untrained weights
    assert pairing["apc1"].item() > untrained["apc1"] + 0.1
    assert structured["apc1"].item() > untrained["apc1"] + 0.1


def test_the_structured_null_is_the_same_in_chunks_of_mixings(two_nets, monkeypatch):
    """Wide layers take the mixings a few at a time (memory): the result is the mean over the same mixings."""
    from underspec.metrics import chance

    a, b = (m.final for m in two_nets)
    whole = null_structured(a, b, n_mix=8, seed=3)
    monkeypatch.setattr(chance, "MIX_ELEMENTS", 3 * 16 * 16)  # three mixings at a time: chunks of 3, 3, 2
    chunked = null_structured(a, b, n_mix=8, seed=3)
    assert whole.keys() == chunked.keys()
    for k in whole:
        torch.testing.assert_close(chunked[k], whole[k], rtol=0, atol=1e-12)


def test_random_rotations_are_orthogonal_and_keep_the_row_space(two_nets):
    q = random_orthogonal(16, (3,), torch.Generator().manual_seed(0))
    torch.testing.assert_close(q @ q.transpose(-1, -2), torch.eye(16, dtype=torch.float64).expand(3, -1, -1))
    w = two_nets[1].grad_sum["w1"].double()
    mixed = q @ w  # the same row space: projecting onto it changes nothing
    projector = torch.linalg.pinv(w) @ w
    torch.testing.assert_close(mixed @ projector, mixed, atol=1e-8, rtol=0)


def test_a_unit_oscillating_within_lr_lambda_of_zero_is_dead_and_a_live_one_is_not():
    lr, l1 = 0.01, 0.05
    g = torch.Generator().manual_seed(0)
    w1 = torch.randn(4, 784, generator=g) * 0.05  # live units
    w1[1] = (torch.rand(784, generator=g) * 2 - 1) * lr * l1  # within lr * lambda of 0 everywhere: erased
    w1[2, :783] = 0.0
    w1[2, 783] = 0.3  # one real weight keeps a unit alive
    assert dead_units(w1, lr=lr, l1=l1).tolist() == [False, True, False, False]
    assert not dead_units(w1, lr=lr, l1=0.0).any()  # without L1 no weight is "erased"
    x = torch.rand(10, 784)
    b1 = torch.zeros(4)
    w_silent = w1.clone()
    w_silent[3] = -w_silent[3].abs()  # negative weights on non-negative pixels: silent on every image
    assert dead_units(w_silent, lr=lr, l1=l1, b1=b1, x=x).tolist() == [False, True, False, True]


def test_compare_reports_the_papers_metrics_over_alive_units_with_the_dead_counted(mnist5k):
    run = train(Grid(seeds=(0, 42, 7), l1=(0.0, 0.05), n_classes=(2,), epochs=10), mnist5k, progress=False)
    table = underspec.compare(run, "all", data=mnist5k, null=None)
    dead = table[table.l1 == 0.05]
    assert (dead.dead_a + dead.dead_b).sum() > 0  # lambda 0.05 erases units
    assert (table[table.l1 == 0.0].dead_a == 0).all()
    row = dead.iloc[0]
    a, b = run.member(row.seed_a, 0.05, 2).final, run.member(row.seed_b, 0.05, 2).final
    alive_a = ~dead_units(a["w1"], lr=0.01, l1=0.05, b1=a["b1"], x=mnist5k.x_train)
    alive_b = ~dead_units(b["w1"], lr=0.01, l1=0.05, b1=b["b1"], x=mnist5k.x_train)
    expected = underspec.apc(underspec.match_units(a["w1"][alive_a], b["w1"][alive_b], policy="exclude"))
    assert row.apc1_alive == pytest.approx(expected.item(), abs=1e-12)
    assert row.dead_a == (~alive_a).sum().item()


def test_distance_from_init(mnist5k):
    run = train(Grid(seeds=(0,), l1=(0.0,), epochs=1), mnist5k, progress=False)
    table = distance_from_init(run)
    w, w0 = run.final["w1"][0].double(), run.init["w1"][0].double()
    assert table.rel_change.item() == pytest.approx(((w - w0).norm() / w0.norm()).item())
    cos = torch.nn.functional.cosine_similarity(w, w0, dim=-1).mean().item()
    assert table.init_cosine.item() == pytest.approx(cos) and 0.5 < cos < 1.0


def test_rotations_of_the_live_units_leave_the_dead_ones_in_place_and_are_haar():
    """``live_orthogonal``: orthogonal, the identity on dead units, no weight between live and dead ones; on the
    live units Haar (its entries have mean 0 and variance 1/k for k live units)."""
    from underspec.metrics.chance import live_orthogonal

    g = torch.Generator().manual_seed(0)
    live = torch.tensor([True, False, True, True, False, True])
    q = live_orthogonal(torch.randn(4000, 6, 6, generator=g, dtype=torch.float64), live)
    torch.testing.assert_close(q @ q.transpose(-1, -2), torch.eye(6, dtype=torch.float64).expand_as(q))
    dead = ~live
    torch.testing.assert_close(q[:, dead][:, :, dead], torch.eye(2, dtype=torch.float64).expand(4000, 2, 2),
                               rtol=0, atol=1e-12)  # the polar factor by an SVD: exact to rounding
    assert q[:, live][:, :, dead].abs().max() < 1e-12 and q[:, dead][:, :, live].abs().max() < 1e-12
    block = q[:, live][:, :, live]
    assert block.mean().abs() < 0.01 and (block.pow(2).mean() - 1 / 4).abs() < 0.01


def test_the_live_unit_nulls_keep_the_numbers_of_live_units(two_nets):
    """PE over k live units of unrelated networks is near chance for k units, far above 1/16 when few are
    alive; with every unit alive the live null is the paper's null. The structured null with live units mixes
    only b's live units: with b a copy of a, every unit alive, it is the plain structured null's value."""
    from underspec.metrics.chance import null_untrained_alive

    full, few = null_untrained_alive(10, 16, 16), null_untrained_alive(10, 4, 4)
    every = null_untrained(10)
    assert full["pe_alive"] == pytest.approx(every["pe"], abs=0.015)
    assert full["apc1_alive"] == pytest.approx(every["apc1"], abs=0.005)
    assert few["pe_alive"] > 0.15 and few["pe_alive"] > 2 * full["pe_alive"]
    assert all(v != v for v in null_untrained_alive(10, 0, 5).values())  # nothing alive: NaN, never an error
    a, b = (m.final for m in two_nets)
    alive = (torch.ones(16, dtype=torch.bool), torch.ones(16, dtype=torch.bool))
    both = null_structured(a, b, n_mix=64, seed=1, alive=alive)
    for k, tolerance in (("apc1", 0.005), ("apc2", 0.02), ("pe", 0.03)):
        assert both[f"{k}_alive"].item() == pytest.approx(both[k].item(), abs=tolerance), k
    half = (torch.arange(16) < 8, torch.arange(16) < 8)
    assert null_structured(a, b, n_mix=64, seed=1, alive=half)["pe_alive"].item() > both["pe"].item() + 0.03

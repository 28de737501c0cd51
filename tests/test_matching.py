"""Matching units and the paper's metrics (APC-1, APC-2, PE), the zero-variance policies, and chance levels."""

import numpy as np
import pytest
import torch

from underspec import (Grid, UnderspecError, apc, match_units, null_init, pair_metrics, random_pairing,
                       paper_pair_metrics, pe, permute_hidden, seed_pairs, train, unit_correlation)
from underspec.training.data import data_pixels
from underspec.metrics.matching import layer_units


@pytest.fixture(scope="module")
def nets(small):
    """Two seeds x C in (2, 3, 10), trained 2 epochs: {(seed, C): Member}."""
    run = train(Grid(seeds=(0, 42), n_classes=(2, 3, 10), epochs=2), small, progress=False)
    return {(s, c): run.member(s, 0.0, c) for s in (0, 42) for c in (2, 3, 10)}


def shuffled(net, seed):
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(seed))
    return permute_hidden(net, perm), perm


def test_a_random_permutation_of_a_trained_network_is_recovered_exactly(nets):
    a = nets[0, 10].final
    b, perm = shuffled(a, 7)
    for layer in (1, 2):
        for signed in (False, True):
            m = match_units(layer_units(a, layer), layer_units(b, layer), signed=signed)
            assert torch.equal(m.perm, perm.argsort())  # unit i of a sits at position perm^-1[i] in b
            assert apc(m).item() == pytest.approx(1.0, abs=1e-12)
    metrics = pair_metrics(a, b)
    for k in ("apc1", "apc2", "pe", "apc1_signed", "apc2_signed", "pe_signed", "apc2_w1perm"):
        assert metrics[k].item() == pytest.approx(1.0, abs=1e-12), k


def test_activation_matching_recovers_the_permutation_too(nets, small):
    a = nets[0, 10].final
    b, perm = shuffled(a, 8)
    x = small.x_test
    acts = [torch.relu(x @ p["w1"].T + p["b1"]) for p in (a, b)]
    metrics = pair_metrics(a, b, acts_a=acts[0], acts_b=acts[1])
    assert metrics["apc_act"].item() == pytest.approx(1.0, abs=1e-12)
    assert metrics["pe_act"].item() == 1.0  # the activation and weight matchings agree on every unit


@pytest.mark.parametrize("c", [2, 3, 10])
@pytest.mark.parametrize("record", ["final", "grad_sum"])
def test_paper_metrics_equal_the_papers_loops(nets, c, record):
    a, b = getattr(nets[0, c], record), getattr(nets[42, c], record)
    ref = paper_pair_metrics(a["w1"], b["w1"], a["w2"], b["w2"])
    ours = pair_metrics(a, b)
    m1 = match_units(a["w1"], b["w1"])
    m2 = match_units(a["w2"].T, b["w2"].T)
    np.testing.assert_array_equal(m1.perm.numpy(), ref["perm1"])
    np.testing.assert_array_equal(m2.perm.numpy(), ref["perm2"])
    for k in ("apc1", "apc2", "pe"):
        assert ours[k].item() == pytest.approx(ref[k], abs=1e-12), k
    assert ref["apc1"] < 0.99  # two seeds, not a copy: the test compares non-trivial values


def test_batched_pairs_equal_one_pair_at_a_time(nets):
    a = {k: torch.stack([nets[0, 10].final[k], nets[0, 10].grad_sum[k]]) for k in ("w1", "w2")}
    b = {k: torch.stack([nets[42, 10].final[k], nets[42, 10].grad_sum[k]]) for k in ("w1", "w2")}
    batch = pair_metrics(a, b)
    for i in range(2):
        one = pair_metrics({k: v[i] for k, v in a.items()}, {k: v[i] for k, v in b.items()})
        for k, v in one.items():
            assert batch[k][i].item() == pytest.approx(v.item(), abs=1e-12), k


def test_correlation_matches_numpy_and_is_exact_for_two_entries():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, 50, generator=g), torch.randn(3, 4, 50, generator=g)
    r, zero_a, zero_b = unit_correlation(a, b)
    assert r.shape == (3, 5, 4) and r.dtype == torch.float64 and not zero_a.any() and not zero_b.any()
    expected = np.corrcoef(a[1].double().numpy(), b[1].double().numpy())[:5, 5:]
    np.testing.assert_allclose(r[1].numpy(), expected, rtol=0, atol=1e-14)
    r2, _, _ = unit_correlation(torch.tensor([[0.1, 0.3], [0.2, 0.1]]), torch.tensor([[0.5, 0.7]]))
    assert r2.flatten().tolist() == [1.0, -1.0]  # exactly, as scipy.stats.pearsonr gives for two points


def test_signed_matching_does_not_pair_anticorrelated_units():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 30, generator=g)
    b = a.clone()
    b[2] = -b[2]  # unit 2 flipped: |r| = 1, but in a ReLU network it is not the same unit
    assert apc(match_units(a, b)).item() == pytest.approx(1.0)
    signed = match_units(a, b, signed=True)
    assert apc(signed).item() < 0.8
    assert signed.r[2].item() != pytest.approx(-1.0)  # not matched to its mirror image


def test_apc1_on_data_pixels_ignores_pixels_without_data(nets, small):
    mask = data_pixels(small.x_train)
    assert 0 < (~mask).sum() < 784
    a = nets[0, 10].final
    b = dict(a, w1=a["w1"].clone())
    b["w1"][:, ~mask] = torch.randn(16, int((~mask).sum()), generator=torch.Generator().manual_seed(2))
    metrics = pair_metrics(a, b, pixel_mask=mask)
    assert metrics["apc1"].item() < 0.999
    assert metrics["apc1_data"].item() == pytest.approx(1.0, abs=1e-12)


def test_apc2_under_the_w1_matching_uses_the_w1_permutation(nets):
    a = nets[0, 10].final
    b, _ = shuffled(a, 3)
    b = dict(b, w2=b["w2"][:, torch.randperm(16, generator=torch.Generator().manual_seed(4))])  # layer 2 scrambled
    metrics = pair_metrics(a, b)
    assert metrics["apc1"].item() == pytest.approx(1.0) and metrics["apc2"].item() == pytest.approx(1.0)
    assert metrics["pe"].item() < 0.5 and metrics["apc2_w1perm"].item() < 0.9


# Zero-variance units: 4 units of 10 entries; b = a with units in reverse order; unit 1 of a is constant.
def policy_pair():
    g = torch.Generator().manual_seed(5)
    a = {"w1": torch.randn(4, 10, generator=g), "w2": torch.randn(3, 4, generator=g)}
    a["w1"][1] = 0.5
    return a, {"w1": a["w1"].flip(0), "w2": a["w2"].flip(1)}


def test_policy_raise_names_the_unit():
    a, b = policy_pair()
    with pytest.raises(UnderspecError, match="zero-variance.*a unit 1.*b unit 2"):
        match_units(a["w1"], b["w1"], policy="raise")
    assert match_units(a["w2"].T, b["w2"].T, policy="raise").perm.tolist() == [3, 2, 1, 0]  # no such unit here


def test_policy_zero_scores_the_unit_as_unmatched():
    a, b = policy_pair()
    m1 = match_units(a["w1"], b["w1"], policy="zero")
    assert m1.valid.tolist() == [True, False, True, True]
    assert m1.perm[[0, 2, 3]].tolist() == [3, 1, 0]
    assert apc(m1).item() == pytest.approx(3 / 4)  # the constant unit adds 0, the denominator stays 4
    m2 = match_units(a["w2"].T, b["w2"].T, policy="zero")
    # the constant unit was matched (its partner is forced), yet it is never a PE agreement
    assert m1.perm[1] == m2.perm[1] == 2
    assert pe(m1, m2).item() == pytest.approx(3 / 4)
    metrics = pair_metrics(a, b, policy="zero")
    assert all(torch.isfinite(v).all() for v in metrics.values())
    assert metrics["zero_var_w1"].item() == 2 and metrics["zero_var_w2"].item() == 0


def test_policy_exclude_leaves_the_unit_out():
    a, b = policy_pair()
    m1 = match_units(a["w1"], b["w1"], policy="exclude")
    assert m1.perm.tolist() == [3, -1, 1, 0]
    assert apc(m1).item() == pytest.approx(1.0)  # averaged over the 3 units that have a correlation
    m2 = match_units(a["w2"].T, b["w2"].T, policy="exclude")
    assert pe(m1, m2).item() == pytest.approx(1.0)  # 3 agreements among 3 units valid in both
    dead = {"w1": torch.zeros(2, 10), "w2": torch.randn(3, 2)}
    assert torch.isnan(apc(match_units(dead["w1"], dead["w1"], policy="exclude")))  # nothing left to average


def test_unknown_policy_is_refused():
    with pytest.raises(UnderspecError, match="policy 'drop'.*raise, zero, exclude"):
        match_units(torch.randn(3, 5), torch.randn(3, 5), policy="drop")


def test_seed_pairs_views():
    seeds = (0, 42, 1337, 3213, 9999, 5783, 1023)
    assert seed_pairs(seeds, "reference") == [(0, s) for s in seeds[1:]]
    pairs = seed_pairs(seeds, "all")
    assert len(pairs) == 21 and pairs[:6] == seed_pairs(seeds) and pairs[-1] == (5783, 1023)
    with pytest.raises(UnderspecError, match="at least 2 seeds"):
        seed_pairs((0,), "all")


def test_chance_levels_of_unrelated_networks():
    levels = {c: null_init(c) for c in (2, 3, 5, 10)}
    assert levels[2]["apc2"] == 1.0  # a Pearson r over two numbers is always +-1
    for c, expected in ((3, 0.953), (5, 0.818), (10, 0.599)):
        assert levels[c]["apc2"] == pytest.approx(expected, abs=0.01), c
    for c, level in levels.items():
        assert level["pe"] == pytest.approx(1 / 16, abs=0.015), c
        assert 0.06 < level["apc1"] < 0.08, c
    assert null_init(10) == levels[10]  # deterministic (and cached)
    assert null_init(10, seed=1)["apc2"] == pytest.approx(levels[10]["apc2"], abs=0.01)


def test_random_pairing_gives_the_mean_correlation_over_all_unit_pairs(nets):
    a, b = nets[0, 10].grad_sum, nets[42, 10].grad_sum
    level = random_pairing(a, b, n_pairings=4096)
    r1, _, _ = unit_correlation(a["w1"], b["w1"])
    r2, _, _ = unit_correlation(a["w2"].T, b["w2"].T)
    assert level["apc1"].item() == pytest.approx(r1.abs().mean().item(), abs=0.005)
    assert level["apc1_signed"].item() == pytest.approx(r1.mean().item(), abs=0.005)
    assert level["apc2"].item() == pytest.approx(r2.abs().mean().item(), abs=0.01)
    assert level["pe"].item() == pytest.approx(1 / 16, abs=0.01)
    matched = pair_metrics(a, b)
    assert level["pe"] < matched["pe"] and level["apc1"] < matched["apc1"]
    assert level["apc1"] > 0.3  # summed gradients of unrelated units correlate: they share the average digit
    assert random_pairing(a, b, n_pairings=64)["apc1"].item() == random_pairing(a, b, n_pairings=64)["apc1"].item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_metrics_on_the_gpu_equal_the_cpu(nets):
    a, b = nets[0, 10].final, nets[42, 10].final
    cpu = pair_metrics(a, b)
    gpu = pair_metrics({k: v.cuda() for k, v in a.items()}, {k: v.cuda() for k, v in b.items()})
    for k, v in cpu.items():
        assert gpu[k].device.type == "cuda"
        assert gpu[k].item() == pytest.approx(v.item(), abs=1e-12), k

"""Per-layer metrics of deeper networks: the paper's metrics at depth 1, every layer's permutation recovered
from activations at depth 3, and the nulls from the same pair before training."""

import pytest
import torch

from underspec import Grid, linear_cka, train
from underspec.metrics.layers import LAYER_METRICS, activation_alignment, layer_metrics, layer_similarity
from underspec.metrics.matching import pair_metrics
from underspec.metrics.symmetry import permute
from underspec.training.model import permutation_spec, preactivations


def double(params):
    return {k: v.double() for k, v in params.items()}


def test_at_depth_one_the_layer_metrics_are_the_papers(small):
    run = train(Grid(seeds=(0, 42), epochs=2), small, progress=False, probe_size=10)
    a, b = (double(run.member(s, 0.0, 10).final) for s in (0, 42))
    x = small.x_test[:60].double()
    layer = layer_metrics(a, b, x)
    acts = [torch.relu(preactivations(p, x)[0]) for p in (a, b)]
    paper = pair_metrics(a, b, acts_a=acts[0], acts_b=acts[1])
    for ours, theirs in (("apc_in", "apc1"), ("apc_out", "apc2"), ("pe", "pe"), ("apc_act", "apc_act")):
        assert layer[ours].shape == (1,) and layer[ours].item() == pytest.approx(paper[theirs].item(), abs=1e-12)
    assert layer["layer_cka"].item() == pytest.approx(linear_cka(*(preactivations(p, x)[0] for p in (a, b))).item())


def test_every_hidden_layer_of_a_deep_network_is_recovered_from_its_activations(small):
    """A random permutation of each of three hidden layers: the activation matching finds all three, and the
    permuted copy scores 1 on every weight metric of every layer."""
    run = train(Grid(hidden=16, depth=3, epochs=2), small, progress=False, probe_size=10)
    a = double(run.member(0, 0.0, 10).final)
    spec = permutation_spec(3)
    g = torch.Generator().manual_seed(3)
    b = permute(a, {layer: torch.randperm(16, generator=g) for layer in spec}, spec)
    x = small.x_test[:100].double()
    found = activation_alignment(a, b, x)
    restored = permute(b, found, spec)
    assert all(torch.equal(restored[k], a[k]) for k in a)
    metrics = layer_metrics(a, b, x)
    for metric in ("apc_in", "apc_out", "pe"):
        assert torch.allclose(metrics[metric], torch.ones(3, dtype=torch.float64)), metric


def test_layer_similarity_measures_every_pair_and_layer_beside_the_untrained_pair(small):
    run = train(Grid(seeds=(0, 1, 2), hidden=8, depth=2, epochs=2), small, progress=False, probe_size=10)
    table = layer_similarity(run, small, probe_size=50)
    assert list(zip(table.seed_a, table.seed_b, table.layer)) == [
        (0, 1, 1), (0, 1, 2), (0, 2, 1), (0, 2, 2), (1, 2, 1), (1, 2, 2)]
    x = small.x_test[:50].double()
    row = table.iloc[3]  # pair (0, 2), layer 2
    for record, suffix in (("final", ""), ("init", "_null")):
        a, b = (double(getattr(run.member(s, 0.0, 10), record)) for s in (0, 2))
        expected = layer_metrics(a, b, x)
        for metric in LAYER_METRICS:
            assert row[metric + suffix] == pytest.approx(expected[metric][1].item(), abs=1e-12), metric + suffix

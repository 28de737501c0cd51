"""Networks with several hidden layers: the generalised constructor, the engine against the generalised loop,
the run format, and the permutation symmetry of every hidden layer."""

import math

import pytest
import torch
from torch import nn

import underspec
from underspec import Grid, UnderspecError, reference_train, train
from underspec.metrics.matching import weight_matching
from underspec.metrics.symmetry import permute
from underspec.training.model import init_params, param_names, permutation_spec

from test_engine import max_difference


def test_the_constructor_creates_every_layer_then_redraws_every_weight_in_order():
    """Written out by hand: the paper's constructor, generalised (at depth 1 it is the paper's own, which
    test_engine checks against PaperMLP under torch.manual_seed)."""
    torch.manual_seed(5)
    layers = [nn.Linear(20, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 4)]
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight, gain=math.sqrt(2))
    expected = [t for layer in layers for t in (layer.weight.detach(), torch.zeros(layer.out_features))]
    got = init_params(5, 4, hidden=8, n_inputs=20, depth=3)
    assert list(got) == list(param_names(3)) == ["w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4"]
    assert all(torch.equal(g, e) for g, e in zip(got.values(), expected))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("depth, knobs", [
    (2, dict()), (3, dict(momentum=0.9)), (2, dict(optimizer="adam", lr=0.001, weight_decay=0.01)),
    (2, dict(class_mode="subset"))])
def test_deep_members_equal_the_reference_loop(small, sparse, depth, knobs):
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(3, 10), hidden=8, depth=depth, epochs=2, **knobs)
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=50, snapshots=True, embeddings=True,
                sparse=sparse)
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, hidden=8, depth=depth, epochs=2, dtype=torch.float64,
                              probe_size=50, **knobs)
        member = run.member(seed, l1, c)
        assert list(member.final) == list(param_names(depth))
        assert member.final[f"w{depth + 1}"].shape == (c, 8)
        assert member.embeddings["layers"].shape == (3, depth, 50, 8)  # every hidden layer, every epoch
        assert torch.equal(run.layer_embeddings(depth)[run.index(seed, l1, c)], member.embeddings["layers"][:, -1])
        assert max_difference(member, ref) < 1e-10, (seed, l1, c)


def test_deep_members_in_float32(small):
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.005), n_classes=(10,), hidden=32, depth=2, epochs=1)
    run = train(grid, small, progress=False, probe_size=50, snapshots=True, embeddings=True)
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, hidden=32, depth=2, epochs=1, probe_size=50)
        assert max_difference(run.member(seed, l1, c), ref) < 1e-5, (seed, l1, c)


def test_a_deep_run_saves_loads_and_refuses_the_one_layer_metrics(small, tmp_path):
    run = train(Grid(seeds=(0, 1), hidden=8, depth=2, epochs=1), small, progress=False, probe_size=10)
    loaded = underspec.load_run(run.save(tmp_path / "run"))
    assert all(torch.equal(loaded.final[k], run.final[k]) for k in param_names(2))
    assert torch.equal(loaded.deeper_embeddings, run.deeper_embeddings) and run.deeper_embeddings.shape == (2, 2, 1, 10, 8)
    with pytest.raises(UnderspecError, match=r"layer must be a hidden layer 1\.\.2"):
        run.layer_embeddings(3)
    assert loaded.stack(0.0, 10)["w3"].shape == (2, 10, 8)
    with pytest.raises(UnderspecError, match=r"has 2: use underspec\.metrics\.layers\.layer_similarity"):
        underspec.compare(run)


def test_every_hidden_layer_of_a_deep_network_permutes_and_is_recovered(small):
    """A random permutation of each of three hidden layers keeps the function, and weight matching (coordinate
    descent over the layers) recovers all three exactly."""
    run = train(Grid(hidden=16, depth=3, epochs=1), small, progress=False, probe_size=10)
    a = run.member(0, 0.0, 10).final
    g = torch.Generator().manual_seed(0)
    perms = {layer: torch.randperm(16, generator=g) for layer in ("h1", "h2", "h3")}
    spec = permutation_spec(3)
    b = permute(a, perms, spec)
    x = small.x_test[:50]
    assert torch.allclose(underspec.forward(a, x), underspec.forward(b, x), atol=1e-5)
    assert not torch.equal(a["w2"], b["w2"])
    found = weight_matching(a, b, spec=spec)
    restored = permute(b, found, spec)
    assert all(torch.equal(restored[k], a[k]) for k in a)


def test_bad_depth_is_refused():
    for bad in (0, -1, "two"):
        with pytest.raises(UnderspecError, match="depth"):
            Grid(depth=bad)

"""Per-layer widths (``Grid(widths=(64, 32, 16))``): the generalised constructor, the engine against the
generalised paper loop in float64, a list of shapes as an axis, the run format, and the per-layer metrics."""

import math

import pytest
import torch
from torch import nn

import underspec
from underspec import Grid, UnderspecError, reference_train, train
from underspec.metrics.layers import layer_similarity
from underspec.metrics.seed_similarity import seed_similarity
from underspec.training.memory import n_parameters
from underspec.training.model import init_params, param_names

SHAPE = (24, 12, 6)


def differences(member, ref) -> float:
    """Largest absolute difference over every record of two Members whose hidden layers differ in width."""
    diffs = [(getattr(member, r)[k] - getattr(ref, r)[k]).abs().max().item()
             for r in ("init", "final", "grad_sum") for k in ref.init]
    diffs += [(member.snapshots[k] - ref.snapshots[k]).abs().max().item() for k in ref.init]
    assert isinstance(member.embeddings["layers"], list) and len(member.embeddings["layers"]) == len(SHAPE)
    diffs += [(a - b).abs().max().item() for a, b in zip(member.embeddings["layers"], ref.embeddings["layers"])]
    columns = ["train_loss", "train_acc", "test_loss", "test_acc"]
    diffs.append((member.history[columns] - ref.history[columns]).abs().to_numpy().max())
    return max(diffs)


def test_the_constructor_with_per_layer_widths_creates_every_layer_then_redraws_every_weight_in_order():
    """PROTOCOL section 5's construction rule with a shape of its own per layer, written out by hand."""
    torch.manual_seed(3)
    layers = [nn.Linear(20, 8), nn.Linear(8, 5), nn.Linear(5, 3), nn.Linear(3, 4)]
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight, gain=math.sqrt(2))
    expected = [t for layer in layers for t in (layer.weight.detach(), torch.zeros(layer.out_features))]
    got = init_params(3, 4, hidden=(8, 5, 3), n_inputs=20)
    assert list(got) == list(param_names(3))
    assert all(torch.equal(g, e) for g, e in zip(got.values(), expected))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("knobs", [dict(), dict(momentum=0.9), dict(optimizer="adam", lr=0.001, weight_decay=0.01),
                                   dict(class_mode="subset")], ids=["sgd", "momentum", "adam", "subset"])
def test_members_with_per_layer_widths_equal_the_generalised_loop_in_float64(small, sparse, knobs):
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(3, 10), widths=SHAPE, epochs=2, **knobs)
    assert (grid.hidden, grid.depth, grid.layer_widths()) == (24, 3, SHAPE)
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=40, snapshots=True, embeddings=True,
                sparse=sparse)
    for seed, l1, c in grid.members():
        ref = reference_train(seed, l1, c, small, widths=SHAPE, epochs=2, dtype=torch.float64, probe_size=40, **knobs)
        member = run.member(seed, l1, c)
        assert [tuple(member.final[f"w{layer}"].shape) for layer in (1, 2, 3, 4)] == [(24, 784), (12, 24), (6, 12),
                                                                                     (c, 6)]
        assert differences(member, ref) < 1e-10, (seed, l1, c)


def test_a_constant_shape_trains_as_hidden_and_depth_bit_for_bit(small):
    a = train(Grid(seeds=(0, 1), widths=(16, 16), epochs=1), small, progress=False, probe_size=10)
    b = train(Grid(seeds=(0, 1), hidden=16, depth=2, epochs=1), small, progress=False, probe_size=10)
    assert all(torch.equal(a.final[k], b.final[k]) for k in b.final)
    assert torch.equal(a.deeper_embeddings, b.deeper_embeddings)


def test_a_list_of_shapes_is_an_axis_whose_parts_train_as_alone_and_save(small, tmp_path):
    grid = Grid(seeds=(0, 1), widths=[(16, 8), (8, 16)], epochs=1)
    assert grid.axes() == ("widths",) and [p.layer_widths() for p in grid.parts()] == [(16, 8), (8, 16)]
    run = train(grid, small, progress=False, probe_size=10)
    alone = train(Grid(seeds=(0, 1), widths=(8, 16), epochs=1), small, progress=False, probe_size=10)
    member = run.member(seed=1, widths=(8, 16))
    assert member.settings == {"widths": "8-16"}
    assert all(torch.equal(member.final[k], alone.member(1).final[k]) for k in member.final)
    loaded = underspec.load_run(run.save(tmp_path / "run"))
    part = loaded.part(widths="8-16")
    assert isinstance(part.deeper_embeddings, list) and part.layer_embeddings(2).shape == (2, 2, 10, 16)
    assert set(run.history.widths) == {"16-8", "8-16"}


def test_every_spelling_of_a_shape_and_the_refusals():
    assert Grid(widths="64-32-16") == Grid(widths=(64, 32, 16)) == Grid(widths=[64, 32, 16])
    assert Grid(widths=(64, 32, 16)).widths == "64-32-16"
    assert Grid(widths="64-32-16 64-64-64").widths == ("64-32-16", "64-64-64")
    assert Grid.from_dict(Grid(widths=(64, 32)).to_dict()) == Grid(widths=(64, 32))
    for bad, message in [("64-0", "every width"), ("64-x", "not a network shape"), ((64, 32.5), "not a network"),
                         ([], "the list is empty"), ("8-8 8-8", "duplicate shape")]:
        with pytest.raises(UnderspecError, match=message):
            Grid(widths=bad)
    with pytest.raises(UnderspecError, match="give widths alone"):
        Grid(widths=(64, 32), hidden=8)
    with pytest.raises(UnderspecError, match="not both"):
        Grid(widths=(64, 32), hidden=[8, 16])


def test_the_memory_plan_counts_a_funnel_exactly(small):
    grid = Grid(widths=(24, 12, 6), n_classes=(4,))
    net = init_params(0, 4, hidden=(24, 12, 6), n_inputs=784)
    assert n_parameters(grid, 784) == sum(p.numel() for p in net.values())


def test_the_seed_similarity_and_the_layer_metrics_measure_a_funnel(small):
    run = train(Grid(seeds=(0, 1, 2), widths=(24, 12, 6), epochs=1), small, progress=False, probe_size=10)
    pairs = seed_similarity(run, small, probe_size=50)
    assert len(pairs) == 3 and pairs[["cka", "cka_last", "barrier", "disagreement"]].notna().all().all()
    layers = layer_similarity(run, small, probe_size=50)
    assert sorted(set(layers.layer)) == [1, 2, 3] and layers[["apc_in", "apc_out", "pe", "layer_cka"]].notna().all().all()

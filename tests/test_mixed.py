"""Mixed grids: every knob may be an axis (width, depth, optimizer, learning rate, momentum, weight decay,
batch size, init and data-order seeds); the grid is the product, trained in one call, and every member is the
paper's loop for its own settings."""

import random

import pandas as pd
import pytest
import torch

import underspec
from underspec import Grid, UnderspecError, reference_train, train
from underspec.cli import main
from underspec.metrics.layers import layer_similarity
from underspec.metrics.seed_similarity import seed_similarity, similarity_estimates
from underspec.report.widgets import training_explorer
from underspec.training.memory import memory_plan
from underspec.training.run import MixedRun

from test_engine import max_difference

AXES = dict(seeds=(0, 1), order_seed=(5, 6), l1=(0.01,), n_classes=(2, 10), hidden=(8, 32), depth=(1, 2),
            optimizer=("sgd", "adam", "adamw"), momentum=(0.0, 0.9), lr=(0.01, 0.003), batch_size=(32, 64))


def _settings(run: MixedRun, i: int) -> dict:
    return dict(zip(run.grid.member_names(), run.grid.members()[i]))


def _loop(small, run: MixedRun, i: int, **kwargs):
    """The paper's loop for member ``i`` of ``run``, with every setting of its part."""
    seed, l1, c = run.grid.members()[i][:3]
    part = run.parts[i // len(run.parts[0].grid)].grid
    knobs = ("hidden", "depth", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "init_seed",
             "order_seed", "epochs", "class_mode", "stop_loss")
    return reference_train(seed, l1, c, small, probe_size=40, **{k: getattr(part, k) for k in knobs}, **kwargs)


@pytest.mark.parametrize("class_mode", ["relabel", "subset"])
def test_every_part_of_a_mixed_grid_equals_the_reference_loop_in_float64(small, class_mode):
    """2 init x 2 order seeds x widths {8, 32} x depths {1, 2} x SGD (momentum 0, 0.9), Adam, AdamW x 2
    learning rates x batch sizes {32, 64} x C {2, 10}: 512 networks in one call. One member of each of at least
    16 of the 128 parts, drawn at random and covering every value of every axis, is checked against the loop over
    2 epochs (all 128 would make this the suite's longest test)."""
    grid = Grid(**AXES, epochs=2, class_mode=class_mode)
    assert len(grid.parts()) == 2 * 2 * 2 * 2 * 4 * 2 and len(grid) == 4 * len(grid.parts())
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=40, snapshots=True, embeddings=True)
    assert isinstance(run, MixedRun) and len(run.members) == len(grid)
    pick = random.Random(0)
    size, parts = len(grid.parts()[0]), grid.parts()
    order = pick.sample(range(len(parts)), len(parts))
    seen, checked = set(), []
    for p in order:  # parts in a random order: first those that bring a value not yet checked, then more
        values = {(axis, getattr(parts[p], axis)) for axis in grid.axes()}
        if not values <= seen or len(checked) < 16:
            checked.append(p)
            seen |= values
    assert seen == {(axis, value) for axis in grid.axes() for value in getattr(grid, axis)}
    for p in sorted(checked):
        i = p * size + pick.randrange(size)
        settings = _settings(run, i)
        ref = _loop(small, run, i, dtype=torch.float64)
        member = run.member(**settings)
        assert member.settings == {k: settings[k] for k in grid.axes()}
        assert max_difference(member, ref) < 1e-10, settings


def test_a_mixed_grid_in_float32_equals_the_reference_loop(small):
    grid = Grid(**{**AXES, "seeds": (0,), "order_seed": (5,)}, epochs=1)
    run = train(grid, small, progress=False, probe_size=40, snapshots=True, embeddings=True)
    for i in range(0, len(grid), 3):
        settings = _settings(run, i)
        assert max_difference(run.member(**settings), _loop(small, run, i)) < 1e-5, settings


def test_schedules_and_class_modes_as_axes_equal_the_reference_loop(small):
    """Epochs, the stopping rule (a threshold every member passes after its first epoch, and none) and the
    class mode as axes: every member against the loop, in float64."""
    grid = Grid(seeds=(0, 1), n_classes=(3, 10), epochs=(1, 2), stop_loss=(None, 10.0), class_mode=("relabel", "subset"))
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=40, snapshots=True, embeddings=True)
    assert len(run.parts) == 8
    for i in range(len(grid)):
        ref = _loop(small, run, i, dtype=torch.float64)
        member = run.member(**_settings(run, i))
        assert member.stopped == ref.stopped == (1 if member.settings["stop_loss"] else None)
        if member.stopped is None:
            assert max_difference(member, ref) < 1e-10, _settings(run, i)
        else:  # the loop's records end at the stop; the parameters and history up to it must agree
            for record in ("init", "final", "grad_sum"):
                assert all((getattr(member, record)[k] - getattr(ref, record)[k]).abs().max() < 1e-10 for k in ref.init)
            cut = member.history.iloc[:member.stopped].reset_index(drop=True)
            assert (cut.test_acc - ref.history.test_acc).abs().max() < 1e-10


def test_a_part_trained_in_a_mixed_grid_equals_it_trained_alone(small):
    """Learning rates and momenta share a program (per-member settings), widths do not: either way a member
    is the network its own uniform grid gives."""
    grid = Grid(seeds=(0, 3), l1=(0.0, 0.01), n_classes=(3, 10), hidden=(8, 16), lr=(0.01, 0.1),
                momentum=(0.0, 0.5), epochs=2)
    run = train(grid, small, dtype=torch.float64, progress=False, probe_size=20)
    for part, alone in zip(run.parts, grid.parts()):
        uniform = train(alone, small, dtype=torch.float64, progress=False, probe_size=20)
        assert part.grid == alone
        for name in uniform.final:
            assert (part.final[name] - uniform.final[name]).abs().max() < 1e-12
        assert (part.history.test_acc - uniform.history.test_acc).abs().max() < 1e-12


def test_a_mixed_run_is_addressed_by_any_axes_and_saves_and_loads(small, tmp_path):
    grid = Grid(seeds=(0, 1), hidden=(8, 16), optimizer=("sgd", "adam"), lr="0.01 0.001", epochs=1)
    run = train(grid, small, progress=False, probe_size=10)
    assert grid.axes() == ("hidden", "lr", "optimizer") and len(run.parts) == 8
    table = run.members
    assert list(table.columns) == ["hidden", "lr", "optimizer", "seed", "l1", "n_classes"]
    assert len(table) == 16 and set(run.history.columns) >= {"hidden", "lr", "optimizer", "test_acc"}
    member = run.member(seed=1, hidden=16, optimizer="adam", lr=0.001)
    assert member.final["w1"].shape == (16, 784) and member.seed == 1
    alone = run.part(hidden=16, optimizer="adam", lr=0.001).member(seed=1)
    assert torch.equal(member.final["w1"], alone.final["w1"])
    with pytest.raises(UnderspecError, match=r"4 members have seed=1, hidden=16: give more of .*lr"):
        run.member(seed=1, hidden=16)
    with pytest.raises(UnderspecError, match=r"no member hidden=12 in this run: it has .*hidden \[8, 16\]"):
        run.member(hidden=12)
    with pytest.raises(UnderspecError, match="'width' is not an axis of this run"):
        run.member(width=8)
    with pytest.raises(UnderspecError, match=r"an explorer takes a run of one width.*run\.part\(hidden=8"):
        training_explorer(run)

    loaded = underspec.load_run(run.save(tmp_path / "run"))
    assert isinstance(loaded, MixedRun) and loaded.grid == grid
    assert all(torch.equal(a.final["w1"], b.final["w1"]) for a, b in zip(loaded.parts, run.parts))
    assert loaded.members.equals(table)


def test_a_mixed_run_with_an_altered_part_is_refused(small, tmp_path):
    run = train(Grid(hidden=(4, 8), epochs=1), small, progress=False, probe_size=10)
    folder = run.save(tmp_path / "run")
    header = folder / "part-001" / "run.json"
    header.write_text(header.read_text().replace('"hidden": 8', '"hidden": 4'))
    with pytest.raises(UnderspecError, match="part-001 does not match the checksum"):
        underspec.load_run(folder)


def test_an_old_run_format_asks_to_retrain(small, tmp_path):
    folder = train(Grid(epochs=1), small, progress=False, probe_size=10).save(tmp_path / "run")
    header = folder / "run.json"
    header.write_text(header.read_text().replace('"version": 3', '"version": 2'))
    with pytest.raises(UnderspecError, match="format version 2, this underspec reads 3: retrain the run"):
        underspec.load_run(folder)


def test_the_parts_of_a_mixed_grid():
    grid = Grid(optimizer=("sgd", "adam"), momentum=(0.0, 0.9))
    assert [(p.optimizer, p.momentum) for p in grid.parts()] == [("sgd", 0.0), ("sgd", 0.9), ("adam", 0.0)]
    assert Grid(optimizer=("sgd", "adam"), momentum=0.9).parts()[1].momentum == 0.0
    assert Grid.paper().parts() == [Grid.paper()] and Grid.paper().axes() == ()
    assert Grid(hidden="16 64").hidden == (16, 64) and Grid(hidden="16").hidden == 16
    assert Grid(hidden=[16, 64]).to_dict(science_only=True)["hidden"] == [16, 64]


@pytest.mark.parametrize("knobs, message", [
    (dict(hidden=(16, 0)), "hidden must be a positive integer"),
    (dict(depth="1 -2"), "depth"),
    (dict(lr=(0.01, -1)), "the learning rate must be > 0"),
    (dict(optimizer=("sgd", "rmsprop")), "unknown optimizer 'rmsprop'"),
    (dict(momentum=(0, 1)), r"momentum must be in \[0, 1\)"),
    (dict(optimizer=("adam", "adamw"), momentum=(0, 0.9)), "momentum is SGD's"),
    (dict(weight_decay=(0, float("nan"))), "weight decay must be finite"),
    (dict(hidden=(16, 16)), "duplicate hidden"),
    (dict(hidden=[]), "the seed|hidden"),
    (dict(init_seed=(1, 2), order_seed=3), "init_seed and order_seed together"),
    (dict(batch_size=(32, 64), steps=100), "a steps budget needs one batch size"),
])
def test_bad_axes_are_refused(knobs, message):
    with pytest.raises(UnderspecError, match=message):
        Grid(**knobs)


def test_compare_summarize_and_seed_similarity_carry_the_axes_as_columns(small):
    run = train(Grid(seeds=(0, 1, 2), hidden=(8, 16), lr=(0.01, 0.05), epochs=1), small, progress=False,
                probe_size=20)
    table = underspec.compare(run, "all", null=None)
    part = run.part(hidden=16, lr=0.05)
    alone = underspec.compare(part, "all", null=None)
    rows = table[(table.hidden == 16) & (table.lr == 0.05)].drop(columns=["hidden", "lr"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, alone)
    summary = underspec.summarize(table)
    assert len(summary) == 4 * len(underspec.summarize(alone))
    assert list(summary.columns[:5]) == ["target", "hidden", "lr", "l1", "n_classes"]

    similarity = seed_similarity(run, small, probe_size=20)
    assert list(similarity.columns[:4]) == ["hidden", "lr", "seed_a", "seed_b"] and len(similarity) == 4 * 3
    estimates = similarity_estimates(similarity)
    mine = estimates[(estimates.hidden == 8) & (estimates.lr == 0.01)].drop(columns=["hidden", "lr"])
    expected = similarity_estimates(seed_similarity(run.part(hidden=8, lr=0.01), small, probe_size=20))
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), expected)


def test_the_cli_trains_a_mixed_grid_and_shows_every_part(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--seeds", "0", "1", "--hidden", "8", "16", "--optimizer", "sgd", "adam", "--lr", "0.01",
                 "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "8 networks, 1 epochs" in text and "hidden optimizer" in text.replace("  ", " ")
    loaded = underspec.load_run(out)
    assert loaded.grid.hidden == (8, 16) and loaded.grid.optimizer == ("sgd", "adam")
    assert main(["train", "--hidden", "8", "0", "--epochs", "1", "--no-progress"]) == 2
    assert "hidden must be a positive integer" in capsys.readouterr().err


def test_a_mixed_grid_over_its_memory_budget_trains_in_blocks_and_gives_the_same_networks(small):
    """The budget counts the records of every part (all are kept to the end): a budget that leaves room for
    one member of the widest group at a time splits the groups, and every member is the one trained at once,
    to float64 rounding (1e-12): a block's products have other shapes than the whole group's, and with several
    threads torch splits their sums by shape (bit for bit at one thread only)."""
    grid = Grid(seeds=(0, 1, 2), hidden=(8, 16), lr=(0.01, 0.1), epochs=1)
    kw = dict(dtype=torch.float64, progress=False, probe_size=20, snapshots=True, embeddings=True, sparse=True)
    whole = train(grid, small, **kw)
    plans = [memory_plan(part, small.x_train.shape[1], len(small.y_test), probe_size=20, snapshots=True,
                         embeddings=True, itemsize=8) for part in grid.parts()]
    records = sum(plan.records for plan in plans)
    wide = plans[-1]
    run = train(grid, small, memory_budget=records + wide.per_member + wide.per_stream, **kw)
    assert whole.parts[-1].meta["blocks"] == 1 and run.parts[-1].meta["blocks"] == 6  # one member at a time
    for a, b in zip(run.parts, whole.parts):
        for name in ("init", "final", "grad_sum", "snapshots"):
            assert all((getattr(a, name)[k] - v).abs().max() <= 1e-12 for k, v in getattr(b, name).items())
        numbers = list(a.history.columns[4:])
        assert (a.history[numbers] - b.history[numbers]).abs().to_numpy().max() <= 1e-12  # the norm's sum: ulps
    with pytest.raises(UnderspecError, match=r"records of .* for 12 networks"):
        train(grid, small, memory_budget=records, **kw)


def test_a_depth_axis_is_compared_layer_by_layer(small):
    run = train(Grid(seeds=(0, 1, 2), hidden=8, depth=(1, 2), epochs=1), small, progress=False, probe_size=10)
    table = layer_similarity(run, small, probe_size=30)
    assert list(table.columns[:4]) == ["depth", "seed_a", "seed_b", "layer"]
    assert table.groupby("depth").layer.max().to_dict() == {1: 1, 2: 2} and len(table) == 3 * (1 + 2)
    deep = table[table.depth == 2].drop(columns="depth").reset_index(drop=True)
    pd.testing.assert_frame_equal(deep, layer_similarity(run.part(depth=2), small, probe_size=30))
    with pytest.raises(UnderspecError, match="compare measures the paper's one hidden layer; this run has 2"):
        underspec.compare(run)

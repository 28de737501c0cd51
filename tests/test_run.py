"""A Run saved to disk comes back bit for bit; broken or foreign folders give one clear error."""

import json

import pytest
import torch

import underspec
from underspec import Grid, load_or_train, load_run, train


@pytest.fixture(scope="module")
def run(small):
    return train(Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(2, 10), epochs=2), small, progress=False)


def test_save_and_load_round_trip_exactly(run, tmp_path):
    run.save(tmp_path / "r")
    back = load_run(tmp_path / "r")
    assert back.grid == run.grid and back.data_name == run.data_name
    for which in ("init", "final", "grad_sum"):
        assert all(torch.equal(back.params(which)[k], run.params(which)[k]) for k in run.init)
    assert all(torch.equal(back.snapshots[k], run.snapshots[k]) for k in run.snapshots)
    assert torch.equal(back.embeddings, run.embeddings) and torch.equal(back.probe_index, run.probe_index)
    assert back.history.equals(run.history)
    assert not list(tmp_path.glob(".r.tmp*")), "no temporary folder is left behind"


def test_save_refuses_a_folder_with_something_in_it(run, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(underspec.UnderspecError, match="not empty"):
        run.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_member_cuts_padding_to_its_classes(run):
    m = run.member(seed=42, l1=0.01, n_classes=2)
    assert m.final["w2"].shape == (2, 16) and m.final["b2"].shape == (2,)
    i = run.index(42, 0.01, 2)
    assert torch.equal(run.final["w2"][i, 2:], torch.zeros(8, 16)), "padding rows stay zero"
    assert torch.equal(m.embeddings["post"], torch.relu(m.embeddings["pre"]))


def test_a_member_is_addressed_by_the_settings_that_pick_it(run, small):
    """Axes of one value may be left out; settings that leave several members, or none, are refused with the
    candidates named."""
    assert run.index(42, 0.01, 2) == run.members.query("seed == 42 and l1 == 0.01 and n_classes == 2").index.item()
    with pytest.raises(underspec.UnderspecError, match=r"2 members have seed=42, l1=0\.01: give more of seed, "
                                                       r"l1, n_classes .*n_classes=2; seed=42, l1=0\.01, n_classes=10"):
        run.member(seed=42, l1=0.01)
    with pytest.raises(underspec.UnderspecError, match="no member seed=7"):
        run.member(seed=7)
    one = train(Grid(seeds=(0, 42), epochs=1), small, progress=False, probe_size=5)
    assert one.member(seed=42).seed == 42 and one.index(seed=0) == 0
    with pytest.raises(underspec.UnderspecError, match="2 members have no settings"):
        one.member()


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "run.json").unlink(), "holds no underspec run"),
    (lambda d: (d / "run.json").write_text("{not json"), "corrupt or from another program"),
    (lambda d: (d / "run.json").write_text(json.dumps({"format": "other"})), "corrupt or from another program"),
    (lambda d: (d / "tensors.pt").write_bytes(b"garbage"), "corrupt: train it again"),
    (lambda d: (d / "history.parquet").unlink(), "corrupt: train it again"),
])
def test_corrupt_or_foreign_folder_is_a_clear_error(run, tmp_path, damage, message):
    run.save(tmp_path / "r")
    damage(tmp_path / "r")
    with pytest.raises(underspec.UnderspecError, match=message):
        load_run(tmp_path / "r")


def test_load_or_train_trains_once_then_reuses(small, tmp_path):
    grid = Grid(seeds=(0,), epochs=1)
    first = load_or_train(grid, small, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 1
    again = load_or_train(grid, small, cache_dir=tmp_path, progress=False)
    assert torch.equal(first.final["w1"], again.final["w1"])
    load_or_train(Grid(seeds=(1,), epochs=1), small, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.iterdir())) == 2, "another grid is another cache entry"


def test_the_cache_key_covers_every_module_training_reads():
    """A cached Run must never outlive a change to code that decides its contents: every package module the
    engine imports (directly or through them) is hashed into the key."""
    import ast
    from pathlib import Path

    from underspec.training.code import TRAINING_CODE

    package = Path(underspec.__file__).parent
    seen, todo = set(), ["training/engine.py"]
    while todo:
        name = todo.pop()
        seen.add(name)
        folder = Path(name).parent
        for node in ast.walk(ast.parse((package / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                base = folder if node.level == 1 else Path(*folder.parts[:-(node.level - 1)])
                module = str(base / (node.module.replace(".", "/") + ".py"))
                if module not in seen:
                    todo.append(module)
    assert seen <= set(TRAINING_CODE), sorted(seen - set(TRAINING_CODE))

"""Hostile inputs (the hardening issue): every bad argument, config or file gets one clear line and exit code 2,
before any work starts, writes nothing, and loses no trained work; corrupt or foreign data is never used.

The table at the top runs the CLI on bad inputs and checks, for each: exit code 2, at most two lines on
stderr, no traceback, and no new file in the working folder. The tests below it cover what a table cannot
(damaged files, kills, diverged training, library misuse).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import underspec
from underspec import Grid, UnderspecError, load_run, train
from underspec.cli import main

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)) + "seeds: *i\n"


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def cases(tmp: Path):
    """(name, argv, expected message part) for the CLI table; files the cases need are made in ``tmp``."""
    (tmp / "afile").write_text("x")
    os.symlink(tmp / "nowhere", tmp / "dangling")
    bad_sweep = tmp / "bad-sweep"
    bad_sweep.mkdir()
    (bad_sweep / "sweep.yaml").write_text("format: underspec-sweep\nversion: 2\nidentity: {}\nfingerprint: x\n")
    bomb_results = tmp / "bomb-results"
    bomb_results.mkdir()
    (bomb_results / "sweep.yaml").write_text(ALIAS_BOMB)
    (tmp / "empty").mkdir()
    os.symlink(tmp / "empty", tmp / "link-to-empty")
    linked_report = tmp / "linked-report"
    linked_report.mkdir()
    os.symlink(tmp / "empty", linked_report / "report")
    train_ = ["train", "--epochs", "1", "--no-progress"]
    sweep_ = ["sweep", "--seeds", "0", "1", "--epochs", "1", "--out", str(tmp / "s")]
    return [
        ("classes below 2", train_ + ["--classes", "1-10"], "class counts must be integers in 2..10"),
        ("a range that would exhaust memory", train_ + ["--classes", "2-100000000"], "at most 10,000"),
        ("a long range", train_ + ["--classes", "2-1000000"], "at most 10,000"),
        ("a seed of 2^64", train_ + ["--seeds", str(2**64)], "seeds must be integers in 0..2^63-1"),
        ("a word as seed", train_ + ["--seeds", "x"], "invalid seed 'x'"),
        ("no epochs", ["train", "--epochs", "0"], "epochs must be a positive integer"),
        ("a billion epochs", ["train", "--epochs", "1000000000"], "GiB"),
        ("a billion hidden units", train_ + ["--hidden", "1000000000"], "GiB"),
        ("zero learning rate", train_ + ["--lr", "0"], "learning rate must be > 0"),
        ("NaN learning rate", train_ + ["--lr", "nan"], "learning rate must be > 0"),
        ("negative L1", train_ + ["--l1", "-1"], "L1 strengths must be finite and >= 0"),
        ("L1 as a word", train_ + ["--l1", "lots"], "cannot read 'lots' as a number"),
        ("zero batch", train_ + ["--batch-size", "0"], "batch_size must be a positive integer"),
        ("unknown optimizer", train_ + ["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
        ("momentum of 1", train_ + ["--momentum", "1"], "momentum must be in [0, 1)"),
        ("negative momentum", train_ + ["--momentum", "-0.5"], "momentum must be in [0, 1)"),
        ("momentum with Adam", train_ + ["--optimizer", "adam", "--momentum", "0.9"], "momentum is SGD's"),
        ("negative weight decay", train_ + ["--weight-decay", "-0.1"], "weight decay must be finite and >= 0"),
        ("infinite weight decay", train_ + ["--weight-decay", "inf"], "weight decay must be finite and >= 0"),
        ("both seeds fixed", train_ + ["--init-seed", "1", "--order-seed", "2"], "leave the seeds nothing to vary"),
        ("a negative stopping loss", train_ + ["--stop-loss", "-0.1"], "stop_loss must be a training cross-entropy"),
        ("a stopping loss of 0", train_ + ["--stop-loss", "0"], "stop_loss must be a training cross-entropy"),
        ("a NaN stopping loss", train_ + ["--stop-loss", "nan"], "stop_loss must be a training cross-entropy"),
        ("a stopping loss that is not a number", train_ + ["--stop-loss", "low"], "stop_loss must be a number"),
        ("a width of 0 among widths", train_ + ["--hidden", "16", "0"], "hidden must be a positive integer"),
        ("a width twice", train_ + ["--hidden", "16", "16"], "duplicate hidden"),
        ("a billion hidden units among widths", train_ + ["--hidden", "16", "1000000000"], "GiB"),
        ("a word among learning rates", train_ + ["--lr", "0.01", "fast"], "lr must be a number, got 'fast'"),
        ("a depth of 0 among depths", train_ + ["--depth", "1", "0"], "depth must be a positive integer"),
        ("momenta without SGD", train_ + ["--optimizer", "adam", "adamw", "--momentum", "0", "0.9"],
         "momentum is SGD's"),
        ("an unknown optimizer among others", train_ + ["--optimizer", "sgd", "lbfgs"], "unknown optimizer 'lbfgs'"),
        ("a batch size too large among others", train_ + ["--batch-size", "32", "5000"], "larger than the 4,000"),
        ("a steps budget with batch sizes", train_ + ["--batch-size", "32", "64", "--steps", "100"],
         "a steps budget needs one batch size"),
        ("init seeds with an order seed", train_ + ["--init-seed", "1", "2", "--order-seed", "3"],
         "leave the seeds nothing to vary"),
        ("an epoch count of 0 among others", ["train", "--epochs", "1", "0"], "epochs must be a positive integer"),
        ("an unknown class mode among others", train_ + ["--class-mode", "relabel", "drop"],
         "unknown class mode 'drop'"),
        ("a negative stopping loss among others", train_ + ["--stop-loss", "0.5", "-1"],
         "stop_loss must be a training cross-entropy"),
        ("a steps budget with epoch counts", ["train", "--epochs", "1", "2", "--steps", "100"],
         "a steps budget sets the epochs"),
        ("a sweep over widths", sweep_ + ["--hidden", "8", "16", "--dry-run"], "a sweep takes one value of hidden"),
        ("a negative init seed", train_ + ["--init-seed", "-1"], "init_seed must be an integer"),
        ("a fractional order seed", train_ + ["--order-seed", "1.5"], "order_seed"),
        ("a batch larger than the data", train_ + ["--batch-size", "5000"], "larger than the 4,000 training"),
        ("unknown class mode", train_ + ["--class-mode", "drop"], "unknown class mode 'drop'"),
        ("unknown data set", train_ + ["--dataset", "cifar"], "unknown data set 'cifar'"),
        ("device mps", train_ + ["--device", "mps"], "unknown device 'mps'"),
        ("device xpu", train_ + ["--device", "xpu"], "unknown device 'xpu'"),
        ("device meta", train_ + ["--device", "meta"], "unknown device 'meta'"),
        ("an empty --out", train_ + ["--out", ""], "--out is empty"),
        ("--out below a file", train_ + ["--out", str(tmp / "afile" / "run")], "is below the file"),
        ("--out through a dangling link", train_ + ["--out", str(tmp / "dangling" / "run")], "link to nothing"),
        ("--data-root is a file", train_ + ["--data-root", str(tmp / "afile")], "is a file"),
        ("--paper with seeds", train_ + ["--paper", "--seeds", "1"], "--paper fixes the grid"),
        ("a one-seed sweep", ["sweep", "--seeds", "0", "--out", str(tmp / "s"), "--dry-run"], "at least 2"),
        ("an alias bomb in a config", ["sweep", write(tmp / "bomb.yaml", ALIAS_BOMB), "--dry-run"],
         "aliases (*name) are not allowed"),
        ("duplicate keys", ["sweep", write(tmp / "dup.yaml", "seeds: [0, 1]\nseeds: [2, 3]\n"), "--dry-run"],
         "duplicate key 'seeds'"),
        ("a list instead of keys", ["sweep", write(tmp / "list.yaml", "- 1\n- 2\n"), "--dry-run"],
         "must hold 'key: value' lines"),
        ("an unknown key", ["sweep", write(tmp / "key.yaml", "batchsize: 3\n"), "--dry-run"],
         "unknown key 'batchsize'"),
        ("a binary config", ["sweep", str(tmp / "afile"), "--dry-run"], "must hold 'key: value' lines"),
        ("a config that is not there", ["sweep", str(tmp / "absent.yaml")], "does not exist"),
        ("an unknown kernel", sweep_ + ["--kernel", "nosuchkernel"], "no Jupyter kernel 'nosuchkernel'"),
        ("Slurm where there is none", sweep_ + ["--executor", "slurm"], "Slurm is not available"),
        ("a sweep --out below a file", sweep_[:-1] + [str(tmp / "afile" / "s"), "--dry-run"], "is below the file"),
        ("report of nothing", ["report", str(tmp / "nothing")], "not a folder"),
        ("report of a sweep.yaml without its config", ["report", str(bad_sweep)], "not an underspec sweep file"),
        ("report of an alias bomb", ["report", str(bomb_results)], "not an underspec sweep file"),
        ("report of ~/ that is not there", ["report", "~/no-such-underspec-results"], "not a folder"),
        ("report --out below a file", ["report", str(bad_sweep), "--out", str(tmp / "afile" / "r")],
         "is below the file"),
        # bounded work before any check (Hardening II)
        ("100 ranges of 10,000 seeds", train_ + ["--seeds", *(f"{i * 10_000}-{i * 10_000 + 9_999}" for i in range(100))],
         "more than 10,000 values"),
        ("seven axes of ten values", train_ + [arg for flag in ("--hidden", "--batch-size", "--init-seed", "--epochs")
                                               for arg in (flag, *map(str, range(1, 11)))]
         + ["--lr", *(f"0.0{i}" for i in range(1, 10)), "0.1", "--momentum", *(f"0.{i}" for i in range(10)),
            "--weight-decay", *(f"0.0{i}" for i in range(10))], "at most 100,000 networks"),
        ("a depth of 10,000", train_ + ["--depth", "10000"], "depth must be at most 64"),
        ("a config nested 5,000 deep", ["sweep", write(tmp / "deep.yaml", "seeds: " + "[" * 5000 + "]" * 5000),
                                        "--dry-run"], "nested too deeply"),
        ("a sweep of 10^7 hidden units", sweep_ + ["--hidden", "10000000", "--dry-run"], "GiB"),
        ("no threads", train_ + ["--threads", "0"], "--threads takes a whole number"),
        # output that could not be written, found before training
        ("--out a link to an empty folder", train_ + ["--out", str(tmp / "link-to-empty")], "is a link"),
        ("a 250-character --out", train_ + ["--out", str(tmp / ("o" * 250))], "choose a shorter name"),
        ("a 300-character --out", train_ + ["--out", str(tmp / ("o" * 300))], "too long a name"),
        ("a report folder that links elsewhere", ["report", str(linked_report)], "is a link"),
    ]


CASE_NAMES = [c[0] for c in cases(Path(__import__("tempfile").mkdtemp()))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_cli_input_is_one_line_exit_2_and_writes_nothing(name, tmp_path, monkeypatch, capsys):
    files = tmp_path / "files"
    files.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    argv, expected = next((argv, msg) for n, argv, msg in cases(files) if n == name)
    monkeypatch.chdir(work)
    before = sorted(p.name for p in files.rglob("*"))
    started = time.perf_counter()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err, err
    assert err.count("\n") <= 2 and "Traceback" not in err and len(err) < 600, err
    assert not list(work.iterdir()), "the command wrote into the working folder"
    assert sorted(p.name for p in files.rglob("*")) == before, "the command wrote beside its inputs"
    assert time.perf_counter() - started < 20, "refused too slowly (a denial of service?)"


# -------------------------------------------------------------------------------------------- 1: subset mode

def test_subset_mode_without_10_trains_and_reports(tmp_path, capsys):
    assert main(["train", "--class-mode", "subset", "--classes", "2", "3", "--seeds", "0", "--epochs", "1",
                 "--no-progress", "--out", str(tmp_path / "r")]) == 0
    run = load_run(tmp_path / "r")
    final = run.history[run.history.epoch == 1]
    assert final.test_acc.between(0, 1).all() and final.test_acc.notna().all()


# ------------------------------------------------------------------------------- 2: output checked, saving

def test_an_unwritable_out_is_refused_before_loading_data(tmp_path, monkeypatch, capsys):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(underspec.training.data, "load_dataset",
                        lambda *a, **k: pytest.fail("data loaded before the output was checked"))
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    assert "cannot be written (Read-only file system" in capsys.readouterr().err


def test_a_failure_while_saving_is_one_line_naming_path_and_cause(tmp_path, monkeypatch, small):
    run = train(Grid(seeds=(0,), epochs=1), small, progress=False)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(UnderspecError, match=r"no space left on device while writing .*r"):
        run.save(tmp_path / "r")
    assert list(tmp_path.iterdir()) == [], "a failed save left files behind"


# ---------------------------------------------------------------------------------- 3: a damaged data cache

@pytest.mark.parametrize("damage", ["garbage", "truncate", "flip", "foreign"])
def test_a_damaged_mnist5k_cache_is_rebuilt(tmp_path, damage, mnist5k):
    underspec.load_dataset("mnist-5k", root=tmp_path)
    path = tmp_path / "mnist-5k.npz"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "truncate":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:])
    else:  # a valid npz of the wrong shapes
        np.savez(path, x_train=np.zeros((3, 3)), y_train=np.zeros(3), x_test=np.zeros(1), y_test=np.zeros(1))
    again = underspec.load_dataset("mnist-5k", root=tmp_path)
    assert torch.equal(again.x_train, mnist5k.x_train) and torch.equal(again.y_test, mnist5k.y_test)
    assert [p.name for p in tmp_path.iterdir()] == ["mnist-5k.npz"], "a temporary file was left behind"


# ----------------------------------------------------------------------------- 4: corrupt or foreign results

@pytest.fixture(scope="module")
def saved(tmp_path_factory, small):
    """A saved run (hidden 16, seeds 0 and 1) and a foreign one (hidden 8, seeds 5 and 6)."""
    root = tmp_path_factory.mktemp("runs")
    train(Grid(seeds=(0, 1), epochs=1), small, progress=False).save(root / "ours")
    train(Grid(seeds=(5, 6), hidden=8, epochs=1), small, progress=False).save(root / "foreign")
    return root


def copy_run(saved: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(saved / "ours", tmp_path / "r")
    return tmp_path / "r"


def test_a_flipped_bit_in_a_run_is_refused(saved, tmp_path):
    run = copy_run(saved, tmp_path)
    data = bytearray((run / "tensors.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (run / "tensors.pt").write_bytes(bytes(data))
    with pytest.raises(UnderspecError, match="does not match the checksum"):
        load_run(run)


@pytest.mark.parametrize("swap", ["tensors.pt", "history.parquet"])
def test_files_of_another_run_are_refused(saved, tmp_path, swap):
    run = copy_run(saved, tmp_path)
    (run / swap).write_bytes((saved / "foreign" / swap).read_bytes())
    with pytest.raises(UnderspecError, match="checksum"):
        load_run(run)
    # even with the checksum forged, the tensors must fit the grid the header declares
    header = json.loads((run / "run.json").read_text())
    header["sha256"][swap] = underspec.files.sha256(run / swap)
    (run / "run.json").write_text(json.dumps(header))
    with pytest.raises(UnderspecError, match="does not match its grid"):
        load_run(run)


def test_a_run_json_without_its_grid_is_a_clear_error(saved, tmp_path):
    run = copy_run(saved, tmp_path)
    header = json.loads((run / "run.json").read_text())
    del header["grid"]
    (run / "run.json").write_text(json.dumps(header))
    with pytest.raises(UnderspecError, match="lacks grid"):
        load_run(run)


def test_the_cache_replaces_a_corrupt_entry_and_counts_another_save_as_a_hit(tmp_path, small, monkeypatch):
    from underspec.training import cache

    grid = Grid(seeds=(0,), epochs=1)
    first = underspec.load_or_train(grid, small, cache_dir=tmp_path, progress=False)
    entry = next(tmp_path.iterdir())
    (entry / "tensors.pt").write_bytes(b"damaged")
    repaired = underspec.load_or_train(grid, small, cache_dir=tmp_path, progress=False)
    assert torch.equal(repaired.final["w1"], first.final["w1"]) and load_run(entry)  # rebuilt in place
    # another process saves the entry while we train: theirs is served, no error
    import shutil

    shutil.rmtree(entry)
    real_train = cache.train

    def train_while_another_saves(*args, **kwargs):
        run = real_train(*args, **kwargs)
        run.save(entry)  # "the other process" wins the race
        return run

    monkeypatch.setattr(cache, "train", train_while_another_saves)
    again = underspec.load_or_train(grid, small, cache_dir=tmp_path, progress=False)
    assert torch.equal(again.final["w1"], first.final["w1"])


# ------------------------------------------------------------------------------------------ 6: divergence

def test_diverged_training_is_named_and_kept_out_of_the_metrics(tmp_path, capsys):
    assert main(["train", "--lr", "1e30", "--seeds", "0", "1", "2", "--classes", "2", "10", "--epochs", "1",
                 "--no-progress", "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "diverged" in captured.err and "from epoch 1" in captured.err and "lower --lr" in captured.err
    assert "0.80" not in captured.out and "0.10" not in captured.out  # no accuracy of a NaN network
    run = load_run(tmp_path / "r")
    assert len(run.meta["diverged"]) == 6 and run.history.test_acc.isna().all()
    table = underspec.compare(run, pairs="all")  # no scipy error: NaN rows, left out of the summary
    assert table.apc1.isna().all()
    assert (underspec.summarize(table).n == 0).all()


# ------------------------------------------------------------------------------- 7: kills and stale files

def test_a_save_killed_earlier_leaves_nothing_behind_the_next_one(tmp_path, small):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".r.tmp-{dead.pid}"
    stale.mkdir()
    (stale / "tensors.pt").write_bytes(b"half")
    train(Grid(seeds=(0,), epochs=1), small, progress=False).save(tmp_path / "r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.slow
def test_sigterm_stops_a_training_cleanly(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "underspec.cli", "train", "--paper", "--epochs", "50",
                             "--out", str(tmp_path / "r")], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(8)  # imports done, training under way
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir()), "a half-written run was left behind"


# ---------------------------------------------------------------------------------- 8: unsafe advice relayed

def test_a_pickle_payload_is_refused_in_one_line_without_unsafe_advice(saved, tmp_path):
    import pickle

    run = copy_run(saved, tmp_path)

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    (run / "tensors.pt").write_bytes(pickle.dumps(Payload()))
    header = json.loads((run / "run.json").read_text())
    header["sha256"]["tensors.pt"] = underspec.files.sha256(run / "tensors.pt")
    (run / "run.json").write_text(json.dumps(header))
    with pytest.raises(UnderspecError) as err:
        load_run(run)
    assert "\n" not in str(err.value) and "weights_only" not in str(err.value)


# ------------------------------------------------------------------------------- 10: sweeps and reports

def test_the_saved_sweep_yaml_reruns_the_same_sweep(tmp_path):
    from underspec.sweeps.config import SweepConfig
    from underspec.sweeps.execute import prepare

    config = SweepConfig(seeds=(0, 1), l1=(0.0,), n_classes=(10,), epochs=1, n_train=100, n_test=50,
                         out=str(tmp_path / "s"), device="cpu")
    out, _ = prepare(config)
    again = SweepConfig.from_yaml(out / "sweep.yaml")
    assert again == config and again.fingerprint() == config.fingerprint()


# --------------------------------------------------------------------------------------- 11: library misuse

def test_library_misuse_is_a_clear_error(saved, small):
    assert Grid(seeds=np.arange(3)).seeds == (0, 1, 2)
    assert Grid(seeds=[np.int64(4)], n_classes=np.array([2, 10])).n_classes == (2, 10)
    with pytest.raises(UnderspecError, match="cannot read True as a number"):
        Grid(l1=[True])
    run = load_run(saved / "ours")
    for args, message in [((0.7, 0.0, 10), "seed must be an integer"), ((0, 0.0, 9.9), "n_classes must be"),
                          (("1", 0.0, 10), "seed must be an integer"), ((3, 0.0, 10), "no member seed=3")]:
        with pytest.raises(UnderspecError, match=message):
            run.member(*args)
    with pytest.raises(UnderspecError, match="n_train must be a positive integer"):
        small.take(-1, None)
    from underspec.metrics.representations import cka_over_training
    from underspec.metrics.shift import shift_table

    for bad in (None, "runs/x"):
        with pytest.raises(UnderspecError, match="compare needs a Run"):
            underspec.compare(bad)
        for call, name in ((lambda r: underspec.member_table(r), "member_table"),
                           (lambda r: cka_over_training(r, 10), "cka_over_training"),
                           (lambda r: shift_table(r, small), "shift_table")):
            with pytest.raises(UnderspecError, match=f"{name} needs a Run"):
                call(bad)
    with pytest.raises(UnderspecError, match="summarize needs a table"):
        underspec.summarize(None)
    for budget in (True, -1, 0, 1.5e9, "8GiB"):  # before any training
        with pytest.raises(UnderspecError, match="memory_budget must be a number of bytes"):
            underspec.train(Grid(), small, progress=False, memory_budget=budget)
    from underspec.metrics.layers import layer_similarity
    from underspec.metrics.seed_similarity import seed_similarity

    for call in (seed_similarity, layer_similarity):
        with pytest.raises(UnderspecError, match=f"{call.__name__} needs a Run"):
            call("runs/x", small)


# ------------------------------------------------------------------------------------------------ 12: minor

def test_an_offline_full_mnist_leaves_no_empty_folders(tmp_path):
    with pytest.raises(UnderspecError):
        underspec.load_dataset("mnist", root=tmp_path / "data", download=False)
    assert not (tmp_path / "data").exists()


def test_a_quoted_number_is_read_as_the_number(tmp_path):
    from underspec.sweeps.config import SweepConfig

    path = tmp_path / "c.yaml"
    path.write_text("seeds: [0, 1]\nlr: '0.01'\nepochs: '3'\n")
    config = SweepConfig.from_yaml(path)
    assert config.lr == 0.01 and config.epochs == 3


def test_results_with_other_rows_are_never_reported(tmp_path):
    """A shard whose marker matches but whose tables hold another grid's rows is treated as not complete."""
    from underspec.sweeps.store import rows_match
    from underspec.sweeps.config import SweepConfig

    config = SweepConfig(seeds=(0, 1), l1=(0.0,), n_classes=(10,), epochs=1)
    shard = config.plan()[0]
    history = pd.DataFrame({"seed": [0, 1], "l1": [0.0, 0.0], "n_classes": [10, 10], "epoch": [1, 1]})
    metrics = pd.DataFrame({"l1": [0.0], "n_classes": [10], "seed_a": [0], "seed_b": [1]})
    assert rows_match((metrics, history), shard, config)
    assert not rows_match((metrics.assign(n_classes=3), history), shard, config)
    assert not rows_match((metrics, history.assign(seed=[5, 6])), shard, config)


# ------------------------------------------------------------------------- 13: Hardening II, beyond the table

def test_huge_grids_are_refused_from_the_lengths_of_their_lists(monkeypatch):
    """A 10^7-part grid and a million seeds are refused before any part or seed list is built."""
    def never(*args, **kwargs):
        raise AssertionError("built before the bound was checked")

    monkeypatch.setattr(Grid, "parts", never)
    ten = list(range(1, 11))
    with pytest.raises(UnderspecError, match="at most 100,000 networks and 10,000 settings"):
        Grid(hidden=ten, batch_size=ten, init_seed=ten, epochs=ten, lr=[0.01 * i for i in ten],
             momentum=[0.05 * i for i in range(10)], weight_decay=[0.01 * i for i in range(10)])

    class Million:  # a list-like of a million seeds that must never be iterated
        def __len__(self):
            return 1_000_000

        def __iter__(self):
            raise AssertionError("iterated before the bound was checked")

    with pytest.raises(UnderspecError, match="1,000,000 values; at most 10,000"):
        Grid(seeds=Million())
    with pytest.raises(UnderspecError, match="has 1,000,000 values"):
        Grid(seeds="0-999999")


def test_duplicates_among_many_seeds_are_found_in_linear_time():
    seeds = list(range(10_000)) + [5]
    seeds.pop(0)
    started = time.process_time()
    with pytest.raises(UnderspecError, match=r"duplicate seed\(s\) \[5\]"):
        Grid(seeds=seeds)
    assert time.process_time() - started < 5  # a quadratic check takes minutes here


@pytest.mark.timeout(120)
@pytest.mark.parametrize("special", ["dev-zero", "fifo", "link-to-file"])
def test_special_files_in_a_run_folder_are_refused_without_reading_them(saved, tmp_path, special):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(saved / "ours", run)
    target = run / "tensors.pt"
    target.unlink()
    if special == "dev-zero":
        os.symlink("/dev/zero", target)
    elif special == "fifo":
        os.mkfifo(target)
    else:
        os.symlink(saved / "ours" / "tensors.pt", target)  # the right bytes, through a link: refused too
    with pytest.raises(UnderspecError, match="does not match the checksum"):
        load_run(run)
    (run / "run.json").unlink()
    os.symlink("/dev/zero", run / "run.json")
    with pytest.raises(UnderspecError, match="holds no underspec run|not an underspec run file"):
        load_run(run)


def test_a_run_json_nested_100000_deep_is_refused_in_one_line(saved, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(saved / "ours", run)
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UnderspecError, match="not an underspec run file"):
        load_run(run)


def test_a_received_sweep_file_cannot_send_the_results_elsewhere(tmp_path):
    from underspec.sweeps.config import SweepConfig
    from underspec.sweeps.execute import prepare

    config = SweepConfig(seeds=(0, 1), l1=(0.0,), n_classes=(10,), epochs=1, out=str(tmp_path / "s"), device="cpu")
    out, _ = prepare(config)
    received = tmp_path / "received"
    received.mkdir()
    text = (out / "sweep.yaml").read_text().replace(str(tmp_path / "s"), "../../escape")
    (received / "sweep.yaml").write_text(text)
    assert SweepConfig.from_yaml(received / "sweep.yaml").out == str(received.resolve())
    (out / ".lock").unlink(missing_ok=True)
    os.symlink(tmp_path / "elsewhere-lock", out / ".lock")
    from underspec.sweeps.store import lock

    with pytest.raises(UnderspecError, match="cannot lock"):
        with lock(out):
            pass
    assert not (tmp_path / "elsewhere-lock").exists()


def _fashion_copy(root: Path) -> Path:
    """Fashion-MNIST's four IDX files unpacked under ``root`` as load_dataset keeps them (FashionMNIST/raw)."""
    underspec.load_dataset("fashion-mnist", root=root, download=False)
    return root / "FashionMNIST" / "raw"


fashion = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                             reason="needs Debian's dataset-fashion-mnist (make installs it)")


@fashion
@pytest.mark.parametrize("damage", ["truncate", "random-labels", "label-42", "one-label-short", "folder"])
def test_damaged_fashion_mnist_files_are_rebuilt_from_debians_copy(tmp_path, damage):
    raw = _fashion_copy(tmp_path)
    labels = raw / "train-labels-idx1-ubyte"
    if damage == "truncate":
        data = (raw / "train-images-idx3-ubyte").read_bytes()
        (raw / "train-images-idx3-ubyte").write_bytes(data[:len(data) // 2])
    elif damage == "random-labels":
        labels.write_bytes(np.random.default_rng(0).integers(0, 256, 60_008, dtype=np.uint8).tobytes())
    elif damage == "label-42":
        data = bytearray(labels.read_bytes())
        data[100] = 42
        labels.write_bytes(bytes(data))
    elif damage == "one-label-short":
        data = labels.read_bytes()
        labels.write_bytes(data[:4] + (59_999).to_bytes(4, "big") + data[8:-1])
    else:
        labels.unlink()
        labels.mkdir()
        with pytest.raises(UnderspecError, match="is not a regular file"):
            underspec.load_dataset("fashion-mnist", root=tmp_path, download=False)
        return
    data = underspec.load_dataset("fashion-mnist", root=tmp_path, download=False)  # unpacked again
    assert len(data.y_train) == 60_000 and int(data.y_train.max()) == 9


@fashion
def test_a_damaged_debian_file_is_named_and_nothing_is_left_half_written(tmp_path, monkeypatch):
    from underspec.training import data as datasets

    copy = tmp_path / "debian"
    copy.mkdir()
    for path in datasets.DEBIAN_FASHION_MNIST.glob("*.gz"):
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", copy)
    with pytest.raises(UnderspecError, match=r"train-labels-idx1-ubyte.gz: cannot be read .*reinstall") as err:
        underspec.load_dataset("fashion-mnist", root=tmp_path / "cache", download=False)
    assert "\n" not in str(err.value) and not (tmp_path / "cache").exists()


def test_a_malformed_products_cache_is_ignored_and_rebuilt(tmp_path, monkeypatch, small):
    monkeypatch.setenv("UNDERSPEC_DATA", str(tmp_path))
    for junk in ("[1]", '"a string"', "{not json", '{"key": 5}'):
        (tmp_path / "products.json").write_text(junk)
        run = train(Grid(seeds=(0,), epochs=1), small, progress=False)
        assert run.meta["products"]["measured"] and isinstance(json.loads((tmp_path / "products.json").read_text()),
                                                               dict)


def test_the_product_choice_prefers_dense_within_noise(monkeypatch, tmp_path):
    """Sparse is chosen only when it is clearly faster: at 95% of dense's time, dense is kept."""
    from underspec.training import products

    monkeypatch.setenv("UNDERSPEC_DATA", str(tmp_path))
    times = {products.DenseProducts: 10.0, products.SparseProducts: 9.5}
    monkeypatch.setattr(products, "_time_steps", lambda cls, *a: times[cls])
    x = torch.rand(200, 50)
    assert products.choose_products(x, 50, streams=1, units=16, batch_size=8)[0] is products.DenseProducts
    times[products.SparseProducts] = 5.0
    assert products.choose_products(x, 50, streams=2, units=16, batch_size=8)[0] is products.SparseProducts


def test_library_misuse_of_data_runs_and_mixed_runs_is_one_line(small):
    for call, message in [(lambda: underspec.load_dataset("mnist-5k", root=5), "root must be a folder"),
                          (lambda: load_run(None), "load_run needs the folder of a saved run"),
                          (lambda: Grid(steps=100).for_data(0), "at least one image")]:
        with pytest.raises(UnderspecError, match=message):
            call()
    mixed = train(Grid(seeds=(0, 1), hidden=(8, 16), epochs=1), small, progress=False)
    for name in ("params", "stack", "final"):
        with pytest.raises(UnderspecError, match=rf"a mixed run has no {name} of its own.*run.part\(hidden=8\)"):
            getattr(mixed, name)
    with pytest.raises(UnderspecError, match="no member seed=0, l1=0.0, n_classes=2"):
        mixed.member(0, 0.0, 2)
    assert mixed.member(1, 0.0, 10, hidden=16).seed == 1


def test_metrics_of_a_diverged_run_are_nan_rows_not_scipy_errors(small):
    from underspec.metrics.layers import layer_similarity
    from underspec.metrics.seed_similarity import seed_similarity

    run = train(Grid(seeds=(0, 1, 2), depth=2, epochs=1), small, progress=False)
    run.final["w1"][1, 0, 0] = float("inf")
    table = seed_similarity(run, small, probe_size=30)
    with_1 = (table.seed_a == 1) | (table.seed_b == 1)
    assert table[with_1][["disagreement", "cka", "apc1_excess", "barrier"]].isna().all().all()
    assert table[~with_1][["disagreement", "cka", "apc1_excess", "barrier"]].notna().all().all()
    layers = layer_similarity(run, small, probe_size=30)
    assert layers[(layers.seed_a == 1) | (layers.seed_b == 1)].apc_in.isna().all()
    assert layers[(layers.seed_a == 0) & (layers.seed_b == 2)].apc_in.notna().all()
    metrics = underspec.pair_metrics({k: run.final[k][[0, 1]] for k in ("w1", "w2")},
                                     {k: run.final[k][[2, 2]] for k in ("w1", "w2")})
    assert torch.isfinite(metrics["apc1"][0]) and torch.isnan(metrics["apc1"][1])
    for call in (seed_similarity, layer_similarity):
        with pytest.raises(UnderspecError, match="pass the data set the run was trained on"):
            call(run, underspec.load_dataset("mnist-5k"))
        for bad in (-1, 0, "5", 2.5):
            with pytest.raises(UnderspecError, match="probe_size must be a whole number"):
                call(run, small, probe_size=bad)


def test_a_steps_budget_is_printed_and_compared_as_the_epochs_it_became(tmp_path, capsys):
    argv = ["train", "--seeds", "0", "1", "--classes", "2", "--steps", "100", "--no-progress",
            "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    assert "2 networks, 2 epochs on mnist-5k" in capsys.readouterr().out  # 63 steps an epoch: 2 epochs
    assert main(argv) == 0
    assert "already holds this run" in capsys.readouterr().out


def test_a_save_that_fails_after_training_keeps_the_run_elsewhere(tmp_path, monkeypatch, capsys):
    """The disk fills while the trained run is written (torch's writer raises a RuntimeError): one line, and
    the run is saved in a fallback folder that the line names."""
    real, out = torch.save, tmp_path / "r"

    def full_disk(obj, path, *args, **kwargs):
        if f".{out.name}.tmp-" in str(path):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file")
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert main(["train", "--seeds", "0", "1", "--classes", "2", "--epochs", "1", "--no-progress",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "while writing" in err and "saved in" in err, err
    assert not out.exists() and not list(tmp_path.glob(".r.tmp-*"))
    kept = Path(err.split("saved in ")[1].split(" instead")[0])
    assert load_run(kept).grid.seeds == (0, 1)


def test_a_full_disk_while_saving_is_one_line_and_leaves_nothing(tmp_path, small):
    """torch's writer raises a RuntimeError when the disk fills: one line, no half-written folder. On a real
    small tmpfs where the test may mount one; skipped otherwise."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root in a mount namespace)")
    try:
        run = train(Grid(seeds=(0, 1), hidden=64, epochs=1), small, progress=False)
        with pytest.raises(UnderspecError, match="while writing") as err:
            run.save(mount / "r")
        assert "\n" not in str(err.value) and not list(mount.iterdir())
        assert main(["train", "--seeds", "0", "1", "--hidden", "512", "--epochs", "1", "--no-progress",
                     "--out", str(mount / "r2")]) == 2  # refused before training: too little space
        assert not list(mount.iterdir())
    finally:  # lazily: a failed writer's file may stay open until it is collected
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_read_only_cache_trains_and_returns_the_run(tmp_path, small):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        if os.access(cache, os.W_OK):  # root writes anyway: make the cache a file's child instead
            cache = tmp_path / "afile" / "cache"
            (tmp_path / "afile").write_text("x")
        with pytest.warns(UserWarning, match="trained but not cached"):
            run = underspec.load_or_train(Grid(seeds=(0,), epochs=1), small, cache_dir=cache, progress=False)
        assert run.grid.seeds == (0,)
    finally:
        (tmp_path / "cache").chmod(0o700)


def test_a_refused_command_answers_before_torch_is_loaded():
    code = ("import sys\nfrom underspec.cli import main\n"
            "codes = [main(a) for a in (['train', '--seeds', 'x'], ['train', '--dataset', 'cifar'], "
            "['train', '--device', 'gpu'], ['train', '--threads', '0'], ['train', '--out', '/proc/no/such'], "
            "['sweep', '--seeds', '0'])]\n"
            "print(codes, sorted(m for m in ('torch', 'scipy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[2, 2, 2, 2, 2, 2] []", out


def test_progress_into_a_pipe_updates_a_few_times(tmp_path):
    done = subprocess.run([sys.executable, "-m", "underspec.cli", "train", "--seeds", "0", "1", "--classes", "2", "10",
                           "--epochs", "20"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    updates = done.stderr.count("\r") + done.stderr.count("\n")
    assert 1 <= updates <= 10, done.stderr[-500:]


def test_a_class_count_without_test_images_is_refused_before_training(mnist5k):
    """Subset mode evaluates a network on the digits it learned: none of them in the test set would give a
    NaN accuracy; it is refused in one line, and so is a data set without training images of them."""
    no_low_digits = mnist5k.y_test >= 2
    data = underspec.Dataset("mine", mnist5k.x_train[:300], mnist5k.y_train[:300], mnist5k.x_test[no_low_digits][:50],
                             mnist5k.y_test[no_low_digits][:50])
    with pytest.raises(UnderspecError, match="no test images of the digits 0..1 that a network with C = 2"):
        train(Grid(class_mode="subset", n_classes=(2, 10), epochs=1), data, progress=False)
    assert train(Grid(n_classes=(2,), epochs=1), data, progress=False).history.test_acc.notna().all()  # relabel


def test_a_bad_probe_size_is_refused_before_training(small):
    for bad in (-1, "5", 2.5, True):
        with pytest.raises(UnderspecError, match="probe_size is a number of test images"):
            train(Grid(epochs=1), small, progress=False, probe_size=bad)


# ------------------------------------------------------------------ 14: Hardening II, the audit's gaps closed

CLI_RUNS = """\
import contextlib, io, json, sys
from underspec.cli import main
done = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    done.append((code, out.getvalue(), err.getvalue()))
print(json.dumps(done))
"""


def cli_runs(*argvs, cwd, timeout=120) -> list[tuple[int, str, str]]:
    """``underspec ARGV`` for each argv, one after the other in one process of their own (torch imported once),
    killed after ``timeout`` seconds: a command that hangs on a special file fails its test instead of hanging
    the suite. (exit code, stdout, stderr) of each."""
    argvs = [[str(a) for a in argv] for argv in argvs]
    try:
        done = subprocess.run([sys.executable, "-c", CLI_RUNS, json.dumps(argvs)], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail(f"underspec {argvs} still ran after {timeout} s: it hangs")
    assert done.returncode == 0, done.stderr[-2000:]
    return [tuple(r) for r in json.loads(done.stdout)]


def one_line(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err and len(err) < 600, err


def make_special(path: Path, special: str) -> None:
    """Replace the file ``path`` with a link to /dev/zero (endless bytes) or a FIFO (a read that never ends)."""
    path.unlink()
    if special == "dev-zero":
        os.symlink("/dev/zero", path)
    else:
        os.mkfifo(path)


SPECIALS = ["dev-zero", "fifo"]
TINY_TRAIN = ["--seeds", "0", "1", "--classes", "2", "--epochs", "1", "--no-progress"]


def complete_sweep(root: Path):
    """A complete one-shard sweep (2 seeds, lambda 0, C = 2, one epoch, 200 images), made as ``run_shard`` makes
    one but without papermill: the shard's run and tables, a notebook, and its marker."""
    from underspec.sweeps.config import SweepConfig
    from underspec.sweeps.execute import prepare
    from underspec.sweeps.store import FORMAT, MARKER, save_shard, shard_checksums

    config = SweepConfig(seeds=(0, 1), l1=(0.0,), n_classes=(2,), epochs=1, n_train=200, n_test=100,
                         out=str(root / "sweep"), device="cpu")
    out, (shard,) = prepare(config)
    data = underspec.load_dataset("mnist-5k").take(200, 100)
    run = train(shard.grid(config), data, progress=False)
    folder = out / "shards" / shard.id
    save_shard(folder, run, underspec.compare(run))
    (folder / "notebook.ipynb").write_text("{}")
    marker = {"format": FORMAT, "fingerprint": config.fingerprint(), "shard": shard.id, "l1": list(shard.l1),
              "n_classes": list(shard.n_classes), "sha256": shard_checksums(folder)}
    (folder / MARKER).write_text(json.dumps(marker))
    return config, out


@pytest.fixture(scope="module")
def sweep_done(tmp_path_factory):
    return complete_sweep(tmp_path_factory.mktemp("sweep"))


def copy_sweep(sweep_done, folder: Path) -> Path:
    import shutil

    copy = folder / "copy"
    shutil.copytree(sweep_done[1], copy, symlinks=True)
    return copy


def test_a_special_file_as_a_runs_tensors_is_refused_by_report_dry_run_and_train_out(sweep_done, mnist5k, tmp_path):
    """A run's tensors.pt replaced by a link to /dev/zero or by a FIFO, and nothing reads it:
    - in a sweep's shard: `underspec report` says in one line that the shard is not complete (exit 2, no report
      written); `underspec sweep --dry-run` shows it pending (a rerun computes it again);
    - in the folder `underspec train --out r` would show (it holds this very run): one line, exit 2.
    All six commands run in one process (one import of torch) with a timeout."""
    from underspec.sweeps.store import load_results

    assert load_results(sweep_done[1]).missing == []  # complete before the damage
    argvs = []
    for special in SPECIALS:
        copy = copy_sweep(sweep_done, tmp_path / special)
        make_special(copy / "shards" / "shard-000" / "run" / "tensors.pt", special)
        out = tmp_path / special / "r"
        train(Grid(seeds=(0, 1), n_classes=(2,), epochs=1), mnist5k, progress=False).save(out)
        make_special(out / "tensors.pt", special)
        argvs += [["report", copy, "--no-figures"], ["sweep", copy / "sweep.yaml", "--dry-run"],
                  ["train", *TINY_TRAIN, "--out", out]]
    done = cli_runs(*argvs, cwd=tmp_path)
    for special, (report, dry_run, train_out) in zip(SPECIALS, (done[:3], done[3:])):
        code, _, err = report
        assert code == 2, (special, err)
        one_line(err)
        assert "1 of 1 shards" in err and "not complete" in err, (special, err)
        assert not (tmp_path / special / "copy" / "report").exists()
        code, text, err = dry_run
        assert code == 0 and err == "" and "shard-000  pending" in text, (special, text, err)
        code, _, err = train_out
        assert code == 2, (special, err)
        one_line(err)
        assert "does not match the checksum" in err and "tensors.pt" in err, (special, err)
        assert f"remove {tmp_path / special / 'r'}, then run this command again" in err, (special, err)


@pytest.mark.timeout(120)  # a read that never ends fails here rather than hanging the suite
@pytest.mark.parametrize("special", SPECIALS)
def test_a_special_file_in_a_cache_entry_is_replaced_not_read(tmp_path, small, special):
    grid = Grid(seeds=(0,), epochs=1)
    first = underspec.load_or_train(grid, small, cache_dir=tmp_path, progress=False)
    entry = next(tmp_path.iterdir())
    make_special(entry / "tensors.pt", special)
    again = underspec.load_or_train(grid, small, cache_dir=tmp_path, progress=False)
    assert torch.equal(again.final["w1"], first.final["w1"])
    assert (entry / "tensors.pt").is_file() and not (entry / "tensors.pt").is_symlink()  # rebuilt in place
    assert torch.equal(load_run(entry).final["w1"], first.final["w1"])


def test_a_linked_shard_folder_is_refused_in_one_line_not_followed(sweep_done, tmp_path, capsys):
    """shards/<id> a link to a complete shard elsewhere (the same sweep's, even): refused by report, by a
    dry run and by the sweep itself, in one line; the linked folder is neither read as ours nor removed."""
    import shutil

    config, _ = sweep_done
    copy = copy_sweep(sweep_done, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(copy / "shards" / "shard-000", elsewhere)
    os.symlink(elsewhere, copy / "shards" / "shard-000")
    before = sorted(p.name for p in elsewhere.rglob("*"))
    for argv in (["report", str(copy), "--no-figures"], ["sweep", str(copy / "sweep.yaml"), "--dry-run"],
                 ["sweep", str(copy / "sweep.yaml"), "--no-progress"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        one_line(err)
        assert "shard-000 is a link" in err and "remove the link" in err, err
    assert sorted(p.name for p in elsewhere.rglob("*")) == before and not (copy / "report").exists()
    from underspec.sweeps.store import marker_ok

    assert not marker_ok(copy / "shards" / "shard-000", config.plan()[0], config.fingerprint())  # never followed


# full disk (a small tmpfs where one can be mounted; torch's writer error patched in otherwise)

@contextlib.contextmanager
def tmpfs(path: Path, size: str = "256k", *, read_only: bool = False, full: bool = False):
    """A tmpfs of ``size`` mounted at ``path`` (``read_only``; ``full``: filled to the last byte), unmounted
    afterwards; the test is skipped where mounting is not allowed (it needs root, or a mount namespace)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root in a mount namespace)")
    try:
        if full:
            with open(path / "filler", "wb", buffering=0) as f:
                try:
                    while f.write(b"\0" * 4096):
                        pass
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        yield path
    finally:  # lazily: a failed writer's file may stay open until it is collected
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "filler")


def patch_torch_full_disk(monkeypatch):
    """torch's writer fails as on a full disk (a RuntimeError, not an OSError)."""
    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(torch, "save", full_disk)


@pytest.mark.parametrize("how", ["tmpfs", "patched"])
def test_a_mixed_run_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, small, monkeypatch, how):
    run = train(Grid(seeds=(0, 1), hidden=[8, 16], epochs=1), small, progress=False)
    assert isinstance(run, underspec.MixedRun)
    with contextlib.ExitStack() as stack:
        if how == "tmpfs":
            folder = stack.enter_context(tmpfs(tmp_path / "disk", full=True))
        else:
            folder = tmp_path
            patch_torch_full_disk(monkeypatch)
        with pytest.raises(UnderspecError, match=f"while writing {folder / 'r'}") as err:
            run.save(folder / "r")
        assert "\n" not in str(err.value) and ".tmp-" not in str(err.value) and left_in(folder) == []


@pytest.mark.parametrize("how", ["tmpfs", "patched"])
def test_load_or_train_on_a_full_disk_warns_and_returns_the_trained_run(tmp_path, small, monkeypatch, how):
    with contextlib.ExitStack() as stack:
        if how == "tmpfs":
            cache = stack.enter_context(tmpfs(tmp_path / "disk", full=True))
        else:
            cache = tmp_path
            patch_torch_full_disk(monkeypatch)
        with pytest.warns(UserWarning, match="while writing .*the trained run is returned but not cached") as caught:
            run = underspec.load_or_train(Grid(seeds=(0, 1), epochs=1), small, cache_dir=cache, progress=False)
        assert run.grid.seeds == (0, 1) and run.final["w1"].shape[0] == 2
        assert all("\n" not in str(w.message) for w in caught)
        assert left_in(cache) == [], "a half-written cache entry was left"


@pytest.mark.parametrize("how", ["tmpfs", "patched"])
def test_a_sweep_on_a_full_disk_is_one_line_and_leaves_no_empty_shards_folder(tmp_path, monkeypatch, capsys, how):
    from underspec.sweeps import store

    with contextlib.ExitStack() as stack:
        if how == "tmpfs":
            disk = stack.enter_context(tmpfs(tmp_path / "disk", full=True))
        else:
            disk = tmp_path

            def full_disk(*args, **kwargs):
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(store, "atomic_text", full_disk)
        assert main(["sweep", "--seeds", "0", "1", "--classes", "2", "--l1", "0", "--epochs", "1", "--n-train", "100",
                     "--device", "cpu", "--no-progress", "--out", str(disk / "s")]) == 2
        err = capsys.readouterr().err
        one_line(err)
        assert "no space left on device while writing" in err and "sweep.yaml" in err, err
        assert left_in(disk) == [], "the sweep left its folder (an empty shards/) behind"


# two trains into one --out, and a read-only output

def test_two_trains_into_one_out_the_loser_keeps_its_run_in_the_fallback(tmp_path, monkeypatch, capsys):
    """Both `underspec train --out r` pass the check before training; the other finishes and saves first. The
    loser says so in one line (no "free some space"), and its trained run is in the fallback folder it names."""
    from underspec.training import engine

    out = tmp_path / "r"
    argv = ["train", *TINY_TRAIN, "--out", str(out)]
    real = engine.train

    def while_another_trains(*args, **kwargs):
        run = real(*args, **kwargs)
        monkeypatch.setattr(engine, "train", real)
        assert main(argv) == 0  # the other `underspec train`, into the same --out, finishes first
        return run

    monkeypatch.setattr(engine, "train", while_another_trains)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    one_line(err)
    assert "is not empty" in err and "saved in" in err and "free some space" not in err, err
    kept = Path(err.split("saved in ")[1].split(" instead")[0])
    assert load_run(kept).grid.seeds == (0, 1) and load_run(out).grid.seeds == (0, 1)
    assert not list(tmp_path.glob(".r.tmp-*"))


def test_a_run_that_appears_at_the_rename_is_said_as_such(tmp_path, monkeypatch, capsys):
    """The other train saves between our check and our rename (ENOTEMPTY): the line says the folder appeared,
    not "free some space", and the run is kept in the fallback folder."""
    from underspec.training import run as runs

    out = tmp_path / "r"
    argv = ["train", *TINY_TRAIN, "--out", str(out)]
    real = runs.remove_stale_temporaries  # called by a save after its checks, before it writes
    raced = []

    def the_other_saves_first(folder, pattern):
        if not raced and folder == tmp_path:
            raced.append(True)
            assert main(argv) == 0
        return real(folder, pattern)

    monkeypatch.setattr(runs, "remove_stale_temporaries", the_other_saves_first)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    one_line(err)
    assert "appeared while it was being written" in err and "free some space" not in err, err
    kept = Path(err.split("saved in ")[1].split(" instead")[0])
    assert load_run(kept).grid.seeds == (0, 1) and load_run(out).grid.seeds == (0, 1)


def test_write_error_names_a_target_that_appeared_and_a_read_only_place_without_space_advice():
    from underspec.files import write_error

    for code in (errno.ENOTEMPTY, errno.EEXIST):
        message = str(write_error("runs/r", OSError(code, os.strerror(code))))
        assert "appeared while it was being written" in message and "space" not in message
    assert "space" not in str(write_error("runs/r", OSError(errno.EROFS, "Read-only file system")))
    assert "free some space" in str(write_error("runs/r", OSError(errno.ENOSPC, "No space left on device")))


def test_a_read_only_output_is_refused_before_any_work(tmp_path, small, monkeypatch, capsys):
    """On a read-only tmpfs: `train --out`, `sweep --out` and `report --out` refused in one line before any
    work (train: before the data load); `load_or_train` warns, trains, and returns the run."""
    with tmpfs(tmp_path / "ro", "64k", read_only=True) as ro:
        real_load = underspec.training.data.load_dataset
        monkeypatch.setattr(underspec.training.data, "load_dataset",
                            lambda *a, **k: pytest.fail("data loaded before the output was checked"))
        for argv in (["train", *TINY_TRAIN, "--out", str(ro / "r")],
                     ["sweep", "--seeds", "0", "1", "--classes", "2", "--out", str(ro / "s"), "--dry-run"],
                     ["report", str(tmp_path / "nothing"), "--out", str(ro / "report")]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            one_line(err)
            assert "cannot be written (Read-only file system" in err and "space" not in err, err
        monkeypatch.setattr(underspec.training.data, "load_dataset", real_load)
        with pytest.warns(UserWarning, match="Read-only file system.*trained but not cached"):
            run = underspec.load_or_train(Grid(seeds=(0,), epochs=1), small, cache_dir=ro / "cache", progress=False)
        assert run.grid.seeds == (0,) and not list(ro.iterdir())


def test_an_empty_training_subset_says_so_not_a_batch_size(mnist5k):
    """Subset mode with no training image of the digits a network learns: the line says what is missing; it
    does not advise a batch size of 0 or less."""
    no_low_digits = mnist5k.y_train >= 2
    data = underspec.Dataset("mine", mnist5k.x_train[no_low_digits][:300], mnist5k.y_train[no_low_digits][:300],
                             mnist5k.x_test[:50], mnist5k.y_test[:50])
    with pytest.raises(UnderspecError) as err:
        train(Grid(class_mode="subset", n_classes=(2, 10), epochs=1), data, progress=False)
    message = str(err.value)
    assert "has no training images of the digits 0..1 that a network with C = 2 in subset mode sees" in message
    assert "batch" not in message and "\n" not in message

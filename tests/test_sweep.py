"""Sweeps: config checks, shard plans, the results store, resuming, and the local and submitit executors.

The end-to-end tests execute the real notebook through papermill on a tiny grid (2 seeds, 1 epoch, 200
training images); they are marked slow.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from underspec import UnderspecError
from underspec.cli import build_parser, config_from_args
from underspec.sweeps.config import DEFAULT_NOTEBOOK, SweepConfig, plan_shards, slurm_minutes
from underspec.sweeps.execute import ShardError, check_notebook, prepare, run_sweep
from underspec.sweeps.store import FORMAT, load_results, lock, shard_checksums, shard_status

TINY = dict(dataset="mnist-5k", n_train=200, n_test=100, seeds=[0, 42], l1=[0.0, 0.01], n_classes=[3, 10],
            epochs=1, device="cpu")


def tiny(tmp_path, **changes) -> SweepConfig:
    return SweepConfig.from_dict({**TINY, "out": str(tmp_path / "results"), "shards": 2, **changes})


def parse(argv):
    return build_parser().parse_args(argv)


# --------------------------------------------------------------------------------------------- configuration

def test_defaults_are_the_papers_grid():
    config = SweepConfig()
    assert config.grid() == __import__("underspec").Grid.paper()
    assert len(config.plan()) == 9  # one shard per class count
    assert all(len(shard) == 6 and shard.l1 == config.l1 for shard in config.plan())


def test_ranges_and_strings_are_read():
    config = SweepConfig.from_dict({"seeds": "0-2", "n_classes": ["2-4", 10], "l1": "0 0.001"})
    assert config.seeds == (0, 1, 2)
    assert config.n_classes == (2, 3, 4, 10)
    assert config.l1 == (0.0, 0.001)


@pytest.mark.parametrize("bad, message", [
    ({"seed": [0]}, "unknown key 'seed'.*did you mean 'seeds'"),
    ({"classes": [2]}, "unknown key 'classes'.*n_classes"),
    ({"seeds": []}, "seed list is empty"),
    ({"l1": []}, "L1 list is empty"),
    ({"n_classes": [1, 2]}, "class counts must be integers in 2..10"),
    ({"n_classes": "2-11"}, "class counts must be integers in 2..10"),
    ({"n_classes": "10-2"}, "range '10-2' is empty"),
    ({"l1": [-0.1]}, "L1 strengths must be finite and >= 0"),
    ({"seeds": [0, 0]}, "duplicate seed"),
    ({"l1": ["x"]}, "cannot read 'x' as a number"),
    ({"dataset": "cifar"}, "unknown data set 'cifar'"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"shards": 2, "shard_size": 3}, "either shards .* or shard_size"),
    ({"shards": 100}, "only 54 .* configurations"),
    ({"executor": "sge"}, "unknown executor 'sge'"),
    ({"jobs": 0}, "jobs must be a positive integer"),
    ({"time": "soon"}, "cannot read the time limit 'soon'"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"pairs": "some"}, "unknown pairs 'some'"),
    ({"records": "yes"}, "records must be true, false or auto"),
])
def test_bad_configs_are_rejected_with_a_clear_message(bad, message):
    with pytest.raises(UnderspecError, match=message):
        SweepConfig.from_dict(bad)


def test_yaml_file_and_flag_overrides(tmp_path):
    path = tmp_path / "sweep.yml"
    path.write_text("seeds: [0, 42]\nl1: [0, 0.01]\nn_classes: 2-4\nepochs: 2\nout: somewhere\n")
    config = SweepConfig.from_yaml(path, epochs=3)
    assert (config.seeds, config.l1, config.n_classes, config.epochs) == ((0, 42), (0.0, 0.01), (2, 3, 4), 3)
    path.write_text("seeds: [0, 42]\nlambda: [0]\n")
    with pytest.raises(UnderspecError, match=f"unknown key 'lambda' in {path}"):
        SweepConfig.from_yaml(path)
    path.write_text("seeds: [0, 42\n")
    with pytest.raises(UnderspecError, match="cannot read the config"):
        SweepConfig.from_yaml(path)
    with pytest.raises(UnderspecError, match="does not exist"):
        SweepConfig.from_yaml(tmp_path / "absent.yml")


def test_cli_flags_make_the_same_config_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"seeds": [0, 42], "l1": [0, 0.01], "n_classes": "2-10", "epochs": 5}))
    from_flags = config_from_args(parse(["sweep", "--seeds", "0", "42", "--l1", "0", "0.01", "--classes",
                                            "2-10", "--epochs", "5", "--out", "x"]))
    from_file = config_from_args(parse(["sweep", str(path), "--out", "x"]))
    assert from_flags == from_file
    assert from_flags.fingerprint() == from_file.fingerprint()
    overridden = config_from_args(parse(["sweep", str(path), "--epochs", "7", "--out", "x"]))
    assert overridden.epochs == 7 and overridden.n_classes == tuple(range(2, 11))


@pytest.mark.parametrize("value, minutes", [("90", 90), (45, 45), ("02:00:00", 120), ("1:30", 90),
                                            ("1-00:00:00", 1440), ("0:00:30", 1)])
def test_time_limits(value, minutes):
    assert slurm_minutes(str(value)) == minutes


# ------------------------------------------------------------------------------------------------ shard plans

def covers(plan, l1, classes):
    got = sorted((v, c) for shard in plan for v in shard.l1 for c in shard.n_classes)
    return got == sorted((v, c) for v in l1 for c in classes)


@pytest.mark.parametrize("kwargs, sizes", [
    ({}, [3, 3, 3]),
    ({"shards": 1}, [9]),
    ({"shards": 2}, [6, 3]),
    ({"shards": 3}, [3, 3, 3]),
    ({"shards": 5}, [2, 1, 2, 1, 3]),
    ({"shards": 9}, [1] * 9),
    ({"shard_size": 1}, [1] * 9),
    ({"shard_size": 2}, [2, 1, 2, 1, 2, 1]),
    ({"shard_size": 6}, [6, 3]),
    ({"shard_size": 100}, [9]),
])
def test_shard_plans_cover_the_grid_once_with_every_seed(kwargs, sizes):
    l1, classes = (0.0, 0.001, 0.01), (2, 5, 10)
    plan = plan_shards(l1, classes, **kwargs)
    assert covers(plan, l1, classes)
    assert [s.index for s in plan] == list(range(len(plan)))
    if sizes is not None:
        assert [len(s) for s in plan] == sizes
    if "shards" in kwargs:
        assert len(plan) == kwargs["shards"]
    config = SweepConfig(seeds=(0, 42), l1=l1, n_classes=classes, **kwargs)
    for shard in plan:  # each shard is a sub-grid holding all seeds
        assert shard.grid(config).seeds == (0, 42)


def test_shards_are_balanced():
    plan = plan_shards(tuple(range(6)), tuple(range(2, 11)), shards=20)
    assert len(plan) == 20 and max(map(len, plan)) - min(map(len, plan)) <= 1


def test_fingerprint_depends_on_science_not_execution(tmp_path):
    base = tiny(tmp_path)
    assert base.fingerprint() == base.replace(out="elsewhere", device="cuda", executor="slurm", jobs=4,
                                              gpus=1, time="60", records=True).fingerprint()
    for change in ({"epochs": 2}, {"seeds": [0, 1]}, {"n_train": 300}, {"shards": 1}, {"pairs": "reference"}):
        assert base.fingerprint() != base.replace(**change).fingerprint(), change
    # two spellings of the same plan are the same sweep
    assert base.replace(shards=None, shard_size=2).fingerprint() == base.fingerprint()


# ------------------------------------------------------------------------------------- checks before running

def test_a_results_folder_of_another_sweep_is_refused(tmp_path):
    config = tiny(tmp_path)
    out, _ = prepare(config)
    assert (out / "sweep.yaml").is_file()
    prepare(config)  # the same sweep again: fine
    prepare(config.replace(jobs=2, device="auto"))  # another way to run it: fine
    with pytest.raises(UnderspecError, match=r"another sweep \(it differs in epochs: 1 there, 2 here\)"):
        prepare(config.replace(epochs=2))
    with pytest.raises(UnderspecError, match="differs in shards: 2 there, 1 here"):
        prepare(config.replace(shards=1))
    with pytest.raises(UnderspecError, match="another sweep"):  # refused before any shard runs
        run_sweep(config.replace(n_classes=[2, 10]), progress=False)
    assert list((out / "shards").iterdir()) == []


def test_a_foreign_or_corrupt_folder_is_refused(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UnderspecError, match="not empty and holds no sweep"):
        prepare(tiny(tmp_path).replace(out=str(tmp_path / "other")))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "sweep.yaml").write_text("just: text\n")
    with pytest.raises(UnderspecError, match="not an underspec sweep file"):
        prepare(tiny(tmp_path).replace(out=str(tmp_path / "bad")))
    with pytest.raises(UnderspecError, match="no results folder"):
        prepare(tiny(tmp_path).replace(out=None))


def test_too_many_images_asked_for(tmp_path):
    with pytest.raises(UnderspecError, match="n_train = 9000 but mnist-5k has only 4000"):
        prepare(tiny(tmp_path, n_train=9000))
    assert not (tmp_path / "results").exists()  # nothing written


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_a_local_sweep_on_a_missing_gpu_is_refused(tmp_path):
    with pytest.raises(UnderspecError, match="no GPU is visible"):
        prepare(tiny(tmp_path, device="cuda"))
    prepare(tiny(tmp_path, device="cuda", executor="slurm"))  # the nodes have their own GPUs


def test_a_broken_notebook_is_refused_before_running(tmp_path):
    notebook = tmp_path / "nb.md"
    text = DEFAULT_NOTEBOOK.read_text()
    notebook.write_text("\n".join(line for line in text.splitlines() if not line.startswith("dataset = ")))
    with pytest.raises(UnderspecError, match="parameters cell of .* lacks dataset"):
        prepare(tiny(tmp_path, notebook=str(notebook)))
    with pytest.raises(UnderspecError, match="does not exist"):
        prepare(tiny(tmp_path, notebook=str(tmp_path / "absent.md")))


def test_the_shipped_notebook_declares_every_parameter():
    check_notebook(DEFAULT_NOTEBOOK)


def test_the_cli_rejects_bad_input_before_any_shard(tmp_path, capsys):
    from underspec.cli import main

    out = tmp_path / "r"
    assert main(["sweep", "--seeds", "0", "42", "--classes", "1-3", "--out", str(out)]) == 2
    assert "class counts must be integers in 2..10" in capsys.readouterr().err
    assert not out.exists()
    config = tmp_path / "c.yaml"
    config.write_text("seeds: [0, 42]\nbatchsize: 32\n")
    assert main(["sweep", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key 'batchsize'" in err and "batch_size" in err
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    args = parse(["sweep", "--seeds", "0", "42", "--l1", "0", "0.01", "--classes", "2-4", "--n-train", "100",
                  "--shards", "2", "--out", str(out), "--dry-run"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "12 networks" in text and "in 2 shards" in text and "shard-001  pending" in text
    assert not out.exists()


# ------------------------------------------------------------------------------------------ the results store

def test_a_marker_is_needed_and_must_match(tmp_path):
    config = tiny(tmp_path)
    out, plan = prepare(config)
    shard = plan[0]
    folder = out / "shards" / shard.id
    (folder / "run").mkdir(parents=True)
    for name in ("run.json", "tensors.pt", "history.parquet"):
        (folder / "run" / name).write_text("{}")
    (folder / "notebook.ipynb").write_text("{}")
    pd.DataFrame({"x": [1]}).to_parquet(folder / "metrics.parquet")
    fp = config.fingerprint()
    assert shard_status(out, shard, fp) == "pending"  # results without a marker are not complete
    marker = {"format": FORMAT, "fingerprint": fp, "shard": shard.id, "l1": list(shard.l1),
              "n_classes": list(shard.n_classes), "sha256": shard_checksums(folder)}
    (folder / "COMPLETE.json").write_text(json.dumps(marker))
    assert shard_status(out, shard, fp) == "complete"
    assert shard_status(out, plan[1], fp) == "pending"  # a marker of another shard
    assert shard_status(out, shard, "0" * 16) == "pending"  # of another sweep
    pd.DataFrame({"x": [2]}).to_parquet(folder / "metrics.parquet")
    assert shard_status(out, shard, fp) == "pending"  # a table changed after the marker
    (folder / "COMPLETE.json").write_text("{trunc")
    assert shard_status(out, shard, fp) == "pending"


def test_a_running_sweep_locks_its_folder(tmp_path):
    out, _ = prepare(tiny(tmp_path))
    with lock(out):
        with pytest.raises(UnderspecError, match="another `underspec sweep` is writing"):
            with lock(out):
                pass
    with lock(out):  # released
        pass


# ------------------------------------------------------------------------- end to end (papermill, slow)

def write_yaml(path: Path, config: SweepConfig) -> Path:
    keys = {k: v for k, v in config.to_dict().items() if k in TINY or k in ("shards", "out")}
    path.write_text(yaml.safe_dump(keys))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An uninterrupted 2-shard sweep, run through the CLI, and its report."""
    from underspec.cli import main

    folder = tmp_path_factory.mktemp("finished")
    config = tiny(folder)
    assert main(["sweep", str(write_yaml(folder / "sweep.yml", config)), "--no-progress"]) == 0
    assert main(["report", config.out]) == 0
    return config, Path(config.out)


def marker_stamps(out: Path, shard="shard-000"):
    folder = out / "shards" / shard
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.mark.slow
def test_two_shard_sweep_end_to_end(finished, mnist5k):
    import underspec

    config, out = finished
    results = load_results(out)
    assert results.missing == [] and results.config == config
    for shard in config.plan():  # each shard: executed notebook with its parameters, its Run, its table
        folder = out / "shards" / shard.id
        assert yaml.safe_load((folder / "parameters.yaml").read_text())["l1"] == list(shard.l1)
        notebook = (folder / "notebook.ipynb").read_text()
        assert "injected-parameters" in notebook and "saved run/ and metrics.parquet" in notebook
        run = underspec.load_run(folder / "run")
        assert run.grid == shard.grid(config) and run.data_name == "mnist-5k[:200,:100]"
        assert set(pd.read_parquet(folder / "metrics.parquet").n_classes) == set(shard.n_classes)
    # one tidy table across the shards: exactly what one run of the whole grid gives
    data = mnist5k.take(200, 100)
    whole = underspec.train(config.grid(), data, device="cpu", progress=False, snapshots=False, embeddings=False)
    pd.testing.assert_frame_equal(results.metrics, underspec.study_tables(whole, data)["metrics"])
    pd.testing.assert_frame_equal(results.history, whole.history)
    report = out / "report"
    pd.testing.assert_frame_equal(pd.read_parquet(report / "metrics.parquet"), results.metrics)
    assert len(pd.read_csv(report / "metrics.csv")) == len(results.metrics) == 4 * 1 * 3  # configs x pairs x targets
    summary = pd.read_parquet(report / "summary.parquet")
    assert {"mean", "ci_low", "ci_high", "null"} <= set(summary.columns)
    for name in ("lambda", "classes"):
        assert (report / f"figure-3-1-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (report / f"figure-3-1-{name}.svg").read_bytes()[:1000]


@pytest.mark.slow
def test_rerunning_a_finished_sweep_recomputes_nothing(finished):
    config, out = finished
    before = {s.id: marker_stamps(out, s.id) for s in config.plan()}
    result = run_sweep(config.replace(jobs=2), progress=False)  # another way to run: still the same sweep
    assert result.ran == [] and result.skipped == ["shard-000", "shard-001"]
    assert {s.id: marker_stamps(out, s.id) for s in config.plan()} == before


def _descendants(pid: int) -> list[int]:
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the kernel processes")
def test_a_killed_sweep_resumes_without_recomputing_and_gives_the_same_table(tmp_path, finished):
    config = tiny(tmp_path)
    out = Path(config.out)
    # the sweep, through the CLI, in its own process; killed (with its kernel) while shard-001 runs
    proc = subprocess.Popen([sys.executable, "-m", "underspec.cli", "sweep",
                             str(write_yaml(tmp_path / "sweep.yml", config)), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list((out / "shards").glob(".shard-001.attempt-*/notebook.partial.ipynb")):
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "shard-001 never started"
            time.sleep(0.05)
    finally:
        victims = [proc.pid, *_descendants(proc.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    assert shard_status(out, config.plan()[0], config.fingerprint()) == "complete"
    assert not (out / "shards" / "shard-001").exists()  # nothing that looks like a result
    results = load_results(out)
    assert results.missing == ["shard-001"]
    with pytest.raises(UnderspecError, match="1 of 2 shards .* not complete .*shard-001"):
        load_results(out, allow_missing=False)

    first = marker_stamps(out)
    result = run_sweep(config, progress=False)
    assert result.ran == ["shard-001"] and result.skipped == ["shard-000"]
    assert marker_stamps(out) == first  # shard-000 was not touched
    assert not list((out / "shards").glob(".shard-*"))  # the killed attempt was cleared
    pd.testing.assert_frame_equal(load_results(out).metrics, load_results(finished[1]).metrics)


@pytest.mark.slow
def test_the_submitit_path_runs_end_to_end_with_its_local_executor(tmp_path, finished):
    config = tiny(tmp_path, executor="slurm", partition="debug", time="10", cpus=1)
    result = run_sweep(config, progress=False, cluster="local")
    assert sorted(result.ran) == ["shard-000", "shard-001"]
    assert list((Path(config.out) / "slurm").glob("*/*_log.out"))  # submitit's job folders
    pd.testing.assert_frame_equal(load_results(config.out).metrics, load_results(finished[1]).metrics)


@pytest.mark.slow
def test_a_failing_shard_is_reported_kept_apart_and_retried(tmp_path, finished):
    broken = tmp_path / "broken.md"
    broken.write_text(DEFAULT_NOTEBOOK.read_text().replace(
        "run = underspec.train(", "assert 10 not in n_classes, 'boom'\nrun = underspec.train("))
    config = tiny(tmp_path, notebook=str(broken), jobs=2)  # two worker processes
    with pytest.raises(ShardError, match=r"1 of 2 shards failed \(shard-001: notebook cell \d+: AssertionError: boom\)"):
        run_sweep(config, progress=False)
    shards = Path(config.out) / "shards"
    assert (shards / "shard-000" / "COMPLETE.json").exists()
    assert not (shards / "shard-001").exists()
    assert "boom" in (shards / "shard-001.failed" / "notebook.partial.ipynb").read_text()
    first = marker_stamps(Path(config.out))
    result = run_sweep(config.replace(notebook=None, jobs=1), progress=False)  # fixed notebook: same sweep
    assert result.ran == ["shard-001"] and marker_stamps(Path(config.out)) == first
    assert not (shards / "shard-001.failed").exists()
    pd.testing.assert_frame_equal(load_results(config.out).metrics, load_results(finished[1]).metrics)


@pytest.mark.slow
def test_the_study_chapter_reads_a_sweep_instead_of_training(finished, tmp_path):
    """book/study.md with its sweep_dir parameter: the figures and claims come from the sweep's table."""
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    config, out = finished
    book = Path(__file__).resolve().parent.parent / "book"
    jupytext.write(jupytext.read(book / "study.md"), tmp_path / "study.ipynb")
    cache = tmp_path / "cache"
    nb = papermill.execute_notebook(str(tmp_path / "study.ipynb"), str(tmp_path / "study.out.ipynb"),
                                    parameters={"sweep_dir": str(out), "results_dir": str(cache)},
                                    cwd=str(book), kernel_name="python3", progress_bar=False)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3, "the three Figure 3.1 views"
    assert str(out) in str(outputs), "the page says which sweep it shows"
    assert not cache.exists(), "reading a sweep trains nothing"


# ------------------------------------------------------------------------------ Hardening II: sweeps

@pytest.mark.slow
def test_a_sweep_whose_every_network_diverges_fails_in_one_line(tmp_path, capsys):
    from underspec.cli import main

    path = tmp_path / "sweep.yml"
    path.write_text(yaml.safe_dump({**TINY, "lr": 1e20, "l1": [0.0], "n_classes": [10], "shards": 1,
                                    "out": str(tmp_path / "results")}))
    assert main(["sweep", str(path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "every one of the 2 networks diverged" in err and "--lr" in err, err


def test_a_foreign_table_in_a_resigned_shard_is_not_reported(finished, tmp_path):
    """A shard whose marker matches its files, but one of whose tables is not ours (no l1, n_classes): the shard
    counts as not complete, never a KeyError."""
    import shutil

    from underspec.sweeps.store import MARKER

    config, out = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    folder = copy / "shards" / config.plan()[0].id
    pd.DataFrame({"x": [1, 2]}).to_parquet(folder / "foreign.parquet", index=False)
    marker = json.loads((folder / MARKER).read_text())
    (folder / MARKER).write_text(json.dumps({**marker, "sha256": shard_checksums(folder)}))  # re-signed
    results = load_results(copy)
    assert results.missing == [config.plan()[0].id] and "foreign" not in results.tables


def test_links_and_files_where_a_sweep_writes_are_refused(finished, tmp_path):
    import shutil

    config, out = finished
    for name, make in (("shards", lambda p: p.write_text("x")), ("sweep.yaml", None)):
        copy = tmp_path / f"copy-{name}"
        shutil.copytree(out, copy)
        target = copy / name
        if make is None:  # a link where the sweep file was
            target.rename(copy / "elsewhere.yaml")
            os.symlink(copy / "elsewhere.yaml", target)
            message = "is a link"
        else:
            shutil.rmtree(target)
            make(target)
            message = "is a file: remove it"
        with pytest.raises(UnderspecError, match=message):
            prepare(config.replace(out=str(copy)), write=False)


def test_a_report_that_cannot_be_written_leaves_no_half_report(finished, tmp_path, monkeypatch):
    from underspec.sweeps import report as reporting

    config, out = finished
    calls = []

    def failing_csv(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        Path(path).write_text("a")

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing_csv)
    target = tmp_path / "report"
    with pytest.raises(UnderspecError, match="no space left on device while writing"):
        reporting.report(out, out=target, figures=False)
    assert list(target.iterdir()) == [] and not list(tmp_path.glob(".report.tmp-*"))


# ------------------------------------------------------------------- Hardening II: what a config may ask for

MILLION_SEEDS = {
    "a range of a million seeds": ("seeds: 0-999999\n", "the range '0-999999' has 1,000,000 values; at most 10,000"),
    "100 ranges of 10,000 seeds": ("seeds: [" + ", ".join(f"{i * 10_000}-{i * 10_000 + 9_999}" for i in range(100))
                                   + "]\n", "seeds: more than 10,000 values; split the work"),
    "20,000 seeds listed": ("seeds: [" + ", ".join(map(str, range(20_000))) + "]\n", "seeds: 20,000 values; at most"),
    "a million seeds listed (8 MB)": (lambda: "seeds: [" + ", ".join(map(str, range(1_000_000))) + "]\n",
                                      "larger than 1,048,576 bytes: a sweep config is a few lines"),
    "a seed twice": ("seeds: [0, 1, 1]\n", "duplicate seed(s) [1]: list each seed once"),
    "a seed in a range and again": ("seeds: [0-5, 3]\n", "duplicate seed(s) [3]: list each seed once"),
    "the same range twice": ("seeds: [0-9999, 0-9999]\n", "seeds: more than 10,000 values"),
}


@pytest.mark.parametrize("name", list(MILLION_SEEDS))
def test_too_many_or_duplicate_seeds_in_a_config_are_refused_before_expanding(name, tmp_path, monkeypatch, capsys):
    """One line, exit 2, nothing written; no range longer than the bound is ever built."""
    import builtins

    from underspec.cli import main
    from underspec.training import grid as grids

    def bounded_range(*args):
        values = builtins.range(*args)
        assert len(values) <= 10_000, "a range was expanded before its length was checked"
        return values

    monkeypatch.setattr(grids, "range", bounded_range, raising=False)
    text, message = MILLION_SEEDS[name]
    config = tmp_path / "c.yaml"
    config.write_text(text() if callable(text) else text)
    started = time.perf_counter()
    assert main(["sweep", str(config), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists() and time.perf_counter() - started < 10


@pytest.mark.parametrize("flags, message", [
    (["--class-mode", "subset", "--n-train", "3"], "the first 3 training images of mnist-5k hold no digit 0..1"),
    (["--class-mode", "subset", "--n-test", "3"], "the first 3 test images of mnist-5k hold no digit 0..1"),
    (["--n-train", "10"], "batch size 64 is larger than the 10 training images"),
])
def test_a_sweep_whose_images_leave_a_network_nothing_is_refused_before_any_shard(tmp_path, capsys, flags, message):
    """An empty training subset (subset mode, too few images taken) is said for what it is, once, before any
    shard, not in every shard's notebook; never as advice to use a batch size of 0."""
    from underspec.cli import main

    assert main(["sweep", "--seeds", "0", "1", "--classes", "2", "--epochs", "1", "--out", str(tmp_path / "s"),
                 "--dry-run", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "batch size 0" not in err, err
    assert not (tmp_path / "s").exists()


def test_a_received_sweep_file_runs_into_its_own_folder_from_the_command_line(tmp_path, capsys):
    """`underspec sweep received/sweep.yaml`: the sweep goes to the folder that holds the file, whatever its
    recorded out says (`../../escape` here); nothing is written there."""
    from underspec.cli import main

    config = tiny(tmp_path, shards=1, l1=[0.0], n_classes=[10])
    out, _ = prepare(config)
    received = tmp_path / "a" / "b" / "received"
    received.mkdir(parents=True)
    doc = yaml.safe_load((out / "sweep.yaml").read_text())
    doc["config"]["out"] = "../../escape"
    (received / "sweep.yaml").write_text(yaml.safe_dump(doc))
    assert main(["sweep", str(received / "sweep.yaml"), "--dry-run"]) == 0
    assert f"-> {received.resolve()}" in capsys.readouterr().out
    assert not (tmp_path / "a" / "escape").exists() and not (tmp_path / "escape").exists()


def test_a_relative_out_in_a_config_is_read_against_the_working_folder(tmp_path, monkeypatch, capsys):
    """A hand-written config's relative ``out`` is kept as written and read against the working folder, as
    the committed studies rely on (results/<study>/config.yaml says ``out: runs/studies/<study>``, run from
    the checkout's root); only a results folder's own sweep.yaml is tied to where it lies (test above)."""
    from underspec.cli import main

    (tmp_path / "configs").mkdir()
    (tmp_path / "work").mkdir()
    config = tmp_path / "configs" / "c.yaml"
    config.write_text("seeds: [0, 1]\nl1: [0]\nn_classes: [2]\nepochs: 1\nout: runs/mine\n")
    assert SweepConfig.from_yaml(config).out == "runs/mine"
    monkeypatch.chdir(tmp_path / "work")
    assert main(["sweep", str(config), "--dry-run"]) == 0
    assert f"-> {(tmp_path / 'work' / 'runs' / 'mine').resolve()}" in capsys.readouterr().out

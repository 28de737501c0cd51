"""``underspec tune CONFIG.yaml``: every bad tuning config gets one line and exit code 2, before any training and
without writing a file (the table, in the style of tests/test_hostile.py); a good one trains, resumes, and
refuses a journal of another config."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from underspec.cli import main

GOOD = """\
dataset: mnist-5k
n_train: 300
n_test: 100
space:
  lr: {low: 0.003, high: 0.3, log: true}
  optimizer: [sgd, sgd-momentum, adam@3e-4]
fixed: {epochs: 2, validation: 0.25}
seeds: 2
trials: 4
batch: 2
"""


def config(tmp: Path, name: str, text: str) -> str:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def bad(tmp: Path, name: str, replace: tuple[str, str] | None = None, extra: str = "") -> str:
    text = GOOD if replace is None else GOOD.replace(*replace)
    assert replace is None or replace[0] in GOOD
    return config(tmp, name, text + extra)


def searched(tmp: Path, name: str, line: str) -> str:
    """GOOD with one more knob in its space."""
    return config(tmp, name, GOOD.replace("space:\n", f"space:\n  {line}\n"))


def cases(tmp: Path):
    """(name, argv, expected message part)."""
    (tmp / "afile").write_text("x")
    return [
        ("an unknown sampler", ["tune", bad(tmp, "s", extra="sampler: bayes\n")], "unknown sampler 'bayes'"),
        ("an unknown sampler flag", ["tune", bad(tmp, "sf"), "--sampler", "cmaes"], "unknown sampler 'cmaes'"),
        ("an empty range", ["tune", bad(tmp, "e", ("low: 0.003", "low: 0.3"))], "the range of lr is empty"),
        ("an inverted range", ["tune", bad(tmp, "i", ("low: 0.003, high: 0.3", "low: 0.3, high: 0.003"))],
         "the range of lr is inverted"),
        ("an empty list", ["tune", bad(tmp, "el", ("[sgd, sgd-momentum, adam@3e-4]", "[]"))],
         "the list of optimizer is empty"),
        ("a log range from 0", ["tune", bad(tmp, "l0", ("low: 0.003", "low: 0"))], "needs low > 0"),
        ("a range of optimizers", ["tune", bad(tmp, "ro", ("[sgd, sgd-momentum, adam@3e-4]", "{low: 1, high: 2}"))],
         "optimizer takes a list of values"),
        ("an unknown optimizer", ["tune", bad(tmp, "uo", ("adam@3e-4", "lion"))], "unknown optimizer 'lion'"),
        ("an unknown knob", ["tune", searched(tmp, "uk", "dropout: [0, 0.5]")],
         "space: 'dropout' is not a knob a search can vary"),
        ("one value searched", ["tune", searched(tmp, "ov", "depth: 2")], "put a single value under fixed"),
        ("a knob searched and fixed", ["tune", bad(tmp, "sf2", ("epochs: 2", "epochs: 2, lr: 0.1"))],
         "lr is both searched (space) and fixed"),
        ("no validation split", ["tune", bad(tmp, "nv", ("validation: 0.25", "validation: null"))],
         "never the test set"),
        ("a negative learning rate", ["tune", bad(tmp, "nl", ("low: 0.003, high: 0.3, log: true", "low: -1, high: 0.3"))],
         "space: the learning rate must be > 0"),
        ("a bad width", ["tune", searched(tmp, "bw", "hidden: [0, 16]")], "space: hidden must be a positive integer"),
        ("a bad shape", ["tune", searched(tmp, "bs", "widths: [64-32, 64-0]")], "every width must be"),
        ("widths with hidden", ["tune", searched(tmp, "wh", "widths: [64-32, 32-64]\n  hidden: [8, 16]")],
         "search widths, or hidden and depth, not both"),
        ("no space", ["tune", config(tmp, "ns", "seeds: 2\n")], "has no space"),
        ("an unknown key", ["tune", bad(tmp, "u", extra="budget: 10\n")], "unknown key 'budget'"),
        ("a grid smaller than the budget", ["tune", bad(tmp, "g", extra="sampler: grid\ngrid_points: 1\n")],
         "fewer than trials = 4"),
        ("a pruner with one epoch", ["tune", bad(tmp, "p", ("epochs: 2", "epochs: 1"), "pruner: hyperband\n")],
         "at least 2 epochs"),
        ("an unknown pruner", ["tune", bad(tmp, "up", extra="pruner: median\n")], "unknown pruner 'median'"),
        ("no seeds", ["tune", bad(tmp, "z", ("seeds: 2", "seeds: 0"))], "a count of seeds per trial"),
        ("an unknown metric", ["tune", bad(tmp, "m", extra="metric: test_acc\n")], "unknown metric 'test_acc'"),
        ("a missing config", ["tune", str(tmp / "nowhere.yaml")], "does not exist"),
        ("broken YAML", ["tune", config(tmp, "y", "space: [\n")], "fix the YAML"),
        ("storage below a file", ["tune", bad(tmp, "st"), "--storage", str(tmp / "afile" / "s.journal")],
         "storage"),
        ("slurm without Slurm", ["tune", bad(tmp, "sl"), "--executor", "slurm"], "Slurm is not available"),
        ("a space the memory budget cannot train", ["tune", bad(tmp, "mb", extra="memory_budget: 1000000\n")],
         "the search space's largest setting"),
        ("a space of 10^8 hidden units", ["tune", searched(tmp, "h8", "hidden: {low: 8, high: 100000000}")],
         "the search space's largest setting"),
    ]


CASE_NAMES = [c[0] for c in cases(Path(__import__("tempfile").mkdtemp()))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_a_bad_tune_config_is_one_line_exit_2_and_writes_nothing(name, tmp_path, monkeypatch, capsys):
    files = tmp_path / "files"
    files.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    argv, expected = next((argv, msg) for n, argv, msg in cases(files) if n == name)
    monkeypatch.chdir(work)
    monkeypatch.setattr("shutil.which", lambda name: None)  # no Slurm here, whatever the machine has
    before = sorted(p.name for p in files.rglob("*"))
    started = time.perf_counter()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err, err
    assert err.count("\n") <= 2 and "Traceback" not in err and len(err) < 600, err
    assert not list(work.iterdir()), "the command wrote into the working folder"
    assert sorted(p.name for p in files.rglob("*")) == before, "the command wrote beside its inputs"
    assert time.perf_counter() - started < 20, "refused too slowly"


def test_tune_trains_resumes_and_refuses_a_journal_of_another_config(tmp_path, capsys):
    path = config(tmp_path, "study", GOOD)
    assert main(["tune", path, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "4 trials (4 complete); this run trained 4" in out and "best trial #" in out
    assert (tmp_path / "study.journal").is_file()
    assert main(["tune", path, "--no-progress"]) == 0  # complete: nothing more to train
    assert "this run trained 0" in capsys.readouterr().out
    assert main(["tune", path, "--no-progress", "--trials", "5"]) == 0  # a larger budget: the study goes on
    assert "5 trials (5 complete); this run trained 1" in capsys.readouterr().out
    other = config(tmp_path, "other", GOOD.replace("seeds: 2", "seeds: 3"))
    assert main(["tune", other, "--no-progress", "--storage", str(tmp_path / "study.journal"),
                 "--study", "study"]) == 2
    assert "holds a study 'study' of another config" in capsys.readouterr().err

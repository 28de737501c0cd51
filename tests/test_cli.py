"""The command line: a training run end to end, and every bad input rejected in one line, writing nothing."""

import pytest

from underspec import load_run
from underspec.cli import main


def test_train_prints_the_accuracy_table_and_saves_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--seeds", "0", "42", "--l1", "0", "0.01", "--classes", "2", "10", "--epochs", "1",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test_acc_mean" in printed and "test_acc_std" in printed
    run = load_run(out)
    assert len(run.grid) == 8 and run.grid.epochs == 1
    # the same command again reuses the run instead of failing or retraining
    assert main(["train", "--seeds", "0", "42", "--l1", "0", "0.01", "--classes", "2", "10", "--epochs", "1",
                 "--out", str(out), "--no-progress"]) == 0
    assert "already holds this run" in capsys.readouterr().out


def test_train_says_how_many_networks_the_stopping_rule_stopped(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--seeds", "0", "1", "--epochs", "5", "--stop-loss", "1.5", "--out", str(out),
                 "--no-progress"]) == 0
    stopped = load_run(out).members.stopped.tolist()
    assert all(1 <= e < 5 for e in stopped), stopped  # mnist-5k's loss falls below 1.5 within a few epochs
    assert (f"2 of 2 networks stopped, their training loss below 1.5 (after epoch {min(stopped)} to "
            f"{max(stopped)})") in capsys.readouterr().out


def test_classes_accept_ranges(tmp_path, capsys):
    assert main(["train", "--classes", "2-4", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    assert load_run(tmp_path / "r").grid.n_classes == (2, 3, 4)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar"], "unknown data set 'cifar'"),
    (["--classes", "1-10"], "class counts must be integers in 2..10"),
    (["--classes", "11"], "class counts must be integers in 2..10"),
    (["--classes", "two"], "invalid class count"),
    (["--l1", "-0.1"], "L1 strengths must be finite and >= 0"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--seeds"], "expected at least one argument"),
    (["--seeds", "0", "0"], "duplicate seed"),
    (["--optimizer", "rmsprop"], "unknown optimizer"),
    (["--paper", "--seeds", "1"], "--paper fixes the grid"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    epochs = [] if "--epochs" in args else ["--epochs", "1"]
    assert main(["train", *args, *epochs, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("underspec: error:")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_an_output_folder_holding_another_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--seeds", "0", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    before = sorted(p.name for p in out.iterdir())
    assert main(["train", "--seeds", "1", "--epochs", "1", "--out", str(out), "--no-progress"]) == 2
    assert "already holds a different run" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "other"), "--no-progress"]) == 2
    assert "already holds other files" in capsys.readouterr().err

"""Tuning with Optuna: a batch of trials trained as one grid gives every trial's members the networks of its own
grid; a pruned trial's members stop updating at the pruning epoch; a study resumes from its journal after a
killed worker with the same trial numbers and none lost."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from underspec import Grid, train
from underspec.tuning import tuner as tuner_module
from underspec.tuning.config import TuneConfig
from underspec.tuning.space import trial_grid
from underspec.tuning.tuner import seed_table, trials_table, tune

SPACE = {"lr": {"low": 0.003, "high": 0.3, "log": True}, "hidden": {"low": 4, "high": 24},
         "optimizer": ["sgd", "sgd-momentum", "adam@3e-4"]}


def config(tmp_path, **keys) -> TuneConfig:
    return TuneConfig.from_dict({"space": SPACE, "fixed": {"epochs": 3, "validation": 0.25}, "seeds": 2,
                                 "trials": 6, "batch": 3, "storage": str(tmp_path / "study.journal"), **keys})


@pytest.fixture
def captured(monkeypatch):
    """Every batch the tuner trains: (its parts, their runs)."""
    batches = []
    real = tuner_module.train_parts

    def spy(parts, data, **options):
        runs = real(parts, data, **options)
        batches.append((parts, runs))
        return runs

    monkeypatch.setattr(tuner_module, "train_parts", spy)
    return batches


def test_a_batch_of_trials_gives_each_trial_the_networks_of_its_own_grid(small, tmp_path, captured):
    c = config(tmp_path)
    result = tune(c, small, progress=False)
    assert len(captured) == 2 and [len(parts) for parts, _ in captured] == [3, 3]
    table = trials_table(result.study)
    assert list(table.number) == list(range(6)) and (table.state == "COMPLETE").all()
    for parts, runs in captured:
        for part, run in zip(parts, runs):
            alone = train(part, small, progress=False, probe_size=0)
            assert all(torch.equal(run.final[k], alone.final[k]) for k in alone.final)
    seeds = seed_table(result.study)
    for number, trial in seeds.groupby("number"):
        frozen = result.study.trials[number]
        grid = trial_grid(frozen.params, c.fixed, c.seeds)
        alone = train(grid, small, progress=False, probe_size=0)
        last = alone.history[alone.history.epoch == grid.epochs]
        assert list(trial.value) == list(last.val_acc) and frozen.value == pytest.approx(last.val_acc.mean(), abs=1e-12)
        assert frozen.user_attrs["seed_std"] == pytest.approx(np.std(last.val_acc, ddof=1))


def test_the_engine_stops_the_members_a_callback_names_at_that_epoch(small):
    grid = Grid(seeds=(0, 1), epochs=4, lr=[0.01, 0.1], validation=0.2)
    seen = []

    def stop_the_second_part_after_epoch_2(epoch, members, rows):
        seen.append((epoch, len(members), rows.shape[1]))
        return [part == 1 and epoch >= 2 for part, _ in members]

    run = train(grid, small, progress=False, probe_size=0, on_epoch=stop_the_second_part_after_epoch_2)
    assert seen[0] == (1, 4, 7)
    stopped = run.part(lr=0.1)
    assert stopped.meta["stopped"] == [2, 2] and run.part(lr=0.01).meta["stopped"] == [None, None]
    short = train(Grid(seeds=(0, 1), epochs=2, lr=0.1, validation=0.2), small, progress=False, probe_size=0)
    assert all(torch.equal(stopped.final[k], short.final[k]) for k in short.final)
    later = stopped.history[stopped.history.epoch > 2]
    assert (later.groupby("seed").val_acc.nunique() == 1).all() and (later.groupby("seed").test_acc.nunique() == 1).all()
    untouched = train(Grid(seeds=(0, 1), epochs=4, lr=0.01, validation=0.2), small, progress=False, probe_size=0)
    assert all(torch.equal(run.part(lr=0.01).final[k], untouched.final[k]) for k in untouched.final)


def test_a_pruned_trials_members_stop_updating_at_the_pruning_epoch(small, tmp_path, captured):
    c = config(tmp_path, pruner="successive-halving", trials=9, fixed={"epochs": 4, "validation": 0.25})
    result = tune(c, small, progress=False)
    table = trials_table(result.study)
    pruned = table[table.state == "PRUNED"]
    assert len(pruned) >= 1 and (table.state != "RUNNING").all()
    runs = {}
    number = 0
    for parts, batch in captured:
        for part, run in zip(parts, batch):
            runs[number] = (part, run)
            number += 1
    for _, row in pruned.iterrows():
        part, run = runs[row.number]
        epoch = int(row.pruned_at)
        assert run.meta["stopped"] == [epoch] * len(part)
        short = train(Grid(**{**part.to_dict(), "epochs": epoch}), small, progress=False, probe_size=0)
        assert all(torch.equal(run.final[k], short.final[k]) for k in short.final)
        assert result.study.trials[row.number].last_step == epoch


KILLED_WORKER = """
import os, signal, sys
import underspec
from underspec.tuning.config import TuneConfig
from underspec.tuning.tuner import tune
config = TuneConfig.from_dict(__import__("json").loads(sys.argv[1]))
data = underspec.load_dataset("mnist-5k").take(300, 100)
batches = []
def after_ask(trials):
    batches.append([t.number for t in trials])
    if len(batches) == 2:  # the second batch asked, none of it told: the worker dies (as under SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
tune(config, data, progress=False, after_ask=after_ask)
"""


def test_a_killed_workers_trials_are_taken_over_and_the_study_resumes(small, tmp_path):
    keys = {"space": SPACE, "fixed": {"epochs": 2, "validation": 0.25}, "seeds": 2, "trials": 7, "batch": 3,
            "sampler": "random", "storage": str(tmp_path / "study.journal")}
    done = subprocess.run([sys.executable, "-c", KILLED_WORKER, json.dumps(keys)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    c = TuneConfig.from_dict(keys)
    before = {t.number: (t.state.name, t.params) for t in tune_study(c).trials}
    assert sorted(before) == list(range(6))
    assert [before[n][0] for n in range(6)] == ["COMPLETE"] * 3 + ["RUNNING"] * 3
    result = tune(c, small, progress=False)
    after = {t.number: t for t in result.study.trials}
    assert sorted(after) == list(range(7)) and all(t.state.name == "COMPLETE" for t in after.values())
    assert all(after[n].params == before[n][1] for n in range(6))  # same numbers, same values: none lost
    assert all("taken_from" in after[n].user_attrs for n in (3, 4, 5))
    assert result.trained == [3, 4, 5, 6]


def tune_study(c):
    return tuner_module.open_study(c)

"""The committed tuning study (scripts/tuning_results.py): its tables, journals and provenance, its re-check
(one trial of the seed study retrained gives the committed validation accuracies), and the chapter's reader."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from underspec.studies import tuning_verdicts as tv

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "results" / tv.COMMITTED


def script():
    spec = importlib.util.spec_from_file_location("tuning_results", ROOT / "scripts" / "tuning_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_study_has_its_tables_journals_and_provenance():
    committed = tv.committed_tables(ROOT / "results")
    meta, d = committed["provenance"], script().design()
    assert meta["dataset"] == "mnist-5k" and len(meta["code_commit"]) == 40 and meta["train_cpu_seconds"] > 0
    assert meta["design"]["configs"] == d.configs and meta["design"]["seeds"] == d.seeds
    scores = committed["scores"]
    assert len(scores) == d.configs * d.seeds and scores.value.between(0, 1).all()
    tuners = committed["tuners"]
    assert len(tuners) == 3 * d.repeats * d.trials * d.trial_seeds
    assert len(committed["overparam"]) == len(d.widths) * 3 * d.overparam_seeds
    for name in meta["journals"]:  # every journal opens as an Optuna study holding its trials
        path = FOLDER / "journals" / name
        study = optuna.load_study(study_name=path.stem, storage=JournalStorage(JournalFileBackend(str(path))))
        assert len(study.trials) in (d.configs, d.trials)
    assert len(tv.verdicts(committed)) == 11


def test_one_trial_retrained_gives_the_committed_validation_accuracies():
    check = json.loads((FOLDER / "check.json").read_text())
    committed = tv.committed_tables(ROOT / "results")["scores"]
    trial = committed[committed.number == check["number"]].set_index("seed")
    assert [trial.value.loc[s] for s in check["seeds"]] == pytest.approx(check["val_acc"], abs=1e-12)
    from underspec import load_dataset
    from underspec.training.engine import train_parts
    from underspec.tuning.space import trial_grid

    grid = trial_grid(check["values"], check["fixed"], check["seeds"])
    run = train_parts([grid], load_dataset("mnist-5k"), device="cpu", progress=False, threads=1, probe_size=0,
                      snapshots=False, embeddings=False)[0]
    again = run.history[run.history.epoch == grid.epochs].val_acc.tolist()
    # the product choice (sparse or dense sums) may round differently on another machine: one validation image
    assert again == pytest.approx(check["val_acc"], abs=1.01 / 800)

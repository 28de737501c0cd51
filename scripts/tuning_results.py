"""The committed study of "Tuning when seeds disagree": the chapter's design (``underspec.studies.tuning``) at a
larger size on mnist-5k, too heavy for every book build, written as tidy tables under results/mnist5k-tuning/
with the tuners' Optuna journals, provenance and a re-check:

    scores.parquet       the seed study: every configuration x seed, validation and test accuracy
    tuners.parquet       grid, random and TPE, every sampler seed, trial and network seed
    shapes.parquet       the equal-budget and funnel shapes: accuracy, disagreement, CKA, barrier with intervals
    contrasts.parquet    depth 4 - depth 1 and funnel - constant, seeds and test images resampled
    overparam.parquet    widths 1-1024 x label noise 0/10/20%: every network's train and test error
    journals/*.journal   the Optuna journal of the seed study and of every tuner (JournalStorage's file format:
                         ``optuna.load_study(storage=JournalStorage(JournalFileBackend(path)), study_name=stem)``)
    provenance.json      the code commit, torch, machine, threads, the design, CPU and wall time of training
    check.json           one trial of the seed study (its narrowest configuration, three seeds) retrained here:
                         tests/test_tuning_results.py retrains it and finds the committed validation accuracies

    OMP_NUM_THREADS=1 nice -n 10 python scripts/tuning_results.py   # trains (resumes from runs/tuning-results)
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY = "mnist5k-tuning"
CHECK_SEEDS = 3


def design():
    from underspec.studies.tuning import TuningDesign

    return TuningDesign(configs=24, seeds=12, tune_epochs=15, trials=16, trial_seeds=3, batch=4, repeats=5,
                        grid_points=4, shape_seeds=10, shape_epochs=30, overparam_seeds=5, overparam_epochs=200,
                        overparam_train=1000)


def study(threads: int):
    from underspec.studies.tuning import tuning_study

    return tuning_study("mnist-5k", device="cpu", results_dir=str(ROOT / "runs" / "tuning-results"), threads=threads,
                        progress=True, design=design())


def check_trial(scores, threads: int = 1) -> dict:
    """The narrowest configuration of the seed study retrained with its first ``CHECK_SEEDS`` seeds: its knobs and
    every seed's validation accuracy at the last epoch, as the tuner trains it."""
    from underspec import load_dataset
    from underspec.training.engine import train_parts
    from underspec.tuning.space import trial_grid

    s = study(threads)
    config = s.tune_config("random", seed_study=True)
    first = scores[scores.hidden == scores.hidden.min()]
    number = int(first.number.iloc[0])
    seeds = [int(x) for x in first.seed.iloc[:CHECK_SEEDS]]
    values = {"lr": float(first.lr.iloc[0]), "hidden": int(first.hidden.iloc[0])}
    grid = trial_grid(values, config.fixed, seeds)
    run = train_parts([grid], load_dataset("mnist-5k"), device="cpu", progress=False, threads=threads, probe_size=0,
                      snapshots=False, embeddings=False)[0]
    last = run.history[run.history.epoch == grid.epochs]
    return {"number": number, "values": values, "fixed": config.fixed, "seeds": seeds,
            "val_acc": [float(v) for v in last.val_acc]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trained-cpu-seconds", type=float, default=None,
                        help="the CPU time of an earlier invocation that trained what the cache now holds (measured "
                             "outside this process); recorded instead of this invocation's")
    args = parser.parse_args(argv)
    import torch

    from underspec.studies.tuning import design_dict

    out = ROOT / "results" / STUDY
    (out / "journals").mkdir(parents=True, exist_ok=True)
    s = study(args.threads)
    wall, cpu = time.perf_counter(), time.process_time()
    s.ensure(say=True)
    train_wall, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    tables = s.tables()
    for name, table in tables.items():
        table.to_parquet(out / f"{name}.parquet", index=False)
    for journal in s.journals():
        shutil.copyfile(journal, out / "journals" / journal.name)
    (out / "check.json").write_text(json.dumps(check_trial(tables["scores"], args.threads), indent=2) + "\n")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    meta = {"study": STUDY, "dataset": s.data.name, "n_train": len(s.data.y_train), "n_test": len(s.data.y_test),
            "seeds": list(s.seeds), "design": design_dict(s.design), "summary": s.summary(), "code_commit": commit,
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {args.threads} threads, cpu",
            "train_cpu_seconds": round(args.trained_cpu_seconds or train_cpu, 1),
            "train_wall_seconds": None if args.trained_cpu_seconds else round(train_wall, 1),
            "train_note": ("CPU time of an earlier invocation that trained every part, measured outside it (ps) "
                           "when its tuners ended; this invocation read the tuners' journals and trained what the "
                           "cache lacked (the runs' own wall seconds: run_seconds)"
                           if args.trained_cpu_seconds else "this invocation's CPU time in training"),
            "run_seconds": {"shapes": s.run("shapes").meta.get("seconds"),
                            "overparam": s.overparam_study.run("overparam").meta.get("seconds")},
            "journals": sorted(p.name for p in s.journals()),
            "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    (out / "provenance.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} (training {train_cpu:.0f} s CPU, {train_wall:.0f} s wall)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

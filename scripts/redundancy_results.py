"""The committed full-size study of "Redundancy and width": Fashion-MNIST at full size (60,000 training / 10,000
test images), too heavy for every book build, written as tidy tables under results/fashion-mnist-redundancy/
with its provenance and a re-check (never the weights):

    members.parquet     every network of the width run (fixed epochs): the measures of studies.redundancy
    everyone.parquet    the same and the equal-loss run's networks (the regimes of the verdicts)
    curves.parquet      knock-out agreement at every level and order
    lowrank.parquet     accuracy and energy of the rank-k update, top and random directions
    clusters.parquet    silhouette and angle against k: trained, init, rotated
    pairs.parquet       every seed pair: shared droppable units and repeated pairs after matching, with chance
    provenance.json     the code commit, torch, machine, threads, wall time, what was reduced and what the full
                        version would cost
    check/members.parquet  the measures of a small slice (widths 4 and 16, three seeds, λ = 0) trained one epoch:
                        tests/test_redundancy_results.py retrains it and finds the same values

Reduced from the chapter's design, to fit this machine (2 shared cores): widths 4 to 256 (not 1024), 10 epochs
(9,380 SGD steps, a fifth of the paper's 46,900), depth 1 only (no deeper line), no unit-level tickets and no
spectra over training; the equal-loss threshold is 0.5 (Fashion-MNIST's loss falls below 0.8 within the first
epochs). ``provenance.json`` records the measured speed and what the full version would take.

    python scripts/redundancy_results.py           # train (resumes from runs/redundancy-results) and write
    python scripts/redundancy_results.py --check   # only rewrite the check tables
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
STUDY = "fashion-mnist-redundancy"
SEEDS, L1, WIDTHS, EPOCHS, EQUAL_LOSS = (0, 42, 1337, 3213, 9999), (0.0, 0.001), (4, 8, 16, 32, 64, 128, 256), 10, 0.5
CHECK = {"seeds": (0, 42, 1337), "l1": (0.0,), "hidden": (4, 16), "epochs": 1}
FULL = {"widths": (4, 8, 16, 32, 64, 128, 256, 512, 1024), "steps": 46_900}  # the chapter's design at the paper's steps


def study(cache: Path, threads: int):
    from underspec import Grid, load_dataset
    from underspec.studies.redundancy import RedundancyStudy

    data = load_dataset("fashion-mnist", download=False)
    grid = Grid(seeds=SEEDS, l1=L1, n_classes=(10,), hidden=WIDTHS, epochs=EPOCHS)
    return RedundancyStudy(data, grid, cache, equal_loss=EQUAL_LOSS, device="cpu", progress=True, threads=threads)


def check_members(threads: int) -> pd.DataFrame:
    """The check slice trained one epoch and measured (``measure_part``, without the costly full measures)."""
    from underspec import Grid, load_dataset, train
    from underspec.studies.redundancy import measure_part

    data = load_dataset("fashion-mnist", download=False)
    run = train(Grid(n_classes=(10,), **CHECK), data, device="cpu", progress=False, threads=threads,
                sparse=False)  # dense products: the same sums on every machine
    return pd.concat([measure_part(part, data)["members"] for part in run.parts], ignore_index=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only rewrite the check tables")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    out = ROOT / "results" / STUDY
    (out / "check").mkdir(parents=True, exist_ok=True)
    check_members(args.threads).to_parquet(out / "check" / "members.parquet", index=False)
    if args.check:
        return 0
    started = time.perf_counter()
    s = study(ROOT / "runs" / "redundancy-results", args.threads)
    seconds = {}
    for name in ("width", "equal-loss"):
        t = time.perf_counter()
        seconds[name] = s.run(name).meta["seconds"]
        s.release(name)
        print(f"{name}: trained or loaded in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    t = time.perf_counter()
    full = s.measures("width", full=True)
    equal = s.measures("equal-loss")
    measure_seconds = time.perf_counter() - t
    for name, table in full.items():
        table.to_parquet(out / f"{name}.parquet", index=False)
    pd.concat([full["members"], equal["members"]], ignore_index=True).to_parquet(out / "everyone.parquet", index=False)
    n_train, steps_per_epoch = len(s.data.y_train), -(-len(s.data.y_train) // s.grid.batch_size)
    unit_steps = 2 * len(SEEDS) * sum(WIDTHS) * EPOCHS * steps_per_epoch  # per run; 2 lambdas in the seeds count
    per_unit_step = seconds["width"] / unit_steps
    full_hours = 2 * 2 * len(SEEDS) * sum(FULL["widths"]) * FULL["steps"] * per_unit_step / 3600  # two rules
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    meta = {"study": STUDY, "dataset": s.data.name, "n_train": n_train, "n_test": len(s.data.y_test), "seeds": list(SEEDS),
            "l1": list(L1), "widths": list(WIDTHS), "epochs": EPOCHS, "steps": EPOCHS * steps_per_epoch,
            "batch_size": s.grid.batch_size, "equal_loss": EQUAL_LOSS, "code_commit": commit, "torch": torch.__version__,
            "python": platform.python_version(), "machine": f"{platform.machine()}, {args.threads} threads, cpu",
            "train_seconds": seconds, "measure_seconds": round(measure_seconds, 1),
            "wall_seconds_total": round(time.perf_counter() - started, 1),
            "reduced": "widths 4-256 (not 4-1024), 10 epochs = 9,380 steps (the paper: 46,900), depth 1 only, no "
                       "unit-level tickets, no spectra over training; equal-loss threshold 0.5",
            "full_version_estimate_hours": round(full_hours, 1),
            "full_version": "widths 4-1024, 46,900 steps, 5 seeds x 2 lambdas, fixed epochs and equal loss, at the "
                            "measured seconds per unit-step of this run (the deeper line and tickets not counted)",
            "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    (out / "provenance.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} ({meta['wall_seconds_total']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

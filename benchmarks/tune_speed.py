"""Benchmark: a TPE study (64 trials x 5 seeds on mnist-5k) run by the package's tuner, each batch of trials
trained as one grid (``underspec.tuning.tune``), against Optuna's plain ``study.optimize`` whose objective trains
the trial's seeds one network at a time with the paper's loop (``underspec.train_paper_loop``), side by side in
one run, alternated round by round (which goes first alternates too).

    python tune_speed.py                        # 64 trials x 5 seeds, 2 epochs, batches of 8, 2 rounds
    python tune_speed.py --epochs 50 --rounds 1 # the full length (the loop then takes about an hour here)

Both search lr in [0.003, 0.3] and the width in [8, 256] (log scales) with TPE (sampler seed 0, its first 10
trials random), score a trial by its seeds' mean validation accuracy after the last epoch (20% of the training
images held out) and train with SGD, batch 64. The loop records what the engine does not need here as little as
it can (a one-image probe). Prints trials per minute (wall and CPU) of each and the ratio, and appends them to
RESULTS.md with the machine's load (``os.getloadavg``) before and after.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

import underspec
from common import append_result, load, peak_memory
from underspec.tuning.config import TuneConfig
from underspec.tuning.tuner import tune

SPACE = {"lr": {"low": 0.003, "high": 0.3, "log": True}, "hidden": {"low": 8, "high": 256, "log": True}}
VALIDATION = 0.2


def vectorised(data, args, folder: Path, round_: int) -> tuple[float, float, float]:
    """(wall, CPU seconds, best value) of the tuner on a fresh journal."""
    config = TuneConfig.from_dict({"space": SPACE, "fixed": {"epochs": args.epochs, "validation": VALIDATION},
                                   "seeds": args.seeds, "sampler": "tpe", "trials": args.trials, "batch": args.batch,
                                   "storage": str(folder / f"vectorised-{round_}.journal"), "device": "cpu",
                                   "threads": args.threads})
    wall, cpu = time.perf_counter(), time.process_time()
    result = tune(config, data, progress=False)
    return time.perf_counter() - wall, time.process_time() - cpu, float(result.study.best_value)


def plain(data, args) -> tuple[float, float, float]:
    """(wall, CPU seconds, best value) of ``study.optimize`` over the paper's loop, seed after seed."""
    def objective(trial):
        lr = trial.suggest_float("lr", SPACE["lr"]["low"], SPACE["lr"]["high"], log=True)
        hidden = trial.suggest_int("hidden", SPACE["hidden"]["low"], SPACE["hidden"]["high"], log=True)
        values = []
        for seed in range(args.seeds):
            member = underspec.train_paper_loop(seed, 0.0, 10, data, hidden=hidden, lr=lr, epochs=args.epochs,
                                                validation=VALIDATION, probe_size=1)
            values.append(float(member.history.val_acc.iloc[-1]))
        return float(np.mean(values))

    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=max(1, min(10, args.trials // 2)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    wall, cpu = time.perf_counter(), time.process_time()
    study.optimize(objective, n_trials=args.trials)
    return time.perf_counter() - wall, time.process_time() - cpu, float(study.best_value)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="trials asked at once by the tuner")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load("mnist-5k")
    warm = data.take(256, 64)  # first calls of both (threads, allocator, the loop's DataLoader) before timing
    underspec.train(underspec.Grid(epochs=1), warm, progress=False, snapshots=False, embeddings=False)
    underspec.train_paper_loop(0, 0.0, 10, warm, epochs=1, probe_size=1)
    load_before = os.getloadavg()
    found = {"vectorised": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ("vectorised", "plain") if r % 2 == 0 else ("plain", "vectorised")
            for name in order:
                result = vectorised(data, args, Path(tmp), r) if name == "vectorised" else plain(data, args)
                found[name].append(result)
                print(f"round {r}: {name}: {result[0]:.1f} s wall, {result[1]:.1f} s CPU, best {result[2]:.4f}",
                      flush=True)
    load_after = os.getloadavg()
    lines = [f"TPE, {args.trials} trials x {args.seeds} seeds on mnist-5k (3,200 training / 800 validation images), "
             f"{args.epochs} epochs, SGD batch 64, lr 0.003-0.3 and width 8-256 (log); the tuner in batches of "
             f"{args.batch}; {args.threads} thread(s); {args.rounds} rounds, alternated"]
    for name, runs in found.items():
        walls, cpus = [w for w, _, _ in runs], [c for _, c, _ in runs]
        lines.append(f"{name}: {', '.join(f'{args.trials / (w / 60):.1f}' for w in walls)} trials per minute (wall), "
                     f"{', '.join(f'{args.trials / (c / 60):.1f}' for c in cpus)} (CPU); best value "
                     f"{', '.join(f'{b:.4f}' for _, _, b in runs)}")
    ratio_wall = np.median([p[0] for p in found["plain"]]) / np.median([v[0] for v in found["vectorised"]])
    ratio_cpu = np.median([p[1] for p in found["plain"]]) / np.median([v[1] for v in found["vectorised"]])
    lines.append(f"vectorised / plain, trials per minute (medians): {ratio_wall:.2f}x wall, {ratio_cpu:.2f}x CPU")
    lines.append(f"load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load_before)}, after "
                 f"{', '.join(f'{x:.2f}' for x in load_after)}; {peak_memory('cpu')}")
    append_result("Tuning: a TPE study, batches as one grid against study.optimize over the paper's loop", "cpu",
                  lines)


if __name__ == "__main__":
    main()

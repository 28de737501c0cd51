"""The width grid of "Redundancy and width" (widths 4 to 1024 at depth 1, 5 seeds x 2 lambdas, C = 10) trained by
the engine, by ``torch.func`` (``vmap(grad(...))`` over the stacked members: ``peers.train_peer``) and by the
paper's per-network loop, width by width, alternated round after round: networks x SGD steps per second and the
engine's ratio to each; then the whole grid in one ``train`` call.

    python redundancy_width.py [--epochs 1] [--threads 1] [--repeats 2] [--dataset mnist-5k]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import underspec
from common import append_result, load
from peers import train_peer
from underspec.studies.redundancy import WIDTHS, redundancy_grid


def alternated(calls: dict, repeats: int) -> tuple[dict[str, float], dict]:
    """Each of ``calls`` (name -> function) timed in turn, round after round, ``repeats`` rounds: the shortest
    time of each in seconds (the first round also pays one-off costs: the engine's choice of products for a new
    shape, the loader's first batch), and what each returned in its last round."""
    times, results = {name: [] for name in calls}, {}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            results[name] = call()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="alternated rounds, the best of each kept")
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load(args.dataset)
    grid = redundancy_grid()
    seeds, l1s = grid.seeds, grid.l1
    steps = args.epochs * -(-len(data.y_train) // grid.batch_size)
    load_before = os.getloadavg()[0]
    rows = ["| width | networks | engine (nets x steps / s) | torch.func | ratio | loop, one network | ratio "
            "| max \\|torch.func - engine\\| |", "|---|---|---|---|---|---|---|---|"]
    underspec.train(underspec.Grid(epochs=1), data.take(256, 64), device="cpu", progress=False)  # warm-up
    for width in args.widths:
        g = underspec.Grid(seeds=seeds, l1=l1s, n_classes=(10,), hidden=width, epochs=args.epochs)
        calls = {"engine": lambda: underspec.train(g, data, device="cpu", progress=False, snapshots=False,
                                                   embeddings=False, threads=args.threads).final,
                 "torch.func": lambda: train_peer("torch.func", g, data, "cpu", args.epochs),
                 "loop": lambda: underspec.train_paper_loop(seeds[0], 0.0, 10, data, hidden=width, epochs=args.epochs,
                                                            probe_size=10)}
        best, results = alternated(calls, args.repeats)
        rate = {name: (len(g) if name != "loop" else 1) * steps / best[name] for name in calls}
        gap = max((results["torch.func"][k] - results["engine"][k]).abs().max().item() for k in results["engine"])
        rows.append(f"| {width} | {len(g)} | {rate['engine']:,.0f} | {rate['torch.func']:,.0f} | "
                    f"{rate['engine'] / rate['torch.func']:.1f}x | {rate['loop']:,.0f} | "
                    f"{rate['engine'] / rate['loop']:.1f}x | {gap:.1e} |")
        print(rows[-1], flush=True)
    whole = underspec.Grid(seeds=seeds, l1=l1s, n_classes=(10,), hidden=tuple(args.widths), epochs=args.epochs)
    seconds, _ = alternated({"whole": lambda: underspec.train(whole, data, device="cpu", progress=False,
                                                              snapshots=False, embeddings=False,
                                                              threads=args.threads)}, args.repeats)
    append_result("Redundancy and width: the chapter's width grid against torch.func and the loop (issue 21)", "cpu", [
        f"{args.dataset}, {args.epochs} epoch(s) = {steps} SGD steps per network, {args.threads} thread(s), SGD lr "
        f"{grid.lr}, batch {grid.batch_size}; engine and torch.func: 5 seeds x 2 lambdas per width (the same 10 "
        "networks; torch.func as in peers.py, evaluating on the test set every epoch as the engine does); the loop: "
        f"one network (seed 0, λ = 0); timed in turn, {args.repeats} rounds, the best of each; ratio: the engine's "
        "rate over the other's (above 1: the engine is faster); the machine is shared (load average in the last line)",
        *rows,
        f"the whole grid ({len(whole)} networks, widths {args.widths[0]}-{args.widths[-1]}) in one `train` call: "
        f"{seconds['whole']:.1f} s ({len(whole) * steps / seconds['whole']:,.0f} networks x steps / s); load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores"])


if __name__ == "__main__":
    main()

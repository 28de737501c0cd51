"""The width grid of "Redundancy and width" (widths 4 to 1024 at depth 1, 5 seeds x 2 lambdas, C = 10) trained by
the engine against the paper's per-network loop, width by width, and against ``studies.retrain.train_from``
(the same networks as batched matrix products with autograd, what the unit-level tickets train with): networks x
SGD steps per second and the engine's ratio to each; then the whole grid in one ``train`` call.

    python redundancy_width.py [--epochs 1] [--threads 1] [--dataset mnist-5k]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import underspec
from common import append_result, load
from underspec.studies.redundancy import WIDTHS, redundancy_grid
from underspec.studies.retrain import stacked, train_from
from underspec.training.model import init_params


def best_of(run, repeats: int) -> float:
    """The shortest of ``repeats`` timed calls of ``run()`` (the first also pays one-off costs: the engine's
    choice of products for a new shape, the loader's first batch), in seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of each, the best kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load(args.dataset)
    grid = redundancy_grid()
    seeds, l1s = grid.seeds, grid.l1
    steps = args.epochs * -(-len(data.y_train) // grid.batch_size)
    rows = ["| width | networks | engine (nets x steps / s) | loop, one network | ratio | train_from (batched autograd) "
            "| ratio |", "|---|---|---|---|---|---|---|"]
    underspec.train(underspec.Grid(epochs=1), data.take(256, 64), device="cpu", progress=False)  # warm-up
    for width in WIDTHS:
        g = underspec.Grid(seeds=seeds, l1=l1s, n_classes=(10,), hidden=width, epochs=args.epochs)
        engine = len(g) * steps / best_of(lambda: underspec.train(g, data, device="cpu", progress=False, snapshots=False,
                                                                  embeddings=False, threads=args.threads), args.repeats)
        loop = steps / best_of(lambda: underspec.train_paper_loop(seeds[0], 0.0, 10, data, hidden=width,
                                                                  epochs=args.epochs), args.repeats)
        members = [(s, v) for s in seeds for v in l1s]
        start = stacked([init_params(s, 10, width, data.x_train.shape[1]) for s, _ in members])
        batched = len(members) * steps / best_of(lambda: train_from(start, [s for s, _ in members],
                                                                    [v for _, v in members], data, epochs=args.epochs),
                                                 args.repeats)
        rows.append(f"| {width} | {len(g)} | {engine:,.0f} | {loop:,.0f} | {engine / loop:.1f}x | {batched:,.0f} | "
                    f"{engine / batched:.1f}x |")
        print(rows[-1], flush=True)
    whole = underspec.Grid(seeds=seeds, l1=l1s, n_classes=(10,), hidden=WIDTHS, epochs=args.epochs)
    seconds = best_of(lambda: underspec.train(whole, data, device="cpu", progress=False, snapshots=False,
                                              embeddings=False, threads=args.threads), args.repeats)
    append_result("Redundancy and width: the chapter's width grid against the loop (issue 21)", "cpu", [
        f"{args.dataset}, {args.epochs} epoch(s) = {steps} SGD steps per network, {args.threads} thread(s), SGD lr "
        f"{grid.lr}, batch {grid.batch_size}; engine: 5 seeds x 2 lambdas per width, one `train` call per width; the "
        "loop: one network (seed 0, λ = 0); train_from: the same 10 networks as the engine, batched autograd; each "
        f"the best of {args.repeats} calls; the machine is shared (load average during the run in the last line)",
        *rows,
        f"the whole grid ({len(whole)} networks, widths {WIDTHS[0]}-{WIDTHS[-1]}) in one `train` call: {seconds:.1f} s "
        f"({len(whole) * steps / seconds:,.0f} networks x steps / s); load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores"])


if __name__ == "__main__":
    main()

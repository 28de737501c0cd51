"""Benchmark: the engine's automatic choice of first-layer products against both products, width by width.

    python product_choice.py                                   # widths 16 to 4096, depth 1, 3 seeds, 1 and 2 threads
    python product_choice.py --widths 256 1024 --threads 2 --repeats 5

For every width and thread count: the grid (3 seeds, one epoch of mnist-5k unless --train-images) trained with
dense products, with sparse products and with ``sparse="auto"``, alternated in one process, the best of
``--repeats`` each, in wall time and in CPU time (all threads; on a shared machine the steadier measure). The
automatic choice is made afresh (an empty choice cache, unless --keep-cache) by the first auto call, which is
not timed; its measured times are printed with the choice. An auto call runs the chosen product, so its time is
the best of the auto calls and of that product's own: the ratio is that time over the better product's. Target:
auto within 10% of the better product in CPU time. Appends the table to RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

import underspec
from common import append_result, load
from underspec.training.data import DATA_ENV


def timed(call) -> tuple[float, float]:
    """Wall and CPU seconds of ``call()``."""
    start, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - start, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 64, 256, 1024, 4096])
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--train-images", type=int, default=None, help="fewer training images: a shorter epoch")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--keep-cache", action="store_true", help="use the machine's remembered choices")
    args = parser.parse_args()
    data = load(args.dataset).take(args.train_images, None)
    if not args.keep_cache:  # the data are loaded: from here the cache only holds the product choices
        os.environ[DATA_ENV] = tempfile.mkdtemp(prefix="underspec-choices-")
    lines = []
    for threads in args.threads:
        for width in args.widths:
            grid = underspec.Grid(seeds=tuple(range(args.seeds)), hidden=width, depth=args.depth, epochs=1)

            def train(sparse):
                return underspec.train(grid, data, device="cpu", progress=False, snapshots=False, embeddings=False,
                                       sparse=sparse, threads=threads)

            choice = train("auto").meta["products"]  # the choice, measured here (not timed)
            times = {"dense": [], "sparse": [], "auto": []}
            for _ in range(args.repeats):
                for name, sparse in (("dense", False), ("sparse", True), ("auto", "auto")):
                    times[name].append(timed(lambda: train(sparse)))
            chosen = "sparse" if choice["sparse"] else "dense"
            cells, ratios = [], []
            for k, clock in enumerate(("wall", "CPU")):
                best = {name: min(t[k] for t in runs) for name, runs in times.items()}
                best["auto"] = min(best["auto"], best[chosen])
                ratios.append(best["auto"] / min(best["dense"], best["sparse"]))
                cells.append(f"{clock}: dense {best['dense']:.2f} s, sparse {best['sparse']:.2f} s, auto "
                             f"{best['auto']:.2f} s, auto / better {ratios[-1]:.2f}")
            verdict = "within 10%" if ratios[1] <= 1.1 else "NOT within 10%"  # CPU time: steadier under load
            line = (f"width {width}, {threads} thread(s), auto chose {chosen} (calibration {choice['dense_ms']:.2f} / "
                    f"{choice['sparse_ms']:.2f} ms dense / sparse{'' if choice['measured'] else ', remembered'}): "
                    f"{'; '.join(cells)}: {verdict}")
            print(line, flush=True)
            lines.append(line)
    steps = -(-len(data.y_train) // 64)
    append_result(f"product_choice: automatic against dense and sparse first-layer products ({data.name}, "
                  f"depth {args.depth}, {args.seeds} seeds, {steps} steps)", "cpu",
                  [f"torch {torch.__version__}; best of {args.repeats}, alternated; the verdict in CPU time (all "
                   "threads)", *lines])


if __name__ == "__main__":
    main()

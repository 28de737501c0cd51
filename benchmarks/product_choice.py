"""Benchmark: the engine's automatic choice of first-layer products against both products, width by width.

    python product_choice.py                                   # widths 16 to 4096, depth 1, 3 seeds, 1 and 2 threads
    python product_choice.py --widths 256 1024 --threads 2 --repeats 5

For every width and thread count: the grid (3 seeds, one epoch of mnist-5k unless --train-images) trained with
dense products, with sparse products and with ``sparse="auto"``, alternated in one process, the best wall time
of ``--repeats`` each. The automatic choice is made afresh (an empty choice cache, unless --keep-cache) by the
first auto call, which is not timed; its measured times are printed with the choice. Target: auto within 10% of
the better product. Appends the table to RESULTS.md.
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


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 64, 256, 1024, 4096])
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
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
            best = {name: min(t) for name, t in times.items()}
            better = min(best["dense"], best["sparse"])
            verdict = "within 10%" if best["auto"] <= 1.1 * better else "NOT within 10%"
            line = (f"width {width}, {threads} thread(s): dense {best['dense']:.2f} s, sparse {best['sparse']:.2f} s, "
                    f"auto {best['auto']:.2f} s ({'sparse' if choice['sparse'] else 'dense'}; calibration "
                    f"{choice['dense_ms']:.2f} / {choice['sparse_ms']:.2f} ms dense / sparse"
                    f"{'' if choice['measured'] else ', remembered'}): auto / better {best['auto'] / better:.2f}, "
                    f"{verdict}")
            print(line, flush=True)
            lines.append(line)
    steps = -(-len(data.y_train) // 64)
    append_result(f"product_choice: automatic against dense and sparse first-layer products ({data.name}, "
                  f"depth {args.depth}, {args.seeds} seeds, {steps} steps)", "cpu",
                  [f"torch {torch.__version__}; best wall time of {args.repeats}, alternated", *lines])


if __name__ == "__main__":
    main()

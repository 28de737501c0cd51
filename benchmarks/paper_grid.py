"""Benchmarks 2 and 3: the whole paper study end to end: train the paper grid with its records, then compare.

    python benchmarks/paper_grid.py --dataset mnist-5k --device cpu       # 3: the laptop/CPU target (< 2 min)
    python benchmarks/paper_grid.py --dataset mnist --device cuda         # 2: the GPU target (< 30 s)
    python benchmarks/paper_grid.py --dataset synthetic-60k --device cuda # 2 without MNIST files: same shape

Prints and appends to benchmarks/RESULTS.md: training time, compare time (all 21 seed pairs, every target),
total, and peak host / device memory.
"""

import argparse
import time

import underspec
from common import add_engine_options, append_result, engine_options, load, peak_memory
from underspec.training.engine import resolve_device


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist-5k", help="mnist-5k, mnist or synthetic-60k")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--pairs", default="all", help="all (21 seed pairs) or reference (the paper's 6)")
    add_engine_options(parser)
    args = parser.parse_args()
    device = str(resolve_device(args.device))

    data = load(args.dataset)
    grid = underspec.Grid.paper(epochs=args.epochs)
    underspec.train(underspec.Grid(seeds=(0,), epochs=1), data.take(256, 64), device=device, progress=False)

    start = time.perf_counter()
    run = underspec.train(grid, data, device=device, progress=False, **engine_options(args))
    trained = time.perf_counter() - start
    from underspec import compare

    start = time.perf_counter()
    table = compare(run, pairs=args.pairs)
    compared = time.perf_counter() - start
    final = run.history[run.history.epoch == grid.epochs]
    append_result(f"paper_grid: {len(grid)} networks x {grid.epochs} epochs on {data.name} "
                  f"({len(data.y_train)} x 784) + compare ({device})", device, [
                      f"train (records: snapshots {run.snapshots is not None}, embeddings {run.embeddings is not None}; "
                      f"sparse {run.meta['sparse']}, tf32 {run.meta['tf32']}): {trained:.1f} s",
                      f"compare ({args.pairs} pairs, {len(table)} rows): {compared:.1f} s",
                      f"total: {trained + compared:.1f} s",
                      f"mean final test accuracy at C=10: {final[final.n_classes == 10].test_acc.mean():.3f}",
                      f"peak memory: {peak_memory(device)}"])


if __name__ == "__main__":
    main()

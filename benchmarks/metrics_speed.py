"""Benchmark 2: ``compare`` against the paper's metric loops (``pearsonr`` per unit pair), same run, one process.

    python benchmarks/metrics_speed.py                  # the paper grid's shapes, random weights, every pair
    python benchmarks/metrics_speed.py --epochs 1       # a trained paper grid (mnist-5k, 1 epoch) instead
    python benchmarks/metrics_speed.py --loop-pairs 200 # time the loop on 200 pairs and extrapolate

The paper grid: 54 configurations x 21 seed pairs x 2 targets (params, grads) = 2,268 network pairs. The loop is
``underspec.paper_pair_metrics``: 2 x 16 x 16 ``scipy.stats.pearsonr`` calls and two
``linear_sum_assignment`` per pair. ``compare`` is timed without nulls (the three paper metrics plus the
additions; best of 3 after a warm-up call) and with the default null (its first, uncached Monte Carlo
included). Both must give the same APC-1, APC-2 and PE; the largest difference is printed. Appends the result
to benchmarks/RESULTS.md.
"""

import argparse
import time

import pandas as pd
import torch

import underspec
from common import append_result
from underspec import paper_pair_metrics

TARGETS = {"params": "final", "grads": "grad_sum"}


def random_run(grid: underspec.Grid) -> underspec.Run:
    """A Run of ``grid``'s shapes with random weights (w2 / b2 zero-padded beyond each member's C, like a real one)."""
    g = torch.Generator().manual_seed(0)
    n, h, cmax = len(grid), grid.hidden, max(grid.n_classes)
    pad = torch.tensor([c for _, _, c in grid.members()])[:, None] > torch.arange(cmax)

    def params():
        return {"w1": torch.randn(n, h, 784, generator=g), "b1": torch.randn(n, h, generator=g),
                "w2": torch.randn(n, cmax, h, generator=g) * pad[:, :, None],
                "b2": torch.randn(n, cmax, generator=g) * pad}

    return underspec.Run(grid, "random", params(), params(), params(), pd.DataFrame(), torch.arange(0))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=0, help="0: random weights; N: train the grid N epochs")
    parser.add_argument("--loop-pairs", type=int, default=None, help="time the loop on this many pairs only")
    args = parser.parse_args()

    if args.epochs:
        run = underspec.train(underspec.Grid.paper(epochs=args.epochs), underspec.load_dataset("mnist-5k"),
                              progress=False, snapshots=False, embeddings=False)
        source = f"the paper grid trained {args.epochs} epoch(s) on mnist-5k"
    else:
        run = random_run(underspec.Grid.paper())
        source = "random weights of the paper grid's shapes"

    underspec.compare(run, "all", targets=tuple(TARGETS), null=None)  # warm-up (imports, allocator)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        table = underspec.compare(run, "all", targets=tuple(TARGETS), null=None)
        times.append(time.perf_counter() - start)
    fast = min(times)  # the best of 3: the run least disturbed by other work on the machine
    start = time.perf_counter()
    underspec.compare(run, "all", targets=tuple(TARGETS))
    with_null = time.perf_counter() - start

    rows = table if args.loop_pairs is None else table.iloc[:args.loop_pairs]
    worst = 0.0
    start = time.perf_counter()
    for row in rows.itertuples():
        p, c = run.params(TARGETS[row.target]), row.n_classes
        a, b = (run.index(s, row.l1, c) for s in (row.seed_a, row.seed_b))
        ref = paper_pair_metrics(p["w1"][a], p["w1"][b], p["w2"][a, :c], p["w2"][b, :c])
        worst = max(worst, *(abs(ref[k] - getattr(row, k)) for k in ("apc1", "apc2", "pe")))
    loop = time.perf_counter() - start
    loop_total = loop * len(table) / len(rows)

    append_result(f"metrics_speed: compare vs the paper's loops, {len(table)} network pairs ({source})", "cpu", [
        f"compare (no null, best of 3): {fast:.2f} s; with the default null (first call, uncached): {with_null:.2f} s",
        f"paper loops: {loop:.2f} s for {len(rows)} pairs" + ("" if len(rows) == len(table) else
                                                              f" (all pairs: about {loop_total:.0f} s)"),
        f"ratio: {loop_total / fast:.0f}x (no null), {loop_total / with_null:.0f}x (with null)",
        f"largest |difference| in APC-1 / APC-2 / PE over the pairs looped: {worst:.1e}"])


if __name__ == "__main__":
    main()

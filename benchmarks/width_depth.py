"""Benchmark: wide and deep networks, the engine against the paper's loop, side by side in one run.

    python width_depth.py                           # widths 16-1024, depths 1-3, SGD and Adam, 5 seeds, 1 epoch
    python width_depth.py --widths 16 64 --epochs 2  # a quick look
    python width_depth.py --device cuda

For every (width, depth, optimizer) the engine trains the seeds together (each setting timed as its own grid;
settings of different shapes train one after the other even in one mixed grid, and `mixed_grid.py` measures
what one call gains where settings share a shape) and the loop trains one network of it; both on mnist-5k at lambda 0, C = 10.
Prints networks x steps per second of each, their ratio, how many blocks the engine split the grid into under
its memory budget (``--budget-gib`` forces a smaller one), and the peak memory of the whole run; appends the
result to RESULTS.md. On a CPU the engine's time includes choosing its first-layer products for a shape it has
not seen (``products.choose_products``, remembered after): run twice for the steady state.
"""

import argparse
import time

import underspec
from common import append_result, load, peak_memory


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--optimizers", nargs="+", default=["sgd", "adam"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--budget-gib", type=float, default=None, help="the engine's memory budget (default: auto)")
    args = parser.parse_args()

    data = load("mnist-5k")
    budget = None if args.budget_gib is None else int(args.budget_gib * 2**30)
    steps = -(-len(data.y_train) // 64) * args.epochs
    warm = data.take(256, 64)  # both paths once before timing (threads, allocator, first calls)
    underspec.train(underspec.Grid(epochs=1), warm, device=args.device, progress=False)
    underspec.train_paper_loop(0, 0.0, 10, warm, epochs=1, probe_size=10, device=args.device)
    lines, engine_total, loop_total = [], 0.0, 0.0
    print(f"{'width':>6} {'depth':>5} {'opt':>5} {'engine n*s/s':>13} {'loop n*s/s':>11} {'ratio':>6} {'blocks':>6}")
    for optimizer in args.optimizers:
        lr = 0.01 if optimizer == "sgd" else 3e-4
        for depth in args.depths:
            for width in args.widths:
                grid = underspec.Grid(seeds=tuple(range(args.seeds)), hidden=width, depth=depth, epochs=args.epochs,
                                      optimizer=optimizer, lr=lr)
                start = time.perf_counter()
                run = underspec.train(grid, data, device=args.device, progress=False, snapshots=False,
                                      embeddings=False, memory_budget=budget)
                engine = time.perf_counter() - start
                start = time.perf_counter()
                underspec.train_paper_loop(0, 0.0, 10, data, hidden=width, depth=depth, epochs=args.epochs,
                                           optimizer=optimizer, lr=lr, probe_size=10, device=args.device)
                loop = time.perf_counter() - start
                engine_total, loop_total = engine_total + engine, loop_total + loop * len(grid)
                speed, base = len(grid) * steps / engine, steps / loop
                row = (f"width {width}, depth {depth}, {optimizer}: engine {speed:,.0f} networks x steps / s, "
                       f"loop {base:,.0f}, ratio {speed / base:.1f}x, {run.meta['blocks']} block(s)")
                print(f"{width:>6} {depth:>5} {optimizer:>5} {speed:>13,.0f} {base:>11,.0f} {speed / base:>6.1f} "
                      f"{run.meta['blocks']:>6}")
                lines.append(row)
    lines.append(f"all settings: engine {engine_total:.1f} s, the loop would take {loop_total:.1f} s "
                 f"(ratio {loop_total / engine_total:.1f}x); peak memory: {peak_memory(args.device)}")
    append_result(f"width_depth: {args.seeds} seeds x widths {args.widths} x depths {args.depths} x "
                  f"{args.optimizers}, {args.epochs} epoch(s) of mnist-5k ({args.device})", args.device, lines)


if __name__ == "__main__":
    main()

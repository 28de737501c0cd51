"""Benchmark: a mixed grid (learning rate x momentum x weight decay) in one call, against one call per setting
and against the paper's loop, side by side in one run.

    python mixed_grid.py                       # 5 seeds x 3 lr x 3 momenta x 2 weight decays, width 16, 2 epochs
    python mixed_grid.py --epochs 5 --device cuda

The settings share a shape, a batch size and an optimizer, so the engine trains all of them as one program with
a learning rate, momentum and weight decay per member (``Grid.parts``, ``engine``); one call per setting trains
each setting's seeds together; the loop trains one network at a time (timed on one network per setting and
multiplied by the seeds). All on mnist-5k at lambda 0, C = 10. Prints networks x steps per second of each and
the ratios, and appends them to RESULTS.md.
"""

import argparse
import time

import underspec
from common import append_result, load, peak_memory


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--lr", type=float, nargs="+", default=[0.003, 0.01, 0.03])
    parser.add_argument("--momentum", type=float, nargs="+", default=[0.0, 0.5, 0.9])
    parser.add_argument("--weight-decay", type=float, nargs="+", default=[0.0, 1e-4])
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    data = load("mnist-5k")
    grid = underspec.Grid(seeds=tuple(range(args.seeds)), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay, hidden=args.hidden, epochs=args.epochs)
    parts = grid.parts()
    steps = -(-len(data.y_train) // 64) * args.epochs
    options = dict(device=args.device, progress=False, snapshots=False, embeddings=False)
    underspec.train(underspec.Grid(epochs=1), data.take(256, 64), **options)  # threads, allocator, first calls

    start = time.perf_counter()
    underspec.train(grid, data, **options)
    mixed = time.perf_counter() - start
    start = time.perf_counter()
    for part in parts:
        underspec.train(part, data, **options)
    separate = time.perf_counter() - start
    start = time.perf_counter()
    for part in parts:
        underspec.train_paper_loop(0, 0.0, 10, data, hidden=part.hidden, epochs=part.epochs, lr=part.lr,
                                   momentum=part.momentum, weight_decay=part.weight_decay, probe_size=10,
                                   device=args.device)
    loop = (time.perf_counter() - start) * args.seeds

    def speed(seconds):
        return len(grid) * steps / seconds

    lines = [f"one mixed call: {mixed:.1f} s ({speed(mixed):,.0f} networks x steps / s)",
             f"one call per setting ({len(parts)} calls): {separate:.1f} s ({speed(separate):,.0f}); "
             f"mixed / per setting: {separate / mixed:.1f}x",
             f"the loop, network by network: {loop:.1f} s ({speed(loop):,.0f}); mixed / loop: {loop / mixed:.1f}x",
             f"peak memory: {peak_memory(args.device)}"]
    print("\n".join(lines))
    append_result(f"mixed_grid: {len(grid)} networks ({args.seeds} seeds x lr {args.lr} x momentum {args.momentum} x "
                  f"weight decay {args.weight_decay}), width {args.hidden}, {args.epochs} epochs of mnist-5k "
                  f"({args.device})", args.device, lines)


if __name__ == "__main__":
    main()

"""Where a training's time goes: one epoch of ``underspec.train`` timed (the best of three, after a warm-up),
then once more under torch.profiler, its operators by self CPU time and input shapes. Prints; appends nothing
(a diagnosis, not a result). The profiler's own cost inflates small operators: compare rows, not totals.

    python profile_step.py --paper                                   # the paper grid on mnist-5k
    python profile_step.py --width 1024 --depth 3 --optimizer adam   # 3 seeds of one wide network
"""

from __future__ import annotations

import argparse
import collections
import re
import time

from torch.profiler import ProfilerActivity, profile

import underspec
from common import load


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", action="store_true")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sparse", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--dataset", default="mnist-5k")
    args = parser.parse_args()
    data = load(args.dataset)
    grid = (underspec.Grid.paper(epochs=1) if args.paper else
            underspec.Grid(seeds=tuple(range(args.seeds)), hidden=args.width, depth=args.depth,
                           optimizer=args.optimizer, lr=0.01 if args.optimizer == "sgd" else 3e-4, epochs=1))
    sparse = {"auto": "auto", "on": True, "off": False}[args.sparse]
    options = dict(device="cpu", progress=False, snapshots=False, embeddings=False, threads=args.threads,
                   sparse=sparse)
    run = underspec.train(grid, data, **options)  # warm-up (and the product choice)
    wall, cpu = [], []
    for _ in range(3):
        start, clock = time.perf_counter(), time.process_time()
        underspec.train(grid, data, **options)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - clock)
    steps = -(-len(data.y_train) // grid.batch_size)
    print(f"{len(grid)} networks, width {grid.hidden}, depth {grid.depth}, {grid.optimizer}, {args.threads} "
          f"thread(s), products {'sparse' if run.meta['sparse'] else 'dense'}: one epoch {min(wall):.3f} s wall, "
          f"{min(cpu):.3f} s CPU ({1000 * min(cpu) / steps:.1f} ms a step)")
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        underspec.train(grid, data, **options)
    rows = collections.defaultdict(lambda: [0.0, 0])
    for event in prof.key_averages(group_by_input_shape=True):
        shapes = str(event.input_shapes)
        if "embedding_bag" in event.key:  # bags differ in length from batch to batch
            shapes = re.sub(r"\[\d+\]", "[n]", shapes)
        rows[(event.key, shapes)][0] += event.self_cpu_time_total / 1000
        rows[(event.key, shapes)][1] += event.count
    total = sum(ms for ms, _ in rows.values())
    print(f"profiled: {total:.0f} ms of self CPU time; the operators that took most of it:")
    for (name, shapes), (ms, count) in sorted(rows.items(), key=lambda kv: -kv[1][0])[:args.rows]:
        print(f"{ms:8.1f} ms {100 * ms / total:5.1f}% {count:5d} calls  {name[:34]:34s} {shapes[:100]}")


if __name__ == "__main__":
    main()

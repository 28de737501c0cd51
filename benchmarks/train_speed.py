"""Benchmark 1: the engine against the paper's loop (one network at a time), same grid, same device, one run.

    python benchmarks/train_speed.py --paper --reference-networks 8   # the paper grid, 50 epochs, mnist-5k, CPU
    python benchmarks/train_speed.py --paper --device cuda             # the same on a GPU
    python benchmarks/train_speed.py --paper --epochs 2                # a quick look (setup costs weigh more)
    python benchmarks/train_speed.py                                   # 28 networks: seeds x 2 lambdas x C in {2, 10}

Prints networks x steps per second for each and the ratio; appends the result to benchmarks/RESULTS.md.
The default is the paper's 50 epochs: the engine's one-off costs (drawing the initial networks, building
its tensors) then weigh as they do in a real run. The loop is timed on --reference-networks members of the
grid (it costs the same for every member).
"""

import argparse
import time

import torch

import underspec
from common import add_engine_options, append_result, engine_options, load, peak_memory
from underspec.training.grid import PAPER_SEEDS


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", action="store_true", help="the full paper grid (378 networks)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataset", default="mnist-5k", help="mnist-5k, mnist or synthetic-60k")
    parser.add_argument("--reference-networks", type=int, default=4)
    add_engine_options(parser)
    args = parser.parse_args()

    data = load(args.dataset)
    grid = (underspec.Grid.paper(epochs=args.epochs) if args.paper
            else underspec.Grid(seeds=PAPER_SEEDS, l1=(0.0, 0.01), n_classes=(2, 10), epochs=args.epochs))
    steps = -(-len(data.y_train) // grid.batch_size) * grid.epochs
    underspec.train(underspec.Grid(seeds=(0,), epochs=1), data.take(256, 64), device=args.device, progress=False)

    start = time.perf_counter()
    run = underspec.train(grid, data, device=args.device, progress=False, snapshots=False, embeddings=False,
                          **engine_options(args))
    if torch.device(args.device).type == "cuda":
        torch.cuda.synchronize()
    engine = time.perf_counter() - start
    members = grid.members()[:args.reference_networks]
    start = time.perf_counter()
    for seed, l1, c in members:
        underspec.train_paper_loop(seed, l1, c, data, epochs=grid.epochs, probe_size=1, device=args.device)
    loop = time.perf_counter() - start

    engine_rate, loop_rate = len(grid) * steps / engine, len(members) * steps / loop
    append_result(f"train_speed: {len(grid)} networks x {grid.epochs} epochs on {data.name} ({args.device})",
                  args.device, [
                      f"engine (sparse {run.meta['sparse']}, tf32 {run.meta['tf32']}): {engine:.2f} s for the grid, "
                      f"{engine_rate:,.0f} networks x steps / s",
                      f"reference loop: {loop:.2f} s for {len(members)} networks, {loop_rate:,.0f} networks x steps / s"
                      f" (the grid would take {len(grid) / len(members) * loop:.0f} s)",
                      f"ratio: {engine_rate / loop_rate:.1f}x",
                      f"peak memory: {peak_memory(args.device)}"])


if __name__ == "__main__":
    main()

"""The engine against the paper's loop, one network at a time, on the same grid and device, in one run.

    python benchmarks/train_speed.py                    # 7 seeds x 2 lambdas x C in {2, 10}, 2 epochs, mnist-5k
    python benchmarks/train_speed.py --paper --epochs 50 --skip-reference   # the whole paper grid, engine only

Prints networks x epochs per second for each and the ratio.
"""

import argparse
import time

import torch

import underspec
from underspec.grid import PAPER_SEEDS


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", action="store_true", help="the full paper grid (378 networks)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--reference-networks", type=int, default=4,
                        help="time the loop on this many networks of the grid and extrapolate per network")
    args = parser.parse_args()

    data = underspec.load_dataset(args.dataset)
    grid = (underspec.Grid.paper(epochs=args.epochs) if args.paper
            else underspec.Grid(seeds=PAPER_SEEDS, l1=(0.0, 0.01), n_classes=(2, 10), epochs=args.epochs))
    print(f"grid: {len(grid)} networks x {grid.epochs} epochs on {data.name} ({len(data.y_train)} images), "
          f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")

    start = time.perf_counter()
    underspec.train(grid, data, device=args.device, progress=False, snapshots=False, embeddings=False)
    engine = time.perf_counter() - start
    rate = len(grid) * grid.epochs / engine
    print(f"engine    : {engine:8.2f} s   {rate:9.2f} networks x epochs / s")

    if not args.skip_reference:
        members = grid.members()[:args.reference_networks]
        start = time.perf_counter()
        for seed, l1, c in members:
            underspec.reference_train(seed, l1, c, data, epochs=grid.epochs, probe_size=1)
        loop = time.perf_counter() - start
        loop_rate = len(members) * grid.epochs / loop
        print(f"reference : {loop:8.2f} s   {loop_rate:9.2f} networks x epochs / s "
              f"(timed on {len(members)} networks; {len(grid) / loop_rate / grid.epochs * grid.epochs:.0f} s "
              f"for the grid)")
        print(f"ratio     : {rate / loop_rate:8.1f}x")


if __name__ == "__main__":
    main()

"""The arithmetic floor of the paper study: FLOPs and bytes of one full paper grid, and the lower bounds
they imply on an H100 and on a CPU of a given speed. Pure arithmetic; prints a Markdown table.

    python benchmarks/floor.py [--cpu-gflops 140] [--cpu-gbs 75] [--nonzero 0.19]
"""

import argparse

from underspec.training.grid import PAPER_CLASSES, PAPER_L1, PAPER_SEEDS

D, H, B, EPOCHS = 784, 16, 64, 50
H100 = {"fp32 FLOP/s": 67e12, "tf32 FLOP/s": 495e12, "HBM bytes/s": 3.35e12}  # SXM5 data sheet, dense


def study(n_train: int, n_test: int, nonzero: float = 1.0) -> dict:
    """``nonzero``: the fraction of pixel values that are not 0, when the first layer's products skip zeros."""
    per_config = len(PAPER_SEEDS) * len(PAPER_L1)
    # per image and network: layer 1 forward and dW1 (2*D*H each); layer 2 forward, dW2, dA (2*H*C each)
    train = sum(per_config * (4 * D * H * nonzero + 6 * H * c) for c in PAPER_CLASSES) * n_train * EPOCHS
    test = sum(per_config * (2 * D * H * nonzero + 2 * H * c) for c in PAPER_CLASSES) * n_test * EPOCHS
    networks = per_config * len(PAPER_CLASSES)
    steps = -(-n_train // B) * EPOCHS
    w1_bytes = networks * H * D * 4
    # every step must at least read and write W1 and the running gradient sum (float32)
    return {"networks": networks, "steps": steps, "flops": train + test, "bytes": 4 * w1_bytes * steps,
            "w1_bytes": w1_bytes}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-gflops", type=float, default=140.0,
                        help="sustained float32 matmul GFLOP/s of the CPU (measured: torch.bmm on this machine)")
    parser.add_argument("--cpu-gbs", type=float, default=75.0,
                        help="memory GB/s of the CPU (measured: an in-place add over W1-sized tensors, cold)")
    parser.add_argument("--nonzero", type=float, default=0.19,
                        help="fraction of non-zero pixel values (MNIST: 0.19), for the sparse first-layer bound")
    args = parser.parse_args()
    print("| data | networks | SGD steps per network | FLOPs | bytes (W1 + grad sum, r+w per step) | "
          "H100 fp32 bound | H100 tf32 bound | HBM bound | CPU bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n_train, n_test in (("MNIST 60,000 / 10,000", 60000, 10000), ("mnist-5k 4,000 / 1,000", 4000, 1000)):
        s = study(n_train, n_test)
        print(f"| {name} | {s['networks']} | {s['steps']:,} | {s['flops'] / 1e12:.1f} T | {s['bytes'] / 1e12:.2f} TB | "
              f"{s['flops'] / H100['fp32 FLOP/s']:.2f} s | {s['flops'] / H100['tf32 FLOP/s']:.2f} s | "
              f"{s['bytes'] / H100['HBM bytes/s']:.2f} s | {s['flops'] / args.cpu_gflops / 1e9:.0f} s |")
    print(f"\nW1 of all 378 networks: {study(1, 1)['w1_bytes'] / 2**20:.1f} MiB (fits the H100's 50 MB L2).")
    print(f"\nWith first-layer products that skip zero pixels ({args.nonzero:.0%} of values non-zero):")
    for name, n_train, n_test in (("MNIST", 60000, 10000), ("mnist-5k", 4000, 1000)):
        s = study(n_train, n_test, args.nonzero)
        print(f"- {name}: {s['flops'] / 1e12:.2f} TFLOP, CPU arithmetic bound {s['flops'] / args.cpu_gflops / 1e9:.0f} s;"
              f" memory bound {s['bytes'] / args.cpu_gbs / 1e9:.0f} s")


if __name__ == "__main__":
    main()

"""The arithmetic floor of the paper study: FLOPs and bytes of one full paper grid, and the lower bounds
they imply on an H100 and on a CPU of a given speed. Pure arithmetic; prints a Markdown table.

    python benchmarks/floor.py [--cpu-gflops 140] [--cpu-gbs 75] [--nonzero 0.19]
    python benchmarks/floor.py --measure fashion-mnist [--threads 1 2]

``--measure DATASET``: this CPU's dense floor, measured: ``torch.bmm`` at the engine's shapes for the paper grid
on DATASET (7 streams of 54 x 16 units, the data's live pixels, batches of 64: the forward product and the
weight gradient of a step, and the test set's product of an epoch), the best of several, at each thread count;
then one epoch of the engine on the same grid and data, and the ratio of the engine's time to the floor's
(the full 50 epochs are 50 such epochs), in wall and in CPU time (on a shared machine the CPU time is the
steadier measure). Appends the result to RESULTS.md.
"""

import argparse
import time

import torch

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
    parser.add_argument("--measure", metavar="DATASET", help="measure this CPU's dense floor and the engine on DATASET")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.threads)
        return
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


def best_ms(call, repeats: int = 15, clock=time.perf_counter) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = clock()
        call()
        times.append(clock() - start)
    return 1000 * min(times)


def dense_floor(s: int, units: int, d: int, n_test: int) -> dict:
    """Milliseconds of the dense products of one step (forward and weight gradient) and of one epoch's test
    product, at the engine's shapes, the best of several."""
    g = torch.Generator().manual_seed(0)
    w1, x = torch.randn(s, units, d, generator=g), torch.rand(s, B, d, generator=g)
    b1, d_z1 = torch.zeros(s, units, 1), torch.randn(s, units, B, generator=g)
    grad, z1 = torch.empty(s, units, d), torch.empty(s, units, B)
    x_test = torch.rand(n_test, d, generator=g)
    out = {}
    for clock in (time.perf_counter, time.process_time):  # wall, and CPU (all threads)
        key = "" if clock is time.perf_counter else "cpu "
        out[key + "step"] = best_ms(lambda: (torch.baddbmm(b1, w1, x.transpose(1, 2), out=z1),
                                             torch.bmm(d_z1, x, out=grad)), clock=clock)
        out[key + "test"] = best_ms(lambda: torch.matmul(w1, x_test.T), repeats=3, clock=clock)
    out["gflops"] = 2 * 2 * s * units * d * B / out["step"] / 1e6
    return out


def measure(name: str, thread_counts: list[int]) -> None:
    import underspec
    from common import append_result
    from underspec.training.data import data_pixels

    data = underspec.load_dataset(name)
    live = int(data_pixels(data.x_train).sum())
    grid = underspec.Grid.paper(epochs=1)
    s, units = len(PAPER_SEEDS), len(grid) // len(PAPER_SEEDS) * H
    steps = -(-len(data.y_train) // B)
    lines = [f"{name}: {len(grid)} networks, {steps} steps an epoch, {live} live pixels, "
             f"{float((data.x_train != 0).float().mean()):.0%} of pixel values non-zero"]
    for threads in thread_counts:
        torch.set_num_threads(threads)
        options = dict(device="cpu", progress=False, snapshots=False, embeddings=False, threads=threads)
        underspec.train(grid, data.take(16 * B, 100), **options)  # warm-up; the product choice for this shape
        floor = dense_floor(s, units, live, len(data.y_test))
        start, cpu = time.perf_counter(), time.process_time()
        run = underspec.train(grid, data, **options)
        engine, cpu = time.perf_counter() - start, time.process_time() - cpu
        again = dense_floor(s, units, live, len(data.y_test))  # the floor again after: the better of the two
        floor = {k: min(floor[k], again[k]) if k != "gflops" else max(floor[k], again[k]) for k in floor}
        epoch_floor = (steps * floor["step"] + floor["test"]) / 1000
        cpu_floor = (steps * floor["cpu step"] + floor["cpu test"]) / 1000
        lines.append(f"{threads} thread(s): floor {floor['step']:.2f} ms a step ({floor['gflops']:.0f} GFLOP/s), "
                     f"{epoch_floor:.1f} s an epoch ({cpu_floor:.1f} s CPU), {50 * epoch_floor / 60:.1f} min for 50 "
                     f"epochs; engine ({'sparse' if run.meta['sparse'] else 'dense'} products) one epoch "
                     f"{engine:.1f} s wall, {cpu:.1f} s CPU ({1000 * engine / steps:.1f} ms a step), 50 epochs about "
                     f"{50 * engine / 60:.1f} min: {engine / epoch_floor:.2f}x the floor in wall time, "
                     f"{cpu / cpu_floor:.2f}x in CPU time (target: 2x)")
        print(lines[-1], flush=True)
    append_result(f"floor: the engine against this CPU's measured dense floor ({name}, paper grid)", "cpu", lines)


if __name__ == "__main__":
    main()

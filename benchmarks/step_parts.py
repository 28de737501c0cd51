"""The parts of one training step of the paper grid (7 seeds x 54 members x 16 units), timed alone, to decide
which techniques pay on this machine. Appends the table to benchmarks/RESULTS.md.

    python benchmarks/step_parts.py [--compile]     # --compile also times torch.compile's fused W1 update
"""

import argparse
import time

import torch

import underspec
from common import append_result
from underspec.training.data import data_pixels
from underspec.training.products import DenseProducts, SparseProducts

S, M, H, D, B, K = 7, 54, 16, 784, 64, 10


def timed(f, n=40) -> float:
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    w1, x = torch.randn(S, M * H, D, generator=g), torch.rand(S, B, D, generator=g)
    d_z1, grad_ce = torch.randn(S, M * H, B, generator=g), torch.randn(S, M * H, D, generator=g)
    grad_sum, l1_rows = torch.zeros(S, M * H, D), torch.rand(S, M * H, 1, generator=g)
    logits = torch.randn(S, M, K, B, generator=g)
    logits_last = logits.transpose(2, 3).contiguous()

    def eager_tail():  # what the engine does after the weight-gradient GEMM
        grad = torch.sign(w1).mul_(l1_rows).add_(grad_ce)
        grad_sum.add_(grad)
        w1.add_(grad, alpha=-0.01)
        return grad.view(S, M, -1).norm(dim=-1)

    rows = {
        "forward GEMM W1 @ X^T (transposed view)": timed(lambda: torch.bmm(w1, x.transpose(1, 2))),
        "forward GEMM X @ W1^T, then transposed copy": timed(
            lambda: torch.bmm(x, w1.transpose(1, 2)).transpose(1, 2).contiguous()),
        "weight-gradient GEMM dZ1 @ X": timed(lambda: torch.bmm(d_z1, x)),
        "log_softmax over classes, classes last (S, M, B, K)": timed(lambda: torch.log_softmax(logits_last, -1)),
        "log_softmax over classes, classes in the middle (S, M, K, B)": timed(lambda: torch.log_softmax(logits, 2)),
        "W1 tail, eager (L1 sign, grad sum, SGD, norm)": timed(eager_tail),
    }
    # The first layer's two products on a real batch of mnist-5k (live pixels only), dense against sparse.
    data = underspec.load_dataset("mnist-5k")
    images = data.x_train[:, data_pixels(data.x_train)]
    idx = torch.stack([torch.randperm(len(images), generator=g)[:B] for _ in range(S)])
    b1, w1_live = torch.zeros(S, M * H), w1[..., :images.shape[1]].contiguous()
    dense, sparse = DenseProducts(images, images.shape[1]), SparseProducts(images, images.shape[1])
    w1_pixel_major = w1_live.transpose(1, 2).contiguous()
    rows["mnist-5k batch: dense bookkeeping (gather X)"] = timed(lambda: dense.set_batch(idx))
    rows["mnist-5k batch: dense forward (batched GEMM)"] = timed(lambda: dense.forward(w1_live, b1))
    rows["mnist-5k batch: dense weight gradient (batched GEMM)"] = timed(lambda: dense.weight_gradient(d_z1))
    rows["mnist-5k batch: sparse bookkeeping (bags, sort by pixel)"] = timed(lambda: sparse.set_batch(idx))
    rows["mnist-5k batch: sparse forward (embedding_bag)"] = timed(lambda: sparse.forward(w1_pixel_major, b1))
    rows["mnist-5k batch: sparse weight gradient (embedding_bag)"] = timed(lambda: sparse.weight_gradient(d_z1))
    if args.compile:
        def tail(w1, grad_ce, grad_sum, l1_rows, lr: float):
            grad = grad_ce + l1_rows * torch.sign(w1)
            grad_sum.add_(grad)
            w1.sub_(lr * grad)
            return grad.view(S, M, -1).square().sum(-1)

        fused = torch.compile(tail)
        start = time.perf_counter()
        fused(w1, grad_ce, grad_sum, l1_rows, 0.01)
        rows["torch.compile of the W1 tail: first call (compile)"] = (time.perf_counter() - start) * 1e3
        rows["W1 tail, torch.compile (one fused kernel)"] = timed(lambda: fused(w1, grad_ce, grad_sum, l1_rows, 0.01))
    append_result("step_parts: one step of the paper grid, part by part (ms)", "cpu",
                  [f"{name}: {ms:.2f} ms" for name, ms in rows.items()])


if __name__ == "__main__":
    main()

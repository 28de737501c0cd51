"""Benchmark: the engine against PyTorch's own ways of training many networks at once, side by side in one run.

    python peers.py                          # the paper grid on mnist-5k, 1 epoch, at 1 and 2 threads
    python peers.py --widths 64 256 1024 4096 --depths 1 3 --optimizers sgd adam --seeds 3
    python peers.py --device cuda

Peers, each training exactly the networks of the grid (the same initial weights from ``init_params``, the
same data order per seed from torch's DataLoader, the same loss, torch.optim's optimizers over the stacked
parameters, which update every member as it would alone):

- ``torch.func``: the model ensembling recipe (``vmap(grad(loss))`` over the stacked parameters, the loss a
  function of one member's parameter dict);
- ``bmm + autograd``: the members' layers as batched matrix products (``torch.baddbmm``), the summed loss
  differentiated by autograd;
- the paper's loop (``train_paper_loop``), one network at a time, timed on one network and scaled.

Each peer also evaluates every member on the test set after every epoch, as the engine and the loop do (with
few steps, as in the widest settings below, that evaluation is a fair share of the work).

Every peer's networks are first checked against the engine's after the epochs (the largest difference of any
parameter is printed), then the engine and every peer are timed in turn, round after round, the best of
``--repeats`` each. The ratios (the peer's time over the engine's: above 1, the engine is faster) are what count
on a shared machine; appends the table to RESULTS.md. ``--train-images N`` trains on the first N images only
(an epoch of N / 64 steps), to keep the widest settings short.

    python peers.py --widths 16 64 256 --depths 1 3 --optimizers sgd adam --threads 1
    python peers.py --widths 1024 4096 --depths 1 3 --optimizers sgd adam --threads 1 --train-images 1024
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.func import grad, vmap

import underspec
from common import append_result, load
from underspec.training.engine import epoch_orders
from underspec.training.model import init_params, output_names, param_names


def stacked_init(grid: underspec.Grid, d: int, device) -> dict[str, torch.Tensor]:
    """Every member's initial parameters, stacked (N, ...), the output layer padded to the largest C."""
    k = max(grid.n_classes)
    members = [init_params(seed, c, grid.hidden, d, grid.depth) for seed, _, c in grid.members()]
    w_out, b_out = output_names(grid.depth)
    out = {}
    for name in param_names(grid.depth):
        values = [m[name] for m in members]
        if name in (w_out, b_out):
            values = [torch.cat([v, v.new_zeros(k - v.shape[0], *v.shape[1:])]) for v in values]
        out[name] = torch.stack(values).to(device).requires_grad_(True)
    return out


def member_constants(grid, data, device):
    """Per member: its L1 strength (N,), class mask (N, K) (0 or -inf), label of each digit (N, 10)."""
    k = max(grid.n_classes)
    members = grid.members()
    l1 = torch.tensor([m[1] for m in members], device=device)
    classes = torch.tensor([m[2] for m in members], device=device)
    mask = torch.where(torch.arange(k, device=device) < classes[:, None], 0.0, float("-inf"))
    digit_labels = torch.stack([underspec.class_labels(torch.arange(10), int(c))[1] for c in classes]).to(device)
    return l1, mask, digit_labels


def forward(params, x, mask, depth):
    """Logits of one member (params unbatched) or of all (params and x with a leading member axis)."""
    h = x
    for layer in range(1, depth + 1):
        h = torch.relu(h @ params[f"w{layer}"].transpose(-1, -2) + params[f"b{layer}"].unsqueeze(-2))
    w, b = output_names(depth)
    return h @ params[w].transpose(-1, -2) + params[b].unsqueeze(-2) + mask.unsqueeze(-2)


def member_loss(params, x, labels, mask, l1, depth):
    logits = forward(params, x, mask, depth)
    return torch.nn.functional.cross_entropy(logits, labels) + l1 * params["w1"].abs().sum()


def train_peer(kind: str, grid, data, device, epochs: int):
    """Train the grid with peer ``kind`` ("torch.func" or "bmm + autograd"); the final stacked parameters."""
    params = stacked_init(grid, data.x_train.shape[1], device)
    l1, mask, digit_labels = member_constants(grid, data, device)
    names = list(params)
    opt = (torch.optim.Adam if grid.optimizer == "adam" else torch.optim.SGD)(list(params.values()), lr=grid.lr)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test, history = data.x_test.to(device), data.y_test.to(device), []
    seeds = [m[0] for m in grid.members()]
    streams = {s: epoch_orders(s, len(y_train), grid.batch_size) for s in dict.fromkeys(seeds)}
    member_stream = torch.tensor([list(streams).index(s) for s in seeds], device=device)
    per_member_grad = vmap(grad(lambda p, x, y, m, lam: member_loss(p, x, y, m, lam, grid.depth)))
    for _ in range(epochs):
        orders = torch.stack([next(stream) for stream in streams.values()]).to(device)  # (seeds, n)
        for start in range(0, len(y_train), grid.batch_size):
            idx = orders[member_stream, start:start + grid.batch_size]  # (N, B)
            x = x_train[idx]
            labels = torch.gather(digit_labels, 1, y_train[idx])
            if kind == "torch.func":
                detached = {n: p.detach() for n, p in params.items()}
                grads = per_member_grad(detached, x, labels, mask, l1)
                for n in names:
                    params[n].grad = grads[n]
            else:
                logits = forward(params, x, mask, grid.depth)  # (N, B, K): batched matmuls
                ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(1)
                loss = (ce + l1 * params["w1"].abs().sum((1, 2))).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
        with torch.no_grad():  # every member's test loss and accuracy after the epoch, as the engine and the loop
            logits = forward(params, x_test, mask, grid.depth)  # (N, T, K), the test images shared by all
            test_labels = torch.gather(digit_labels, 1, y_test.expand(len(seeds), -1))
            history.append((torch.nn.functional.cross_entropy(logits.transpose(1, 2), test_labels, reduction="none")
                            .mean(1), (logits.argmax(-1) == test_labels).float().mean(1)))
    return {n: p.detach() for n, p in params.items()}


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", action="store_true", help="the paper grid (the default without --widths)")
    parser.add_argument("--widths", type=int, nargs="+", default=None)
    parser.add_argument("--depths", type=int, nargs="+", default=[1])
    parser.add_argument("--optimizers", nargs="+", default=["sgd"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=None, help="the first N training images only")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    data = load(args.dataset).take(args.train_images, None)
    if args.widths is None:
        settings = [underspec.Grid.paper(epochs=args.epochs)]
    else:
        settings = [underspec.Grid(seeds=tuple(range(args.seeds)), hidden=w, depth=d, optimizer=o,
                                   lr=0.01 if o == "sgd" else 3e-4, epochs=args.epochs)
                    for o in args.optimizers for d in args.depths for w in args.widths]
    steps = -(-len(data.y_train) // 64) * args.epochs
    lines = [f"each row: the peer's best time over the engine's (above 1: the engine is faster), best of "
             f"{args.repeats} alternated; {steps} steps of {data.name}; max |difference| of any parameter from the "
             "engine's networks after training"]
    for threads in args.threads if args.device == "cpu" else [None]:
        if threads:
            torch.set_num_threads(threads)
        for grid in settings:
            def engine():
                return underspec.train(grid, data, device=args.device, progress=False, snapshots=False,
                                       embeddings=False, threads=threads)

            def loop():  # one network, the grid's largest C; it costs the same for every member
                underspec.train_paper_loop(0, grid.l1[0], max(grid.n_classes), data, hidden=grid.hidden,
                                           depth=grid.depth, optimizer=grid.optimizer, lr=grid.lr,
                                           epochs=grid.epochs, probe_size=10, device=args.device)

            run = engine()  # also warms the engine (and its product choice) up
            gaps = {}
            for kind in ("torch.func", "bmm + autograd"):
                final = train_peer(kind, grid, data, args.device, grid.epochs)
                gaps[kind] = max((final[k].cpu() - run.final[k]).abs().max().item() for k in run.final)
            calls = {"engine": engine, "torch.func": lambda: train_peer("torch.func", grid, data, args.device, grid.epochs),
                     "bmm + autograd": lambda: train_peer("bmm + autograd", grid, data, args.device, grid.epochs),
                     "loop": loop}
            times = {name: [] for name in calls}
            for _ in range(args.repeats):
                for name, call in calls.items():
                    times[name].append(timed(call))
            best = {name: min(t) for name, t in times.items()}
            best["loop"] *= len(grid)
            ratio = {name: best[name] / best["engine"] for name in calls}
            row = (f"{len(grid)} networks, width {grid.hidden}, depth {grid.depth}, {grid.optimizer}, "
                   f"{threads or 'GPU'} thread(s), products {'sparse' if run.meta['sparse'] else 'dense'}: "
                   f"engine {best['engine']:.2f} s; loop {ratio['loop']:.2f}x; torch.func {ratio['torch.func']:.2f}x "
                   f"(max |difference| {gaps['torch.func']:.1e}); bmm + autograd {ratio['bmm + autograd']:.2f}x "
                   f"(max |difference| {gaps['bmm + autograd']:.1e})")
            print(row, flush=True)
            lines.append(row)
    append_result(f"peers: the engine against torch.func, bmm + autograd and the loop ({data.name})", args.device,
                  lines)


if __name__ == "__main__":
    main()

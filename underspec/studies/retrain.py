"""Training networks from given initial weights, vectorised over members: what the unit-level tickets need.

The engine (``underspec.train``) draws every network's initial weights itself, from its seed, exactly as the
paper's constructor does; it cannot start from weights it is given, and the tickets start from pieces of
other networks (the kept units of a trained network, or their initial values). ``train_from`` is the paper's
loop for that case: mean cross-entropy + λ sum|W1|, plain SGD, batches in the order of torch's
``DataLoader(shuffle=True, generator=g)`` for each member's seed (``engine.epoch_orders``, the same orders as
the engine and the loop), written over a leading member axis with torch's autograd, so that every member of
one width trains in one batched program. Each member has its own seed and λ; all share the width, depth,
epochs, learning rate and batch size.

It equals the paper's loop (``train_paper_loop``) to float rounding (batched matrix products sum in another
order: ``tests/test_tickets.py``), and it is deterministic: the same start gives the same bits, which is what
makes the rewound ticket with every unit kept the same network as the original run.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import UnderspecError, shown
from ..progress import progress_bar
from ..training.data import Dataset, class_labels
from ..training.engine import epoch_orders
from ..training.model import depth_of, forward


def train_from(params0: dict[str, torch.Tensor], seeds, l1, data: Dataset, *, epochs: int, n_classes: int = 10,
               class_mode: str = "relabel", lr: float = 0.01, batch_size: int = 64,
               progress: bool = False) -> tuple[dict[str, torch.Tensor], pd.DataFrame]:
    """Train M networks from ``params0`` (each parameter with a leading axis of M members, float32) with plain
    SGD for ``epochs`` epochs: member i sees the data in the order of ``seeds[i]`` and has L1 strength
    ``l1[i]`` (a number: every member). Returns the final parameters (M, ...) and the history, one row per
    member and epoch (``member``, ``seed``, ``epoch``, ``train_loss``, ``test_acc``)."""
    m = _check(params0, seeds, epochs)
    seeds = [int(s) for s in seeds]
    l1 = torch.as_tensor([float(l1)] * m if isinstance(l1, (int, float)) else [float(v) for v in l1],
                         dtype=torch.float32)
    if len(l1) != m or (l1 < 0).any():
        raise UnderspecError(f"l1 must be one strength >= 0 or one per member ({m}), got {shown(l1.tolist())}")
    keep, labels = class_labels(data.y_train, n_classes, class_mode)
    x, y = data.x_train[keep].float(), labels[keep]
    keep_test, labels_test = class_labels(data.y_test, n_classes, class_mode)
    x_test, y_test = data.x_test[keep_test].float(), labels_test[keep_test]
    n = len(y)
    if batch_size > n:
        raise UnderspecError(f"batch size {batch_size} is larger than the {n} training images")
    streams = {s: epoch_orders(s, n, batch_size) for s in dict.fromkeys(seeds)}
    p = {k: v.detach().clone().float().requires_grad_(True) for k, v in params0.items()}
    names = list(p)
    rows = []
    bar = progress_bar(epochs * -(-n // batch_size), f"training {m} networks from given weights", enabled=progress)
    for epoch in range(1, epochs + 1):
        orders = {s: next(stream) for s, stream in streams.items()}
        idx = torch.stack([orders[s] for s in seeds])  # (M, n): each member its seed's order
        loss_sum = torch.zeros(m, dtype=torch.float64)
        for start in range(0, n, batch_size):
            batch = idx[:, start:start + batch_size]
            logits = forward(p, x[batch])  # (M, B, C)
            ce = F.cross_entropy(logits.flatten(0, 1), y[batch].flatten(), reduction="none").view(batch.shape).mean(1)
            loss = ce.sum() + (l1 * p["w1"].abs().sum((-2, -1))).sum()
            grads = torch.autograd.grad(loss, [p[k] for k in names])
            with torch.no_grad():
                for k, g in zip(names, grads):
                    p[k].add_(g, alpha=-lr)
            loss_sum += ce.detach().double() * batch.shape[1]
            bar.update(1)
        with torch.no_grad():
            acc = (forward(p, x_test).argmax(-1) == y_test).double().mean(-1)
        rows += [{"member": i, "seed": seeds[i], "epoch": epoch, "train_loss": float(loss_sum[i] / n),
                  "test_acc": float(acc[i])} for i in range(m)]
    bar.close()
    return {k: v.detach() for k, v in p.items()}, pd.DataFrame(rows)


def stacked(params: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Several networks' parameter dicts as one with a leading member axis."""
    return {k: torch.stack([p[k] for p in params]) for k in params[0]}


def _check(params0, seeds, epochs) -> int:
    if not isinstance(params0, dict) or "w1" not in params0 or params0["w1"].dim() != 3:
        raise UnderspecError("train_from takes parameters with a leading member axis (w1 of shape (M, H, D)), e.g. "
                             "stacked([init_params(0, 10), ...])")
    m = params0["w1"].shape[0]
    if any(v.shape[0] != m for v in params0.values()) or len(params0) != 2 * (depth_of(params0) + 1):
        raise UnderspecError("every parameter needs the same leading member axis (w1, b1, ..., as Member.final has them)")
    if len(list(seeds)) != m:
        raise UnderspecError(f"one seed per member: {m} members, {len(list(seeds))} seeds")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UnderspecError(f"epochs must be an integer >= 1, got {shown(epochs)}")
    return m

"""What the networks predict: disagreement between seeds, calibration, ensembles, and the linear path between
two networks' weights (the loss barrier, before and after aligning their units; ``barriers`` for every seed
pair and lambda of a run).

Logits come from ``underspec.forward(params, x)``: (..., N, C) for N inputs; labels (N,) are class indices
0..C-1 of the configuration (``underspec.class_labels`` turns digits into them). Cut padded ``w2`` / ``b2``
rows of stacked ``Run`` parameters to the member's C first (``Run.member`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import UnderspecError, check_choice
from ..training.data import Dataset, class_labels
from ..training.model import forward
from ..training.run import Run, check_run
from .matching import DEFAULT_POLICY, align_units, seed_pairs
from .symmetry import permute_hidden

ALIGNMENTS = ("as trained", "weights", "activations")
N_ALIGN = 1000  # training images whose activations align the units (the test images stay held out)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of inputs whose arg-max class is the label: (..., N, C), (N,) -> (...,)."""
    _check_labels(logits, labels)
    return (logits.argmax(-1) == labels).double().mean(-1)


def disagreement(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Churn: fraction of inputs on which two networks predict different classes, (..., N, C) x2 -> (...,).

    All seed pairs at once: ``disagreement(logits[:, None], logits[None])`` for logits (S, N, C) -> (S, S).
    """
    if logits_a.shape[-2:] != logits_b.shape[-2:]:
        raise UnderspecError(f"logits must cover the same inputs and classes, got {tuple(logits_a.shape[-2:])} "
                             f"and {tuple(logits_b.shape[-2:])}")
    return (logits_a.argmax(-1) != logits_b.argmax(-1)).double().mean(-1)


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, *, n_bins: int = 15) -> torch.Tensor:
    """ECE: the confidence (max softmax probability) put in ``n_bins`` equal-width bins of (0, 1];
    sum over bins of (share of inputs) x |accuracy - mean confidence|. (..., N, C), (N,) -> (...,)."""
    _check_labels(logits, labels)
    if n_bins < 1:
        raise UnderspecError(f"n_bins must be a positive integer, got {n_bins!r}")
    conf, pred = logits.double().softmax(-1).max(-1)
    correct = (pred == labels).double()
    bins = (conf * n_bins).ceil().long().clamp(1, n_bins) - 1
    share = F.one_hot(bins, n_bins).double()  # (..., N, bins)
    gap = ((correct - conf).unsqueeze(-1) * share).sum(-2)  # per bin: sum of (correct - confidence)
    return gap.abs().sum(-1) / conf.shape[-1]


def ensemble_accuracy(logits: torch.Tensor, labels: torch.Tensor, *, dim: int = 0) -> torch.Tensor:
    """Accuracy of the ensemble that averages the softmax probabilities over axis ``dim`` (the seeds).

    logits (..., N, C) with the members along ``dim`` (not one of the last two axes) -> the remaining axes.
    """
    _check_labels(logits, labels)
    if dim % logits.dim() >= logits.dim() - 2:
        raise UnderspecError(f"dim must be a leading (member) axis, not the input or class axis; got {dim}")
    return accuracy(logits.softmax(-1).mean(dim), labels)


def linear_path(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor, labels: torch.Tensor,
                *, n_points: int = 11, per_example: bool = False) -> dict[str, torch.Tensor]:
    """Loss and accuracy of the networks (1 - t) a + t b, for t in ``n_points`` even steps over [0, 1].

    a, b: parameter dicts (``w1`` (..., H, D), ``b1``, ``w2`` (..., C, H), ``b2``), leading axes broadcast;
    x (N, D), labels (N,). Align first for the path "after alignment":
    ``linear_path(a, permute_hidden(b, align_units(a, b)), x, labels)`` (``underspec.metrics.matching``).
    Returns ``t`` (T,), ``loss`` (..., T) (mean cross-entropy), ``acc`` (..., T), and ``loss_barrier`` /
    ``acc_barrier`` (...,) (see ``barrier``); with ``per_example``, also ``loss_examples`` and ``correct``
    (..., T, N): every image's cross-entropy and whether it is classified right, along the path.
    """
    if n_points < 2:
        raise UnderspecError(f"n_points must be >= 2 (the two end points), got {n_points}")
    t = torch.linspace(0, 1, n_points, dtype=a["w1"].dtype, device=a["w1"].device)
    lead = np.broadcast_shapes(a["b1"].shape[:-1], b["b1"].shape[:-1])
    mixed = {}
    for k in a:
        shape = (n_points,) + (1,) * (len(lead) + (2 if k.startswith("w") else 1))
        mixed[k] = a[k] + t.reshape(shape) * (b[k] - a[k])  # (T, ..., param shape)
    logits = forward(mixed, x.to(t.dtype))  # (T, ..., N, C)
    _check_labels(logits, labels)
    losses = F.cross_entropy(logits.double().movedim(-1, 1), labels.expand(logits.shape[:-1]), reduction="none")
    loss, acc = losses.mean(-1).movedim(0, -1), accuracy(logits, labels).movedim(0, -1)
    out = {"t": t, "loss": loss, "acc": acc, "loss_barrier": barrier(loss),
           "acc_barrier": barrier(acc, higher_is_better=True)}
    if per_example:
        out["loss_examples"] = losses.movedim(0, -2)  # (..., T, N)
        out["correct"] = (logits.argmax(-1) == labels).double().movedim(0, -2)
    return out


def barrier(curve: torch.Tensor, *, higher_is_better: bool = False) -> torch.Tensor:
    """The barrier of a curve along an evenly spaced path (..., T) -> (...,) (Entezari et al. 2022): the
    largest excess of the curve over the straight line between its end points (for a loss), or shortfall
    under it (``higher_is_better``, for an accuracy). 0 means the path is no worse than its ends."""
    steps = torch.linspace(0, 1, curve.shape[-1], dtype=curve.dtype, device=curve.device)
    line = curve[..., :1] + steps * (curve[..., -1:] - curve[..., :1])
    excess = (line - curve) if higher_is_better else (curve - line)
    return excess.amax(-1)


@dataclass(frozen=True, eq=False)
class Barriers:
    """The linear paths between the seeds of a run, from ``barriers``.

    ``table``: one row per (l1, alignment, seed pair): ``l1``, ``alignment``, ``seed_a``, ``seed_b``,
    ``loss_barrier``, ``acc_barrier`` (see ``barrier``). ``t`` (T,): the points of the path.
    ``curves``: {(l1, alignment): {"loss": (pairs, T), "acc": (pairs, T)}}, the test loss and accuracy along
    every pair's path, pairs in the order of the table.
    """

    table: pd.DataFrame
    t: torch.Tensor
    curves: dict


def barriers(run: Run, data: Dataset, n_classes: int, *, l1=None, pairs: str = "all",
             alignments=ALIGNMENTS, n_align: int = N_ALIGN, n_points: int = 21,
             policy: str = DEFAULT_POLICY, n_blocks: int | None = None) -> Barriers:
    """Linear mode connectivity between the seeds of ``run`` at class count ``n_classes``: for each lambda
    (``l1``: one value, several, or None for every lambda of the grid), each seed pair (``pairs``: ``"all"``
    or ``"reference"``, see ``seed_pairs``) and each alignment of the second network, the test loss and
    accuracy along the straight line between the two networks' final weights (``linear_path``).

    ``alignments``: any of ``"as trained"`` (the units in their trained order), ``"weights"`` (weight
    matching) and ``"activations"`` (matching the units' post-ReLU activations on the first ``n_align``
    training images), see ``align_units``. The path is evaluated on ``data``'s test images, with the
    labels of the configuration (``class_labels`` under the grid's class mode); ``data`` must be the data
    set the run was trained on. Returns a ``Barriers`` (tidy table, path points, curves). ``n_blocks``: the
    table also holds every barrier with each of ``n_blocks`` blocks of test images left out (a ``block``
    column, -1 for every image), for intervals that resample the seeds and the images together
    (``uncertainty.crossed_estimate``).
    """
    if n_blocks is not None and (isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 2):
        raise UnderspecError(f"n_blocks must be an integer of at least 2, or None, got {n_blocks!r}")
    check_run(run, "barriers")
    alignments = tuple(alignments)
    for name in alignments:
        check_choice(name, ALIGNMENTS, "alignment")
    if n_align < 2:
        raise UnderspecError(f"n_align must be at least 2 images, got {n_align!r}")
    lambdas = run.lambdas(l1)
    keep, labels = class_labels(data.y_test, n_classes, run.grid.class_mode)
    x_test, y_test = data.x_test[keep], labels[keep]
    x_align = data.x_train[:n_align]
    pair_list = seed_pairs(run.grid.seeds, pairs)
    rows, curves, t = [], {}, None
    for lam in lambdas:
        a = run.stack(lam, n_classes, seeds=[s for s, _ in pair_list])  # (pairs, ...): the first networks
        b = run.stack(lam, n_classes, seeds=[s for _, s in pair_list])  # and the second ones
        for name in alignments:
            if name == "as trained":
                other = b
            else:
                perm = align_units(a, b, method=name, x=x_align if name == "activations" else None, policy=policy)
                other = permute_hidden(b, perm)
            path = linear_path(a, other, x_test, y_test, n_points=n_points, per_example=n_blocks is not None)
            t = path["t"]
            curves[(float(lam), name)] = {"loss": path["loss"], "acc": path["acc"]}
            found = [(-1, path["loss_barrier"], path["acc_barrier"])]
            if n_blocks is not None:
                block = torch.arange(len(y_test)) * n_blocks // len(y_test)
                found += [(k, barrier(path["loss_examples"][..., block != k].mean(-1)),
                           barrier(path["correct"][..., block != k].mean(-1), higher_is_better=True))
                          for k in range(n_blocks)]
            rows += [{"l1": float(lam), "alignment": name, "seed_a": sa, "seed_b": sb,
                      **({} if n_blocks is None else {"block": k}), "loss_barrier": float(lb), "acc_barrier": float(ab)}
                     for k, loss_b, acc_b in found for (sa, sb), lb, ab in zip(pair_list, loss_b, acc_b)]
    return Barriers(pd.DataFrame(rows), t, curves)


def _check_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if labels.dim() != 1 or labels.shape[0] != logits.shape[-2]:
        raise UnderspecError(f"labels must be (N,) for logits (..., N, C) = {tuple(logits.shape)}, "
                             f"got {tuple(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[-1]):
        raise UnderspecError(f"labels must be class indices 0..{logits.shape[-1] - 1}: map digits with "
                             "underspec.class_labels first")

"""Structured pruning and unit-level tickets (Frankle and Carbin 2018 at the level of whole units; Liu et al.
2018): keep k of a trained network's H hidden units and ask what the kept units are worth.

Units are scored four ways (``SCORES``): |v_i| ||u_i|| (the norm of a unit's outgoing weights times that of its
incoming weights), ||u_i||, its mean activation (ReLU output) on training images, and at random; the k best are
kept in their original order. Then, each trained by the engine from given weights (``train(..., start=...)``)
with the same data order as the original run (the member's seed):

- ``fine-tune``: the kept units with their trained weights, trained on for the same number of epochs;
- ``rewind``: the kept units with their initial weights (the unit-level ticket), trained as long as the
  original. Init scale: the kept first layer was drawn with Xavier's fan (D + H) and the kept output layer with
  (H + C); a fresh width-k network has (D + k) and (k + C). ``rewind`` rescales both layers to a fresh width-k
  network's scale (by sqrt((D + H) / (D + k)) and sqrt((H + C) / (k + C)); exactly 1 at k = H), so that the
  ticket differs from a fresh network only in which random values its units start from; ``rewind, kept scale``
  (first score only) keeps them as drawn;
- ``scratch-E``: a fresh width-k network (the paper's initialisation for that width and the member's seed)
  trained the same number of epochs; ``scratch-B``: the same trained with the same compute as the original
  width-H network, epochs x params(H) / params(k) (Liu et al.'s Scratch-B).

Every variant of every k is a part of one ``train_parts`` call (the variants of one width and schedule train as
one group, their seeds' streams shared), after the original networks' ``train`` call. With k = H and any score
the kept network is the original one, unit for unit in its order: its rewound ticket is the original training
run, bit for bit (``tests/test_tickets.py``).
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import torch

from ..errors import UnderspecError, shown
from ..training.data import Dataset
from ..training.engine import train, train_parts
from ..training.grid import Grid
from ..training.model import preactivations
from ..training.run import Run

SCORES = ("|v|·||u||", "||u||", "mean activation", "random")
VARIANTS = ("fine-tune", "rewind", "rewind, kept scale", "scratch-E", "scratch-B")


def unit_scores(params: dict[str, torch.Tensor], x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Every score of ``SCORES`` for the units of one-hidden-layer networks: params (M, ...), x (N, D) training
    images -> {score: (M, H) float64} (larger: more important)."""
    if "w3" in params:
        raise UnderspecError("unit_scores scores the units of one hidden layer (depth 1)")
    u, v = params["w1"].double(), params["w2"].double()
    out_norm, in_norm = torch.linalg.vector_norm(v, dim=-2), torch.linalg.vector_norm(u, dim=-1)
    acts = torch.relu(preactivations(params, x.to(params["w1"].dtype))[0]).double().mean(-2)
    return {"|v|·||u||": out_norm * in_norm, "||u||": in_norm, "mean activation": acts,
            "random": torch.rand(in_norm.shape, generator=generator, dtype=torch.float64)}


def keep_best(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The k highest-scoring units of every member, in their original order: (M, H) -> (M, k) int64."""
    h = scores.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= h:
        raise UnderspecError(f"k is a number of units to keep, from 1 to {h}, got {shown(k)}")
    return torch.sort(torch.topk(scores, k, dim=-1, sorted=False).indices, dim=-1).values


def subnetwork(params: dict[str, torch.Tensor], kept: torch.Tensor, *, rescale: bool) -> dict[str, torch.Tensor]:
    """The networks of the kept units: params (M, ...) of width H, kept (M, k) -> params (M, ...) of width k
    (rows of w1 and b1, columns of w2). ``rescale``: to a fresh width-k network's Xavier scale (module doc)."""
    d, h, c, k = params["w1"].shape[-1], params["w1"].shape[-2], params["w2"].shape[-2], kept.shape[-1]
    w1 = params["w1"].gather(-2, kept.unsqueeze(-1).expand(*kept.shape, d))
    b1 = params["b1"].gather(-1, kept)
    w2 = params["w2"].gather(-1, kept.unsqueeze(-2).expand(*kept.shape[:-1], c, k))
    if rescale:
        w1 = w1 * math.sqrt((d + h) / (d + k))
        w2 = w2 * math.sqrt((h + c) / (k + c))
    return {"w1": w1, "b1": b1, "w2": w2, "b2": params["b2"].clone()}


def n_params(hidden: int, d: int, c: int) -> int:
    return hidden * d + hidden + c * hidden + c


def ticket_table(data: Dataset, seeds, *, hidden: int, ks, epochs: int, n_classes: int = 10, l1: float = 0.0,
                 lr: float = 0.01, batch_size: int = 64, n_score: int = 1000, progress: bool = False) -> pd.DataFrame:
    """The original width-``hidden`` networks of ``seeds`` trained ``epochs`` epochs by the engine (from the
    paper's initialisation), then for every k of ``ks`` and score every variant of ``VARIANTS``, all trained in
    one ``train_parts`` call: one row per seed, k, score and variant with ``test_acc``, ``train_loss``,
    ``epochs`` and ``l1`` (the original: variant ``"original"``, k = hidden). Scores read the first ``n_score``
    training images."""
    ks = [int(k) for k in ks]
    if any(not 1 <= k <= hidden for k in ks):
        raise UnderspecError(f"every k must be from 1 to hidden = {hidden}, got {ks}")
    d = data.x_train.shape[1]
    grid = Grid(seeds=tuple(int(s) for s in seeds), l1=(float(l1),), n_classes=(n_classes,), hidden=hidden,
                epochs=epochs, lr=lr, batch_size=batch_size)
    options = {"progress": progress, "snapshots": False, "embeddings": False}
    original = train(grid, data, **options)
    init, final = original.init, original.final
    scores = unit_scores(final, data.x_train[:n_score], torch.Generator().manual_seed(0))
    parts, starts, labels = [], [], []  # one part per variant: its grid, its start (None: the seeds' own), its row
    for k in ks:
        narrow = dataclasses.replace(grid, hidden=k)
        for j, (score, value) in enumerate(scores.items()):
            kept = keep_best(value, k)
            parts += [narrow, narrow]
            starts += [subnetwork(final, kept, rescale=False), subnetwork(init, kept, rescale=True)]
            labels += [(k, score, "fine-tune"), (k, score, "rewind")]
            if j == 0:
                parts.append(narrow)
                starts.append(subnetwork(init, kept, rescale=False))
                labels.append((k, score, "rewind, kept scale"))
        budget = max(epochs, round(epochs * n_params(hidden, d, n_classes) / n_params(k, d, n_classes)))
        parts += [narrow, dataclasses.replace(narrow, epochs=budget)]  # fresh: drawn from the seeds
        starts += [None, None]
        labels += [(k, "", "scratch-E"), (k, "", "scratch-B")]
    runs = train_parts(parts, data, start=starts, **options)
    rows = [_rows(original, hidden, "", "original")] + [_rows(run, *label) for run, label in zip(runs, labels)]
    return pd.concat(rows, ignore_index=True).assign(l1=float(l1))


def _rows(run: Run, k: int, score: str, variant: str) -> pd.DataFrame:
    """Every member's last epoch: seed, k, score, variant, epochs, test_acc, train_loss."""
    last = run.history[run.history.epoch == run.grid.epochs]
    return pd.DataFrame({"seed": last.seed.to_numpy(), "k": k, "score": score, "variant": variant,
                         "epochs": run.grid.epochs, "test_acc": last.test_acc.to_numpy(),
                         "train_loss": last.train_loss.to_numpy()})

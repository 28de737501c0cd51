"""Structured pruning and unit-level tickets (Frankle and Carbin 2018 at the level of whole units; Liu et al.
2018): keep k of a trained network's H hidden units and ask what the kept units are worth.

Units are scored four ways (``SCORES``): |v_i| ||u_i|| (the norm of a unit's outgoing weights times that of its
incoming weights), ||u_i||, its mean activation (ReLU output) on training images, and at random; the k best are
kept in their original order. Then, each trained with ``retrain.train_from`` on the same data order as the
original run:

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

With k = H and any score the kept network is the original one, unit for unit in its order: its rewound ticket
is the original training run, bit for bit (``tests/test_tickets.py``), which is why the original networks are
trained here by ``train_from`` as well.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from ..errors import UnderspecError, shown
from ..training.data import Dataset
from ..training.model import init_params, preactivations
from .retrain import stacked, train_from

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
    """The original width-``hidden`` networks of ``seeds`` trained ``epochs`` epochs (``train_from`` from the
    paper's initialisation), then for every k of ``ks`` and score every variant of ``VARIANTS``: one row per
    seed, k, score and variant with ``test_acc``, ``train_loss``, ``epochs`` and ``l1`` (the original: variant
    ``"original"``, k = hidden). Scores read the first ``n_score`` training images."""
    seeds = [int(s) for s in seeds]
    d = data.x_train.shape[1]
    ks = [int(k) for k in ks]
    if any(not 1 <= k <= hidden for k in ks):
        raise UnderspecError(f"every k must be from 1 to hidden = {hidden}, got {ks}")
    init = stacked([init_params(s, n_classes, hidden, d) for s in seeds])
    run = {"n_classes": n_classes, "lr": lr, "batch_size": batch_size, "progress": progress}
    final, history = train_from(init, seeds, l1, data, epochs=epochs, **run)
    rows = [_rows(history, epochs, seeds, hidden, "", "original")]
    scores = unit_scores(final, data.x_train[:n_score], torch.Generator().manual_seed(0))
    for k in ks:
        starts, labels = [], []
        for j, (score, value) in enumerate(scores.items()):
            kept = keep_best(value, k)
            starts += [subnetwork(final, kept, rescale=False), subnetwork(init, kept, rescale=True)]
            labels += [(score, "fine-tune"), (score, "rewind")]
            if j == 0:
                starts.append(subnetwork(init, kept, rescale=False))
                labels.append((score, "rewind, kept scale"))
        fresh = stacked([init_params(s, n_classes, k, d) for s in seeds])
        starts.append(fresh)
        labels.append(("", "scratch-E"))
        params0 = {name: torch.cat([s[name] for s in starts]) for name in init}
        _, history = train_from(params0, seeds * len(starts), l1, data, epochs=epochs, **run)
        for i, (score, variant) in enumerate(labels):
            part = history[history.member // len(seeds) == i].assign(member=lambda t: t.member % len(seeds))
            rows.append(_rows(part, epochs, seeds, k, score, variant))
        budget = max(epochs, round(epochs * n_params(hidden, d, n_classes) / n_params(k, d, n_classes)))
        _, history = train_from(fresh, seeds, l1, data, epochs=budget, **run)
        rows.append(_rows(history, budget, seeds, k, "", "scratch-B"))
    return pd.concat(rows, ignore_index=True).assign(l1=float(l1))


def _rows(history: pd.DataFrame, epochs: int, seeds: list[int], k: int, score: str, variant: str) -> pd.DataFrame:
    last = history[history.epoch == epochs].sort_values("member")
    return pd.DataFrame({"seed": [seeds[i] for i in last.member], "k": k, "score": score, "variant": variant,
                         "epochs": epochs, "test_acc": last.test_acc.to_numpy(),
                         "train_loss": last.train_loss.to_numpy()})

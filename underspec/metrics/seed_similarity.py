"""How alike the seeds of one configuration are, by measures that mean the same for any width, depth or
optimizer, each beside the null that fits it: for comparing runs that differ in their architecture or
training (``seed_similarity`` per seed pair, ``similarity_estimates`` with seed-level intervals).

- ``disagreement``: the fraction of test images two seeds classify differently. Null: two networks of the
  same accuracies whose errors are independent and spread evenly over the wrong classes.
- ``cka``: linear CKA of the two first hidden layers on the probe images (``Run.embeddings``). Null: the same
  pair before training (epoch 0), so the CKA that training adds.
- ``apc1_excess``: APC-1 of the first layer's weights above its structured null (``chance.null_structured``);
  one hidden layer only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..errors import UnderspecError
from ..training.data import Dataset, class_labels
from ..training.model import forward
from ..training.run import Run, check_run
from .chance import null_structured
from .matching import pair_metrics, seed_pairs
from .predictions import disagreement
from .representations import linear_cka
from .uncertainty import estimate, pair_array

METRICS = ("accuracy", "disagreement", "cka", "apc1_excess")


def seed_similarity(run: Run, data: Dataset, *, l1: float | None = None, n_classes: int | None = None,
                    seed: int = 0) -> pd.DataFrame:
    """Every seed pair of one configuration of ``run`` (default: its first lambda and largest C).

    Returns one row per pair: ``seed_a``, ``seed_b``, their test accuracies ``acc_a``, ``acc_b``,
    ``disagreement`` and ``disagreement_null``, ``cka`` and ``cka_null`` (needs the run's embeddings),
    ``apc1_excess`` (NaN for a network of more than one hidden layer, whose per-layer metrics are not built).
    ``seed`` seeds the structured null (drawn pair by pair, so its values differ from ``compare``'s, which
    draws the mixings of all pairs at once).
    """
    check_run(run, "seed_similarity")
    if run.embeddings is None:
        raise UnderspecError("seed_similarity needs the run's embeddings: train with embeddings=True")
    g = run.grid
    l1 = g.l1[0] if l1 is None else float(l1)
    c = max(g.n_classes) if n_classes is None else int(n_classes)
    keep, labels = class_labels(data.y_test, c, g.class_mode)
    params = {k: v.double() for k, v in run.stack(l1, c).items()}  # (S, ...)
    logits = forward(params, data.x_test[keep].double())  # (S, T, C)
    acc = (logits.argmax(-1) == labels[keep]).double().mean(-1)  # (S,)
    churn = disagreement(logits[:, None], logits[None])  # (S, S)
    pairs = seed_pairs(g.seeds, "all")
    position = {s: i for i, s in enumerate(g.seeds)}
    ia = [position[a] for a, _ in pairs]
    ib = [position[b] for _, b in pairs]
    p, q = acc[ia], acc[ib]
    agree_by_chance = p * q + (1 - p) * (1 - q) / (c - 1)
    # only the untrained and the final epoch: all epochs of every pair of wide layers would take gigabytes
    members = torch.tensor([run.index(s, l1, c) for s in g.seeds])
    embeddings = run.embeddings[:, [0, -1]][members].double()  # (S, 2, P, H); no other epoch is read
    cka = linear_cka(embeddings[ia], embeddings[ib])  # (pairs, 2)
    table = pd.DataFrame({"seed_a": [a for a, _ in pairs], "seed_b": [b for _, b in pairs],
                          "acc_a": p.numpy(), "acc_b": q.numpy(), "disagreement": churn[ia, ib].numpy(),
                          "disagreement_null": (1 - agree_by_chance).numpy(),
                          "cka": cka[:, 1].numpy(), "cka_null": cka[:, 0].numpy()})
    table["apc1_excess"] = np.nan
    if g.depth == 1:  # pair by pair: the structured null of all pairs of wide layers at once takes gigabytes
        for row, (i, j) in enumerate(zip(ia, ib)):
            a, b = ({k: v[n] for k, v in params.items()} for n in (i, j))
            table.loc[row, "apc1_excess"] = float(pair_metrics(a, b)["apc1"]
                                                  - null_structured(a, b, seed=seed)["apc1"])
    return table


def similarity_estimates(table: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """The mean of every metric of a ``seed_similarity`` table with its seed-level interval (delete-one-seed
    jackknife, ``metrics.uncertainty``) and the mean of its null: one row per metric of ``METRICS``
    (``metric``, ``value``, ``low``, ``high``, ``null``). Accuracy is a per-seed quantity: its interval is the
    t interval over seeds, and it has no null."""
    seeds = pd.concat([table[["seed_a", "acc_a"]].set_axis(["seed", "acc"], axis=1),
                       table[["seed_b", "acc_b"]].set_axis(["seed", "acc"], axis=1)]).drop_duplicates("seed").acc
    half = stats.t.ppf((1 + level) / 2, len(seeds) - 1) * seeds.std(ddof=1) / np.sqrt(len(seeds)) \
        if len(seeds) > 1 else np.nan
    rows = [{"metric": "accuracy", "value": seeds.mean(), "low": seeds.mean() - half, "high": seeds.mean() + half,
             "null": np.nan}]
    for metric in METRICS[1:]:
        e = estimate(pair_array(table, metric, [])[2], level=level)
        null = table[f"{metric}_null"].mean() if f"{metric}_null" in table else 0.0
        rows.append({"metric": metric, "value": e.value, "low": e.low, "high": e.high, "null": null})
    return pd.DataFrame(rows)

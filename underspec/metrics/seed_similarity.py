"""How alike the seeds of one configuration are, by measures that mean the same for any width, depth or
optimizer, each beside the null that fits it: for comparing runs that differ in their architecture or
training (``seed_similarity`` per seed pair, ``similarity_estimates`` with seed-level intervals).

- ``disagreement``: the fraction of test images two seeds classify differently. Null: two networks of the
  same accuracies whose errors are independent and spread evenly over the wrong classes.
- ``cka``: linear CKA of the two first hidden layers on the probe images (``Run.embeddings``). Null: the same
  pair before training (epoch 0), so the CKA that training adds.
- ``apc1_excess``: APC-1 of the first layer's weights above its structured null (``compare``); one hidden
  layer only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import UnderspecError
from ..training.data import Dataset, class_labels
from ..training.model import forward
from ..training.run import Run, check_run
from .matching import seed_pairs
from .predictions import disagreement
from .representations import cka_over_training
from .tables import compare
from .uncertainty import estimate, pair_array

METRICS = ("accuracy", "disagreement", "cka", "apc1_excess")


def seed_similarity(run: Run, data: Dataset, *, l1: float | None = None, n_classes: int | None = None,
                    seed: int = 0) -> pd.DataFrame:
    """Every seed pair of one configuration of ``run`` (default: its first lambda and largest C).

    Returns one row per pair: ``seed_a``, ``seed_b``, their test accuracies ``acc_a``, ``acc_b``,
    ``disagreement`` and ``disagreement_null``, ``cka`` and ``cka_null`` (needs the run's embeddings),
    ``apc1_excess`` (NaN for a network of more than one hidden layer, whose per-layer metrics are not built).
    ``seed`` seeds the structured null.
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
    cka = cka_over_training(run, c, l1=l1)
    table = pd.DataFrame({"seed_a": [a for a, _ in pairs], "seed_b": [b for _, b in pairs],
                          "acc_a": p.numpy(), "acc_b": q.numpy(), "disagreement": churn[ia, ib].numpy(),
                          "disagreement_null": (1 - agree_by_chance).numpy(),
                          "cka": cka[cka.epoch == cka.epoch.max()].cka.to_numpy(),
                          "cka_null": cka[cka.epoch == 0].cka.to_numpy()})
    if g.depth == 1:
        weights = compare(run, "all", targets="params", null="structured", alive=False, seed=seed)
        weights = weights[(weights.l1 == l1) & (weights.n_classes == c)]
        table["apc1_excess"] = (weights.apc1 - weights.apc1_null_structured).to_numpy()
    else:
        table["apc1_excess"] = np.nan
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

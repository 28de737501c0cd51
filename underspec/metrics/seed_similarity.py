"""How alike the seeds of one configuration are, by measures that mean the same for any width, depth or
optimizer, each beside the null that fits it: for comparing runs that differ in their architecture or
training (``seed_similarity`` per seed pair, ``similarity_estimates`` with seed-level intervals).

- ``disagreement``: the fraction of test images two seeds classify differently. Null: two networks of the
  same accuracies whose errors are independent and spread evenly over the wrong classes.
- ``cka`` / ``cka_last``: linear CKA of the two first / last hidden layers (before ReLU, as ``Run.embeddings``)
  on probe images, computed from the final parameters. Null: the same pair before training (the initial
  parameters), so the CKA that training adds. At depth 1 the two are the same layer.
- ``apc1_excess``: APC-1 of the first layer's weights above its structured null (``chance.null_structured``).
  The first layer's incoming weights are indexed by pixels, so APC-1 means the same at any depth; a deeper
  layer's incoming weights are indexed by the previous layer's units, whose order differs from seed to seed.
- ``barrier``: the test-loss barrier on the straight line between the two networks after Git Re-Basin weight
  matching of every hidden layer (``matching.weight_matching``), on the probe images. Null: the barrier as
  trained, units unaligned. Near 0 after alignment: the two seeds are one basin up to a permutation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..errors import UnderspecError
from ..training.data import Dataset, class_labels
from ..training.model import forward, permutation_spec, preactivations
from ..training.grid import AXES
from ..training.run import MixedRun, Run, check_probe, check_run
from .chance import null_structured
from .matching import pair_metrics, seed_pairs, weight_matching

# What each metric of ``seed_similarity`` and of ``layers.layer_similarity`` is called in a figure or a sentence.
METRIC_NAMES = {"accuracy": "test accuracy", "disagreement": "disagreement between seeds",
                "cka": "CKA, first hidden layer", "cka_last": "CKA, last hidden layer",
                "apc1_excess": "APC-1 above its structured null", "barrier": "loss barrier, units aligned",
                "apc_in": "APC, incoming weights", "apc_out": "APC, outgoing weights", "pe": "PE",
                "apc_act": "APC, activations", "layer_cka": "CKA"}
from .predictions import disagreement, linear_path
from .representations import linear_cka
from .symmetry import permute
from .uncertainty import estimate, multibootstrap, pair_array, seed_image_estimate

METRICS = ("accuracy", "disagreement", "cka", "cka_last", "apc1_excess", "barrier")


def seed_similarity(run: Run, data: Dataset, *, l1: float | None = None, n_classes: int | None = None,
                    probe_size: int = 500, seed: int = 0, examples: bool = False):
    """Every seed pair of one configuration of ``run`` (default: its first lambda and largest C).

    Returns one row per pair: ``seed_a``, ``seed_b``, their test accuracies ``acc_a``, ``acc_b``,
    ``disagreement`` and ``disagreement_null``, ``cka``, ``cka_null``, ``cka_last``, ``cka_last_null``,
    ``apc1_excess``, ``barrier`` and ``barrier_null`` (CKA and barriers on the first ``probe_size`` test
    images of the configuration's classes). ``seed`` seeds the structured null (drawn pair by pair, so its
    values differ from ``compare``'s, which draws the mixings of all pairs at once). Needs only the initial
    and final parameters of the run. ``examples`` (a uniform run): also return, per example-level metric, its
    value for every seed pair on every test image, {"disagreement": (S, S, T)} in grid seed order, and every
    seed's correctness on every test image, {"correct": (S, T)}, for intervals that resample the images too
    (``similarity_estimates(..., examples=)``).
    """
    if isinstance(run, MixedRun) and examples:
        raise UnderspecError("seed_similarity(examples=True) takes one part of a mixed run: run.part(...)")
    if isinstance(run, MixedRun):  # part by part, the axes as columns
        return run.tables(lambda part: seed_similarity(part, data, l1=l1, n_classes=n_classes,
                                                       probe_size=probe_size, seed=seed))
    check_run(run, "seed_similarity")
    check_probe(run, data, probe_size, "seed_similarity")
    g = run.grid
    l1 = g.l1[0] if l1 is None else float(l1)
    c = max(g.n_classes) if n_classes is None else int(n_classes)
    keep, labels = class_labels(data.y_test, c, g.class_mode)
    x = data.x_test[keep].double()
    stacked = {record: run.stack(l1, c, record) for record in ("final", "init")}  # as trained, float32

    def network(n: int, record: str = "final") -> dict:  # one seed's parameters in float64
        return {k: v[n].double() for k, v in stacked[record].items()}

    # seed by seed, in float64: the parameters and hidden layers of every seed at once take tens of megabytes
    logits = torch.stack([forward(network(n), x) for n in range(len(g.seeds))])  # (S, T, C)
    # a diverged seed (a parameter not finite) has no accuracy and no pair metric: NaN, as compare gives
    ok = torch.tensor([all(bool(torch.isfinite(v[n]).all()) for v in stacked["final"].values())
                       for n in range(len(g.seeds))])
    acc = torch.where(ok, (logits.argmax(-1) == labels[keep]).double().mean(-1), torch.nan)  # (S,)
    both = ok[:, None] & ok[None]
    churn = torch.where(both, disagreement(logits[:, None], logits[None]), torch.nan)  # (S, S)
    pred = logits.argmax(-1)  # (S, T)
    per_example = torch.where(both[..., None], (pred[:, None] != pred[None]).double(), torch.nan)  # (S, S, T)
    pairs = seed_pairs(g.seeds, "all")
    position = {s: i for i, s in enumerate(g.seeds)}
    ia = [position[a] for a, _ in pairs]
    ib = [position[b] for _, b in pairs]
    p, q = acc[ia], acc[ib]
    agree_by_chance = p * q + (1 - p) * (1 - q) / (c - 1)
    table = pd.DataFrame({"seed_a": [a for a, _ in pairs], "seed_b": [b for _, b in pairs],
                          "acc_a": p.numpy(), "acc_b": q.numpy(), "disagreement": churn[ia, ib].numpy(),
                          "disagreement_null": (1 - agree_by_chance).numpy()})
    probe, probe_labels = x[:probe_size].clone(), labels[keep][:probe_size]
    del x, logits
    hidden = {}  # column -> every seed's pre-activations of the layer on the probe images, [(P, H)] * S
    for suffix, record in (("", "final"), ("_null", "init")):
        layers = [preactivations(network(n, record), probe) for n in range(len(g.seeds))]
        hidden.update({f"cka{suffix}": [h[0] for h in layers], f"cka_last{suffix}": [h[g.depth - 1] for h in layers]})
    first = ("w1", "b1", "w2", "b2")  # the first hidden layer's weights in and out
    spec = permutation_spec(g.depth)
    # pair by pair: all pairs of wide layers at once (their structured nulls above all) take gigabytes
    for column, h in hidden.items():
        table[column] = [float(linear_cka(h[i], h[j])) for i, j in zip(ia, ib)]
    del hidden, layers  # wide layers: tens of megabytes that the paths below need
    for row, (i, j) in enumerate(zip(ia, ib)):
        if not (ok[i] and ok[j]):
            table.loc[row, ["cka", "cka_null", "cka_last", "cka_last_null", "apc1_excess", "barrier",
                            "barrier_null"]] = np.nan
            continue
        a, b = network(i), network(j)
        first_a, first_b = ({k: params[k] for k in first} for params in (a, b))
        table.loc[row, "apc1_excess"] = float(pair_metrics(first_a, first_b)["apc1"]
                                              - null_structured(first_a, first_b, seed=seed)["apc1"])
        aligned = permute(b, weight_matching(a, b, spec=spec), spec)
        for column, other in (("barrier", aligned), ("barrier_null", b)):  # float32: the paths of wide layers
            path = linear_path(_single(a), _single(other), probe.float(), probe_labels)  # are large
            table.loc[row, column] = float(path["loss_barrier"])
    correct = torch.where(ok[:, None], (pred == labels[keep]).double(), torch.nan)  # (S, T)
    return (table, {"disagreement": per_example.numpy(), "correct": correct.numpy()}) if examples else table


def _single(params: dict) -> dict:
    return {k: v.float() for k, v in params.items()}


def similarity_estimates(table: pd.DataFrame, *, metrics=METRICS, level: float = 0.95,
                         examples: dict | None = None) -> pd.DataFrame:
    """The mean of every metric of a ``seed_similarity`` table (or of one layer of a ``layers.layer_similarity``
    table, with ``metrics=layers.LAYER_METRICS``) with its seed-level interval (delete-one-seed jackknife,
    ``metrics.uncertainty``) and the mean of its null: one row per metric (``metric``, ``value``, ``low``,
    ``high``, ``null``; a metric without a null column has null 0). Accuracy is a per-seed quantity: its
    interval is the t interval over seeds, and it has no null. ``examples`` (from ``seed_similarity(...,
    examples=True)``): the metrics it holds get intervals that resample seeds and test images together
    (``uncertainty.multibootstrap`` for disagreement, ``seed_image_estimate`` for accuracy; ``method`` says
    which). A table of a mixed run (``AXES`` among its
    columns) gets one block of rows per part, the axes as its first columns."""
    axes = [k for k in AXES if k in table.columns]
    if axes:
        blocks = []
        for values, part in table.groupby(axes, sort=False, dropna=False):
            block = similarity_estimates(part.drop(columns=axes), metrics=metrics, level=level)
            for j, (name, value) in enumerate(zip(axes, values)):
                block.insert(j, name, value)
            blocks.append(block)
        return pd.concat(blocks, ignore_index=True)
    rows = []
    for metric in metrics:
        if metric == "accuracy" and examples is not None and "correct" in examples:  # seeds and images resampled
            correct = examples["correct"]
            e = seed_image_estimate(lambda s, i: np.nanmean(correct[s][:, i]), *correct.shape, level=level)
            rows.append({"metric": metric, "value": e.value, "low": e.low, "high": e.high, "null": np.nan,
                         "method": e.method})
            continue
        if metric == "accuracy":
            seeds = pd.concat([table[["seed_a", "acc_a"]].set_axis(["seed", "acc"], axis=1),
                               table[["seed_b", "acc_b"]].set_axis(["seed", "acc"], axis=1)]).drop_duplicates("seed")
            acc = seeds.acc
            half = (stats.t.ppf((1 + level) / 2, len(acc) - 1) * acc.std(ddof=1) / np.sqrt(len(acc))
                    if len(acc) > 1 else np.nan)
            rows.append({"metric": metric, "value": acc.mean(), "low": acc.mean() - half, "high": acc.mean() + half,
                         "null": np.nan, "method": "t over seeds"})
            continue
        if examples is not None and metric in examples:
            e = multibootstrap(examples[metric], level=level)
        else:
            e = estimate(pair_array(table, metric, [])[2], level=level)
        null = table[f"{metric}_null"].mean() if f"{metric}_null" in table else 0.0
        rows.append({"metric": metric, "value": e.value, "low": e.low, "high": e.high, "null": null,
                     "method": e.method})
    return pd.DataFrame(rows)

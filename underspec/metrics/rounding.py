"""The rounding floor: how far float rounding alone moves a network, measured on twins.

A grid with ``perturb_ulp=(0, 1)`` trains every seed twice, the twin's first initial weight one unit in the
last place higher. Over thousands of SGD steps that one rounding can grow: the twins' distance is what
rounding alone does to this training, and a seed effect smaller than it cannot be told from noise.
``twin_table`` measures every twin pair with the metrics of ``compare`` (PE, APC-1, APC-2 of the final
weights, the paper's definitions) and the fraction of test images the twins classify differently.
"""

from __future__ import annotations

import pandas as pd
import torch

from ..errors import UnderspecError
from ..training.data import Dataset, class_labels
from ..training.model import forward
from ..training.run import MixedRun, Run, check_run
from .matching import pair_metrics


def twin_table(run: MixedRun, data: Dataset) -> pd.DataFrame:
    """Every seed against its one-ulp twin, per configuration: l1, n_classes, seed, pe, apc1, apc2 (the twins'
    final weights, matched as the paper matches two seeds) and disagreement (test images classified
    differently). ``run``: trained with ``perturb_ulp=(0, 1)`` and no other axis."""
    if not isinstance(run, MixedRun) or run.grid.axes() != ("perturb_ulp",):
        raise UnderspecError("twin_table needs a run of a grid with perturb_ulp=(0, 1) and no other axis")
    return twin_pairs(run.part(perturb_ulp=0), run.part(perturb_ulp=1), data)


def twin_pairs(plain: Run, nudged: Run, data: Dataset) -> pd.DataFrame:
    """``twin_table`` of two runs of the same seeds, lambdas and class counts, ``nudged`` the twins of
    ``plain``'s members trained afterwards (e.g. for a committed study): with ``perturb_ulp=1`` (one rounding
    apart at the start), or with the other first-layer products (``train(..., sparse=)``: every step's first
    layer summed in another order, what another machine or thread count also does). Rows for the seeds of
    ``nudged`` and the configurations both runs hold."""
    for run in (plain, nudged):
        check_run(run, "twin_pairs")
    if plain.grid.perturb_ulp != 0 or (nudged.grid.perturb_ulp == 0
                                       and nudged.meta.get("sparse") == plain.meta.get("sparse")):
        raise UnderspecError("twin_pairs compares a run with its twins: the second trained with perturb_ulp=1 or "
                             "with the other first-layer products (sparse=), the first without either")
    rows = []
    for l1 in (v for v in nudged.grid.l1 if v in plain.grid.l1):
        for c in (v for v in nudged.grid.n_classes if v in plain.grid.n_classes):
            seeds = list(nudged.grid.seeds)
            a, b = plain.stack(l1, c, seeds=seeds), nudged.stack(l1, c)  # (S, ...) in the twins' seed order
            metrics = pair_metrics({k: a[k] for k in ("w1", "w2")}, {k: b[k] for k in ("w1", "w2")})
            keep, _ = class_labels(data.y_test, c, nudged.grid.class_mode)
            with torch.no_grad():
                x = data.x_test[keep]
                differ = (forward(a, x).argmax(-1) != forward(b, x).argmax(-1)).double().mean(-1)
            rows.append(pd.DataFrame({"l1": l1, "n_classes": c, "seed": seeds,
                                      **{m: metrics[m].double().numpy() for m in ("pe", "apc1", "apc2")},
                                      "disagreement": differ.numpy()}))
    return pd.concat(rows, ignore_index=True)


def floor_table(metrics: pd.DataFrame, twins: pd.DataFrame) -> pd.DataFrame:
    """Seed pairs beside the rounding floor, per lambda at the twins' class count (and per kind of twin, where
    ``twins`` has a ``twin`` column: "one ulp", "other summation order"): the twins' mean PE, APC-1 and
    disagreement, the seed pairs' mean PE and APC-1 (``metrics``: a compare table, target params), and the share
    of seed pairs whose PE lies below every twin pair's (``beyond_floor``: their difference is larger than
    rounding alone made between two runs of one seed). Columns (twin,) l1, twins_pe, twins_apc1,
    twins_disagreement, pairs_pe, pairs_apc1, beyond_floor."""
    c = int(twins.n_classes.iloc[0])
    pairs = metrics[(metrics.target == "params") & (metrics.n_classes == c)]
    keys = ["twin", "l1"] if "twin" in twins else ["l1"]
    rows = []
    for key, t in twins.groupby(keys, sort=False):  # key: a tuple of the values of keys, l1 last
        p = pairs[pairs.l1 == key[-1]]
        rows.append({**dict(zip(keys, key)), "twins_pe": t.pe.mean(), "twins_apc1": t.apc1.mean(),
                     "twins_disagreement": t.disagreement.mean(), "pairs_pe": p.pe.mean(), "pairs_apc1": p.apc1.mean(),
                     "beyond_floor": float((p.pe < t.pe.min()).mean()) if len(p) else float("nan")})
    return pd.DataFrame(rows)

"""The paper's matching metrics for every hidden layer of a deeper network.

A layer's incoming weights (the rows of ``w<l>``) are indexed by the previous layer's units and its outgoing
weights (the columns of ``w<l+1>``) by the next layer's, whose order differs from seed to seed. So the other
layers of ``b`` are first put in ``a``'s order, by matching every hidden layer's post-ReLU activations on the
same images (a function-based alignment, independent of the weights being compared); then, per layer l:

- ``apc_in``: APC of the rows of ``w<l>`` (for l = 1, the paper's APC-1: rows indexed by pixels);
- ``apc_out``: APC of the columns of ``w<l+1>`` (for the last layer, the classes: the paper's APC-2);
- ``pe``: the paper's PE, the agreement of those two matchings;
- ``apc_act``: APC of the layer's activations (matched by |r|, as the paper matches weights);
- ``layer_cka``: linear CKA of the layer's pre-activations (as ``Run.embeddings``).

At depth 1 nothing is aligned and ``apc_in``, ``apc_out``, ``pe`` are the paper's APC-1, APC-2, PE.
``layer_similarity`` measures every seed pair of a run, each metric beside the same pair before training
(its initial parameters): the chance level of that width and depth, computed rather than tabulated.
"""

from __future__ import annotations

import pandas as pd
import torch

from ..training.data import Dataset, class_labels
from ..training.model import depth_of, permutation_spec, preactivations
from ..training.run import MixedRun, Run, check_probe, check_run
from .matching import DEFAULT_POLICY, apc, match_activations, match_units, nan_where_diverged, pe, seed_pairs
from .representations import linear_cka
from .symmetry import permute

LAYER_METRICS = ("apc_in", "apc_out", "pe", "apc_act", "layer_cka")


def activation_alignment(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                         x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The permutations of ``b``'s hidden layers that put its units in ``a``'s order, each layer matched on
    its post-ReLU activations on images ``x`` (N, D) (maximum summed r; a unit without variance is matched
    too, see policy "zero"): {layer: (..., H)}, for ``permute(b, ..., permutation_spec(depth))``."""
    return match_activations(*(_activations(p, x.to(a["w1"].dtype)) for p in (a, b)), policy="zero")


def layer_metrics(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor, *,
                  policy: str = DEFAULT_POLICY) -> dict[str, torch.Tensor]:
    """Every metric of ``LAYER_METRICS`` for every hidden layer of a batch of network pairs (see the module
    doc): {metric: (..., L)}. a, b: parameter dicts of depth L (output layers cut to their C), leading axes
    = pairs; x (N, D): the images the activations are taken on. ``policy``: zero-variance units, as in
    ``matching``."""
    return nan_where_diverged(lambda a, b: _layer_metrics(a, b, x, policy), a, b)


def _layer_metrics(a, b, x: torch.Tensor, policy: str) -> dict[str, torch.Tensor]:
    depth = depth_of(a)
    spec = permutation_spec(depth)
    x = x.to(a["w1"].dtype)
    pre_a, pre_b = (preactivations(p, x)[:-1] for p in (a, b))
    acts_a, acts_b = ([torch.relu(z) for z in pre] for pre in (pre_a, pre_b))
    perms = match_activations(acts_a, acts_b, policy="zero")  # complete matchings: every unit is placed
    out = {metric: [] for metric in LAYER_METRICS}
    for layer in range(1, depth + 1):
        others = permute(b, {name: p for name, p in perms.items() if name != f"h{layer}"}, spec)
        incoming = match_units(a[f"w{layer}"], others[f"w{layer}"], policy=policy)
        outgoing = match_units(a[f"w{layer + 1}"].transpose(-1, -2), others[f"w{layer + 1}"].transpose(-1, -2),
                               policy=policy)
        acts = match_units(acts_a[layer - 1].transpose(-1, -2), acts_b[layer - 1].transpose(-1, -2), policy=policy)
        out["apc_in"].append(apc(incoming))
        out["apc_out"].append(apc(outgoing))
        out["pe"].append(pe(incoming, outgoing))
        out["apc_act"].append(apc(acts))
        out["layer_cka"].append(linear_cka(pre_a[layer - 1], pre_b[layer - 1]))
    return {metric: torch.stack(values, -1) for metric, values in out.items()}


def layer_similarity(run: Run, data: Dataset, *, l1: float | None = None, n_classes: int | None = None,
                     probe_size: int = 500, policy: str = DEFAULT_POLICY) -> pd.DataFrame:
    """``layer_metrics`` for every seed pair of one configuration of ``run`` (default: its first lambda and
    largest C) on the first ``probe_size`` test images of its classes, and the same for the pair's initial
    parameters (the ``<metric>_null`` columns). One row per (pair, layer): ``seed_a``, ``seed_b``, ``layer``
    (1 = first hidden layer), then the metrics and their nulls. A mixed run: part by part, the axes as its
    first columns (a depth axis compares the layers of every depth)."""
    if isinstance(run, MixedRun):
        return run.tables(lambda part: layer_similarity(part, data, l1=l1, n_classes=n_classes,
                                                        probe_size=probe_size, policy=policy))
    check_run(run, "layer_similarity")
    check_probe(run, data, probe_size, "layer_similarity")
    g = run.grid
    l1 = g.l1[0] if l1 is None else float(l1)
    c = max(g.n_classes) if n_classes is None else int(n_classes)
    keep, _ = class_labels(data.y_test, c, g.class_mode)
    probe = data.x_test[keep][:probe_size].double()
    stacked = {record: {k: v.double() for k, v in run.stack(l1, c, record).items()} for record in ("final", "init")}
    position = {s: i for i, s in enumerate(g.seeds)}
    rows = []
    for seed_a, seed_b in seed_pairs(g.seeds, "all"):  # pair by pair: wide layers' activation matchings are large
        measured = {}
        for suffix, record in (("", "final"), ("_null", "init")):
            a, b = ({k: v[position[s]] for k, v in stacked[record].items()} for s in (seed_a, seed_b))
            measured.update({f"{k}{suffix}": v for k, v in layer_metrics(a, b, probe, policy=policy).items()})
        for layer in range(g.depth):
            rows.append({"seed_a": seed_a, "seed_b": seed_b, "layer": layer + 1,
                         **{k: float(v[layer]) for k, v in measured.items()}})
    return pd.DataFrame(rows)


def _activations(params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Every hidden layer's post-ReLU activations on x: [(..., N, H)] * depth."""
    return [torch.relu(z) for z in preactivations(params, x)[:-1]]

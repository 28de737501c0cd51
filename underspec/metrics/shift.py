"""Seeds under distribution shift: accuracy and disagreement of every seed pair on shifted test sets.

``shift_table(run, data)`` gives one row per configuration, shifted test set and seed pair: both seeds'
accuracies, the gap between them, and the fraction of images on which they predict different classes. The
gap and the disagreement are pair metrics, so ``summarize``'s seed-level intervals apply to them
(``underspec.metrics.uncertainty``).
"""

from __future__ import annotations

import pandas as pd
import torch

from ..errors import UnderspecError
from ..training.data import Dataset, class_labels
from ..training.model import forward
from ..training.run import Run, check_run
from ..training.shifts import shifted_test_sets
from .matching import seed_pairs
from .uncertainty import estimate, pair_array


def shift_table(run: Run, data: Dataset, *, far: Dataset | None = None, pairs: str = "all") -> pd.DataFrame:
    """Columns: l1, n_classes, shift, seed_a, seed_b, acc_a, acc_b, acc_gap (|acc_a - acc_b|) and
    disagreement; accuracies are NaN on a far shift (other classes) and for a diverged member."""
    check_run(run, "shift_table")
    if data.name != run.data_name:
        raise UnderspecError(f"data is {data.name!r} but the run was trained on {run.data_name!r}: pass the data set "
                             "the run was trained on")
    sets = shifted_test_sets(data, far=far)
    seed_list = seed_pairs(run.grid.seeds, pairs)
    position = {s: i for i, s in enumerate(run.grid.seeds)}
    a = torch.tensor([position[sa] for sa, _ in seed_list])
    b = torch.tensor([position[sb] for _, sb in seed_list])
    rows = []
    for l1 in run.grid.l1:
        for c in run.grid.n_classes:
            params = {k: v.double() for k, v in run.stack(l1, c).items()}  # (S, ...)
            for name, (x, y) in sets.items():
                keep, labels = class_labels(y, c, run.grid.class_mode)
                with torch.no_grad():
                    logits = forward(params, x[keep].double())  # (S, N, C)
                finite = torch.isfinite(logits).all(-1).all(-1)  # (S,): diverged members give NaN
                pred = logits.argmax(-1)
                acc = (pred == labels[keep]).double().mean(-1)
                acc = torch.where(finite, acc, torch.nan)
                if name.startswith("far: "):
                    acc = torch.full_like(acc, torch.nan)
                disagree = (pred[a] != pred[b]).double().mean(-1)
                disagree = torch.where(finite[a] & finite[b], disagree, torch.nan)
                rows.append(pd.DataFrame({"l1": l1, "n_classes": c, "shift": name,
                                          "seed_a": [sa for sa, _ in seed_list], "seed_b": [sb for _, sb in seed_list],
                                          "acc_a": acc[a].numpy(), "acc_b": acc[b].numpy(),
                                          "acc_gap": (acc[a] - acc[b]).abs().numpy(),
                                          "disagreement": disagree.numpy()}))
    return pd.concat(rows, ignore_index=True)


def summarize_shifts(table: pd.DataFrame, **estimate_options) -> pd.DataFrame:
    """Per (l1, n_classes, shift) and pair metric (acc_gap, disagreement): mean and seed-level interval, and
    the mean accuracy; ``estimate_options`` go to ``uncertainty.estimate`` (method, level, ...)."""
    keys = ["l1", "n_classes", "shift"]
    groups = table.drop_duplicates(keys)[keys].reset_index(drop=True)
    out = groups.copy()
    for metric in ("acc_gap", "disagreement"):
        _, _, v = pair_array(table, metric, keys)
        estimates = [estimate(v[k:k + 1], **estimate_options) for k in range(len(groups))]
        out[metric] = [e.value for e in estimates]
        out[f"{metric}_low"] = [e.low for e in estimates]
        out[f"{metric}_high"] = [e.high for e in estimates]
    accuracy = pd.concat([table[keys + ["seed_a", "acc_a"]].set_axis(keys + ["seed", "acc"], axis=1),
                          table[keys + ["seed_b", "acc_b"]].set_axis(keys + ["seed", "acc"], axis=1)])
    per_seed = accuracy.drop_duplicates(keys + ["seed"])
    out = out.merge(per_seed.groupby(keys, sort=False).acc.agg(accuracy="mean").reset_index(), on=keys)
    return out

"""Seeds under distribution shift: accuracy and disagreement of every seed pair on shifted test sets.

``shift_table(run, data)`` gives one row per configuration, shifted test set and seed pair: both seeds'
accuracies, the gap between them, and the fraction of images on which they predict different classes. The
gap and the disagreement are pair metrics, so ``summarize``'s seed-level intervals apply to them
(``underspec.metrics.uncertainty``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..errors import UnderspecError, shown
from ..training.data import Dataset, class_labels
from ..training.model import forward
from ..training.run import Run, check_run
from ..training.shifts import shifted_test_sets
from .matching import seed_pairs
from .uncertainty import crossed_estimate, estimate, pair_array


def shift_table(run: Run, data: Dataset, *, far: Dataset | None = None, pairs: str = "all",
                n_blocks: int | None = None) -> pd.DataFrame:
    """Columns: l1, n_classes, shift, seed_a, seed_b, acc_a, acc_b, acc_gap (|acc_a - acc_b|) and
    disagreement; accuracies are NaN on a far shift (other classes) and for a diverged member.

    n_blocks: also every value with each of ``n_blocks`` blocks of test images left out (a ``block`` column:
    -1 for every image, b for block b left out), so that intervals resample the seeds and the images together
    (``uncertainty.crossed_estimate``; ``summarize_shifts`` and the claim rules use them)."""
    if n_blocks is not None and (isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 2):
        raise UnderspecError(f"n_blocks must be an integer of at least 2, or None, got {shown(n_blocks)}")
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
                right = (pred == labels[keep]).double()  # (S, N)
                differ = (pred[a] != pred[b]).double()  # (pairs, N)
                n = pred.shape[-1]
                blocks = [torch.ones(n, dtype=torch.bool)] + ([] if n_blocks is None else [
                    torch.arange(n) * n_blocks // n != k for k in range(n_blocks)])
                for block, kept in enumerate(blocks, start=-1):
                    acc = torch.where(finite, right[:, kept].mean(-1), torch.nan)
                    if name.startswith("far: "):
                        acc = torch.full_like(acc, torch.nan)
                    disagree = torch.where(finite[a] & finite[b], differ[:, kept].mean(-1), torch.nan)
                    rows.append(pd.DataFrame({"l1": l1, "n_classes": c, "shift": name,
                                              "seed_a": [sa for sa, _ in seed_list],
                                              "seed_b": [sb for _, sb in seed_list],
                                              **({} if n_blocks is None else {"block": block}),
                                              "acc_a": acc[a].numpy(), "acc_b": acc[b].numpy(),
                                              "acc_gap": (acc[a] - acc[b]).abs().numpy(),
                                              "disagreement": disagree.numpy()}))
    return pd.concat(rows, ignore_index=True)


def summarize_shifts(table: pd.DataFrame, **estimate_options) -> pd.DataFrame:
    """Per (l1, n_classes, shift) and pair metric (acc_gap, disagreement): mean and seed-level interval, and
    the mean accuracy; ``estimate_options`` go to ``uncertainty.estimate`` (method, level, ...). A table with
    image blocks (``shift_table(..., n_blocks=)``) gets intervals that resample the seeds and the test images
    together (``crossed_estimate``)."""
    keys = ["l1", "n_classes", "shift"]
    blocked = table if "block" in table else None
    if blocked is not None:
        table = blocked[blocked.block == -1]
    groups = table.drop_duplicates(keys)[keys].reset_index(drop=True)
    out = groups.copy()
    for metric in ("acc_gap", "disagreement"):
        _, _, v = pair_array(table, metric, keys)
        if blocked is None:
            estimates = [estimate(v[k:k + 1], **estimate_options) for k in range(len(groups))]
        else:
            left = np.stack([pair_array(blocked[blocked.block == b], metric, keys)[2]
                             for b in sorted(set(blocked.block) - {-1})])
            level = estimate_options.get("level", 0.95)
            estimates = [crossed_estimate(v[k:k + 1], left[:, k:k + 1], level=level) for k in range(len(groups))]
        out[metric] = [e.value for e in estimates]
        out[f"{metric}_low"] = [e.low for e in estimates]
        out[f"{metric}_high"] = [e.high for e in estimates]
    accuracy = pd.concat([table[keys + ["seed_a", "acc_a"]].set_axis(keys + ["seed", "acc"], axis=1),
                          table[keys + ["seed_b", "acc_b"]].set_axis(keys + ["seed", "acc"], axis=1)])
    per_seed = accuracy.drop_duplicates(keys + ["seed"])
    out = out.merge(per_seed.groupby(keys, sort=False).acc.agg(accuracy="mean").reset_index(), on=keys)
    return out

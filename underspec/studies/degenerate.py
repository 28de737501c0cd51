"""Degenerate networks: those that learned nothing beyond always answering the most frequent class, found by
their test accuracy against that majority level (a large L1 strength erases every unit of some seeds)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from ..errors import UnderspecError
from ..files import atomic_text
from ..text import fmt_l1
from ..training.data import Dataset, class_labels, load_dataset

# A network is degenerate when its test accuracy is within this of always answering the most frequent class.
DEGENERATE_MARGIN = 0.02
FAR = "fashion-mnist"  # the far shift of networks trained on MNIST digits


def majority_accuracy(data: Dataset, classes, class_mode: str = "relabel") -> dict[int, float]:
    """{C: test accuracy of always answering the most frequent class} under ``class_mode``."""
    out = {}
    for c in classes:
        keep, labels = class_labels(data.y_test, int(c), class_mode)
        out[int(c)] = float(torch.bincount(labels[keep]).max() / int(keep.sum()))
    return out


def dataset_majority(name: str, classes, cache: Path | None) -> dict[int, float] | None:
    """``majority_accuracy`` of the full data set ``name`` (read once, then cached beside the runs as
    ``tables/majority-<name>.json``), or None where it cannot be read offline."""
    path = None if cache is None else Path(cache) / "tables" / f"majority-{name}.json"
    if path is not None and path.is_file() and not path.is_symlink():
        try:
            stored = {int(k): float(v) for k, v in json.loads(path.read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):  # derived data: read the data set again
            stored = {}
        if set(map(int, classes)) <= set(stored):
            return stored
    try:
        data = load_dataset(name, download=False)
    except (UnderspecError, OSError, RuntimeError):
        return None
    found = majority_accuracy(data, range(2, 11))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_text(path, json.dumps(found))
    return found


def degenerate(members: pd.DataFrame, majority: dict[int, float] | None,
               margin: float = DEGENERATE_MARGIN) -> pd.DataFrame:
    """The configurations with degenerate networks (test accuracy within ``margin`` of always answering the
    most frequent class), from a ``member_table``: l1, n_classes, n (how many of its seeds), seeds, majority
    (the level) and accuracy (their mean)."""
    columns = ["l1", "n_classes", "n", "seeds", "majority", "accuracy"]
    if majority is None or members.empty:
        return pd.DataFrame(columns=columns)
    level = members.n_classes.map(majority)
    flagged = members[members.test_acc <= level + margin]
    rows = [{"l1": lam, "n_classes": c, "n": len(part),
             "seeds": int(((members.l1 == lam) & (members.n_classes == c)).sum()),
             "majority": majority[c], "accuracy": part.test_acc.mean()}
            for (lam, c), part in flagged.groupby(["l1", "n_classes"])]
    return pd.DataFrame(rows, columns=columns)


def degenerate_text(cells: pd.DataFrame) -> str:
    """The degenerate configurations in words: "λ = 0.05 at C = 2 (3 of 7 seeds), 3 (...)", or "none"."""
    if cells.empty:
        return "none"
    return "; ".join(f"λ = {fmt_l1(lam)} at C = " + ", ".join(f"{int(r.n_classes)} ({int(r.n)} of {int(r.seeds)} seeds)"
                                                            for r in part.itertuples())
                     for lam, part in cells.groupby("l1"))


def far_data(data: Dataset) -> Dataset | None:
    """The far shift for networks trained on MNIST digits: Fashion-MNIST's test images (offline from Debian's
    dataset-fashion-mnist), or None where it cannot be read or the networks were not trained on digits."""
    if not data.name.startswith("mnist"):
        return None
    try:
        return load_dataset(FAR, download=False)
    except (UnderspecError, OSError, RuntimeError):
        return None

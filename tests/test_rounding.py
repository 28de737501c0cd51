"""The rounding floor of committed studies: twins trained afterwards, one ulp apart, against the study's runs."""

from __future__ import annotations

import dataclasses

import pytest

from underspec import Grid, UnderspecError, train
from underspec.metrics.rounding import twin_pairs, twin_table


def test_twins_trained_later_are_measured_as_the_twin_grid_measures_them(small):
    """``twin_pairs(run, twins)``, the twins trained on their own with ``perturb_ulp=1`` for some seeds and one
    C, equals ``twin_table`` of the grid that trains both at once; twins with the other first-layer products
    are measured too; a run compared with itself is refused."""
    grid = Grid(seeds=(0, 1, 2), l1=(0.0, 0.05), n_classes=(5, 10), epochs=2)
    plain = train(grid, small, progress=False)
    nudged = train(dataclasses.replace(grid, seeds=(1, 2), n_classes=(10,), perturb_ulp=1), small, progress=False)
    later = twin_pairs(plain, nudged, small)
    both = train(dataclasses.replace(grid, seeds=(1, 2), n_classes=(10,), perturb_ulp=(0, 1)), small, progress=False)
    at_once = twin_table(both, small)
    assert later.drop(columns="disagreement").equals(at_once.drop(columns="disagreement"))
    assert list(later.seed) == [1, 2, 1, 2] and (later.n_classes == 10).all()
    assert later.disagreement.tolist() == pytest.approx(at_once.disagreement.tolist(), abs=0)
    with pytest.raises(UnderspecError, match="perturb_ulp=1 or with the other first-layer products"):
        twin_pairs(plain, plain, small)
    reordered = train(dataclasses.replace(grid, seeds=(1,), n_classes=(10,)), small, progress=False,
                      sparse=not plain.meta["sparse"])  # the same networks, every step summed in another order
    other = twin_pairs(plain, reordered, small)
    assert list(other.seed) == [1, 1] and (other.apc1 > 0.999).all()


def test_seed_pairs_beside_the_floor_count_those_below_every_twin():
    """``floor_table``: per lambda, the twins' and the seed pairs' means, and the share of seed pairs whose PE
    lies below the lowest twin's (a difference larger than rounding alone makes)."""
    import pandas as pd

    from underspec.metrics.rounding import floor_table

    twins = pd.DataFrame({"l1": [0.0, 0.0, 0.01, 0.01], "n_classes": 10, "seed": [0, 1, 0, 1],
                          "pe": [1.0, 0.75, 1.0, 1.0], "apc1": [1.0, 0.9, 1.0, 1.0], "apc2": 1.0,
                          "disagreement": [0.0, 0.02, 0.0, 0.0]})
    metrics = pd.DataFrame({"l1": [0.0] * 4 + [0.01] * 4, "n_classes": 10, "target": "params",
                            "pe": [0.5, 0.8, 0.7, 0.9, 0.5, 1.0, 1.0, 0.25], "apc1": 0.5})
    metrics = pd.concat([metrics, metrics.assign(n_classes=5, pe=0.0), metrics.assign(target="grads", pe=0.0)])
    table = floor_table(metrics, twins).set_index("l1")
    assert table.twins_pe.tolist() == [0.875, 1.0] and table.pairs_pe.tolist() == [0.725, 0.6875]
    assert table.beyond_floor.tolist() == [0.5, 0.5]  # below 0.75: 0.5, 0.7; below 1.0: 0.5, 0.25
    kinds = floor_table(metrics, pd.concat([twins.assign(twin="one ulp"), twins.assign(twin="other", pe=1.0)]))
    assert kinds.twin.tolist() == ["one ulp", "one ulp", "other", "other"]
    assert kinds.beyond_floor.tolist() == [0.5, 0.5, 1.0, 0.5]  # every pair at lambda 0 is below 1.0

"""The rounding floor of committed studies: twins trained afterwards, one ulp apart, against the study's runs."""

from __future__ import annotations

import dataclasses

import pytest

from underspec import Grid, UnderspecError, train
from underspec.metrics.rounding import twin_pairs, twin_table


def test_twins_trained_later_are_measured_as_the_twin_grid_measures_them(small):
    """``twin_pairs(run, twins)``, the twins trained on their own with ``perturb_ulp=1`` for some seeds and one
    C, equals ``twin_table`` of the grid that trains both at once; a run compared with itself is refused."""
    grid = Grid(seeds=(0, 1, 2), l1=(0.0, 0.05), n_classes=(5, 10), epochs=2)
    plain = train(grid, small, progress=False)
    nudged = train(dataclasses.replace(grid, seeds=(1, 2), n_classes=(10,), perturb_ulp=1), small, progress=False)
    later = twin_pairs(plain, nudged, small)
    both = train(dataclasses.replace(grid, seeds=(1, 2), n_classes=(10,), perturb_ulp=(0, 1)), small, progress=False)
    at_once = twin_table(both, small)
    assert later.drop(columns="disagreement").equals(at_once.drop(columns="disagreement"))
    assert list(later.seed) == [1, 2, 1, 2] and (later.n_classes == 10).all()
    assert later.disagreement.tolist() == pytest.approx(at_once.disagreement.tolist(), abs=0)
    with pytest.raises(UnderspecError, match="perturb_ulp=1"):
        twin_pairs(plain, plain, small)

"""The PCA surrogate on planted representations: the class in the leading component or in a faint one."""

from __future__ import annotations

import numpy as np
import pytest

from underspec import UnderspecError
from underspec.metrics.surrogates import needed_k, pca_surrogate


def planted(loud: bool, n: int = 600, seed: int = 0):
    """Two classes apart along one of 8 units; that unit has the largest variance (``loud``) or the smallest."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, 8)) * np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    column = 7 if loud else 0
    x[:, column] = (2 * y - 1) * (20.0 if loud else 1.5) + rng.normal(0, 0.3, n)
    return x[:400], y[:400], x[400:], y[400:]


def test_a_class_in_the_leading_component_needs_one_and_in_a_faint_one_needs_them_all():
    table = pca_surrogate(*planted(True), ks=range(1, 9))
    assert list(table.k) == list(range(1, 9)) and table.variance.is_monotonic_increasing
    assert table.ncc.iloc[0] > 0.95 and needed_k(table, "ncc", 200) == 1 and needed_k(table, "knn", 200) == 1
    faint = pca_surrogate(*planted(False), ks=range(1, 9))
    assert faint.ncc.iloc[0] < 0.7 and needed_k(faint, "knn", 200) == 8  # the class lives in the last component
    assert faint.variance.iloc[-1] == pytest.approx(1.0)


def test_bad_input_is_refused():
    x, y, t, u = planted(True)
    for args, message in [((x, y, t, u, [0]), "every k"), ((x, y, t, u, [9]), "every k"),
                          ((x, y, t[:, :3], u, [1]), "same units"), ((x * np.nan, y, t, u, [1]), "NaN"),
                          ((x, y * 0, t, u, [1]), "2 classes"), ((x[:0], y[:0], t, u, [1]), "must be")]:
        with pytest.raises(UnderspecError, match=message):
            pca_surrogate(*args)

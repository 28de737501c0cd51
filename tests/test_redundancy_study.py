"""The study of "Redundancy and width" on a tiny grid: its runs, its tables, its verdicts and views."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from underspec.studies import redundancy_evidence as ev
from underspec.studies.redundancy import EQUAL_LOSS, redundancy_grid, redundancy_study
from underspec.studies.redundancy_views import RedundancyViews


def test_the_grid_follows_the_chapters_parameters():
    g = redundancy_grid()
    assert g.seeds == (0, 42, 1337, 3213, 9999) and g.l1 == (0.0, 0.001) and g.n_classes == (10,)
    assert g.hidden == (4, 8, 16, 32, 64, 128, 256, 512, 1024) and g.epochs == 6
    quick = redundancy_grid([0, 42, 1337], [0.0, 0.01], [5, 10], epochs=2, n_train=500)
    assert quick.hidden[-1] == 128 and quick.epochs == 1 and quick.l1 == (0.0, 0.01) and quick.n_classes == (10,)
    assert redundancy_grid(l1=[0.0]).l1 == (0.0,)  # no positive λ given: only λ = 0
    # a steps budget counts epochs of the images used: 46,900 steps are 745 epochs of mnist-5k's 63 steps
    assert redundancy_grid(steps=46_900, n_train=4000).epochs == 745 // 8


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    study = redundancy_study("mnist-5k", seeds=[0, 42, 1337], l1=[0.0, 0.01], classes=[10], epochs=2, n_train=300,
                             n_test=150, device="cpu", results_dir=str(tmp_path_factory.mktemp("cache")))
    assert set(study.specs) == {"width", "equal-loss", "depth", "spectra/SGD, lr 0.01", "spectra/SGD, lr 0.1",
                                "spectra/Adam, lr 0.001"}
    assert study.specs["equal-loss"].grid.stop_loss == EQUAL_LOSS and study.specs["depth"].grid.depth == 2
    return RedundancyViews.of(study)


@pytest.mark.slow
def test_every_network_is_measured_without_nan_where_a_value_is_defined(views):
    m = views.full["members"]
    assert len(m) == 6 * 3 * 2 and set(m.hidden) == {4, 8, 16, 32, 64, 128}
    for column in ("repeated", "repeated_untrained", "repeated_rotated", "prunable_random", "prunable_targeted",
                   "compressibility", "nonprunable", "nonredundant", "dead", "rel_dist", "test_acc"):
        assert m[column].notna().all(), column
    assert m.prunable_random.between(0, 1).all() and (m.nonprunable <= m.units).all()
    assert m[m.hidden < 50].alpha_w.isna().all()  # fewer than 50 eigenvalues: no tail fit
    assert m[m.hidden == 128].alpha_w.notna().all()
    low = views.full["lowrank"]
    at_rank = low[(low.kind == "top") & (low.k == low["rank"])].merge(m, on=["hidden", "seed", "l1"])
    assert len(at_rank) == len(m) and np.allclose(at_rank.energy, 1.0)
    assert np.abs(at_rank.acc - at_rank.test_acc).max() <= 1 / 150  # the trained network, up to a rounding tie
    pairs = views.full["pairs"]
    assert len(pairs) == 6 * 2 * 3 and pairs.overlap_chance.dropna().between(0, 1).all()
    assert set(views.full["clusters"].which) == {"trained", "init", "rotated", "update", "update, rotated"}
    assert set(views.tickets.variant) >= {"original", "rewind", "scratch-B"}
    assert set(views.spectra.setting) == {"SGD, lr 0.01", "SGD, lr 0.1", "Adam, lr 0.001"}


@pytest.mark.slow
def test_verdicts_growth_and_the_16_unit_profile(views):
    table = views.verdicts(0.0)
    assert len(table) == 8 and table.columns[0] == "hypothesis"
    outcomes = ("shown", "contradicted", "inconclusive", "not testable")
    for column in table.columns[1:-1]:
        assert all(cell == "—" or cell.startswith("—") or cell.startswith(outcomes) for cell in table[column]), column
    tickets = views.verdicts(0.01).set_index("hypothesis").loc[
        "unit-level tickets do not beat a fresh narrow network at equal compute"]
    assert tickets.iloc[0] == "— (tickets at λ = 0 only)"
    growth = views.growth()
    assert set(growth.part) == {"non-prunable units", "non-redundant units (groups)"}
    profile = views.profile(16)
    assert "not fitted: 16 eigenvalues" in profile[profile.measure.str.contains("alpha")].iloc[0, 1]
    assert views.profile(3).measure.iloc[0] == "width 3 was not trained here"
    for name in ("redundancy", "parts", "knockout", "capacity", "exact", "spectra_by_width", "spectra_over_training",
                 "lowrank", "seeds_agree", "clusters", "regimes"):
        figure = getattr(views, name)()
        assert {"panel", "series", "value", "low", "high"} <= set(figure), name


def test_a_growth_factor_of_a_part_that_doubles_is_two():
    rows = [{"seed": s, "hidden": h, "count": h * (1 + 0.01 * s)} for s in range(4) for h in (4, 8, 16, 32)]
    e = ev.growth(pd.DataFrame(rows), "count")
    assert e.value == pytest.approx(2.0) and e.low <= 2.0 <= e.high
    rows = [{"seed": s, "hidden": h, "count": 10 + s} for s in range(4) for h in (4, 8, 16, 32)]
    assert ev.growth(pd.DataFrame(rows), "count").value == pytest.approx(1.0)


def test_a_missing_committed_study_is_none(tmp_path):
    assert RedundancyViews.committed(tmp_path) is None

"""The committed full-size study of "Redundancy and width" (scripts/redundancy_results.py): its tables and
provenance, its re-check (the check slice retrained and measured again gives the committed values), and the
chapter's reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from underspec.studies.redundancy_views import COMMITTED, RedundancyViews

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "results" / COMMITTED


def script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("redundancy_results", ROOT / "scripts" / "redundancy_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_study_has_its_tables_and_provenance():
    meta = json.loads((FOLDER / "provenance.json").read_text())
    s = script()
    assert meta["dataset"] == "fashion-mnist" and meta["n_train"] == 60_000 and meta["widths"] == list(s.WIDTHS)
    assert meta["epochs"] == s.EPOCHS and meta["steps"] == s.EPOCHS * 938 and meta["reduced"]
    assert meta["full_version_estimate_hours"] > 0 and len(meta["code_commit"]) == 40
    members = pd.read_parquet(FOLDER / "members.parquet")
    assert len(members) == len(s.WIDTHS) * len(s.SEEDS) * len(s.L1)
    assert set(members.hidden) == set(s.WIDTHS) and members.prunable_random.between(0, 1).all()
    everyone = pd.read_parquet(FOLDER / "everyone.parquet")
    assert len(everyone) == 2 * len(members) and everyone.stop_loss.dropna().eq(s.EQUAL_LOSS).all()
    for name in ("curves", "lowrank", "clusters", "pairs"):
        assert len(pd.read_parquet(FOLDER / f"{name}.parquet")), name


@pytest.mark.slow
def test_the_check_slice_retrained_gives_the_committed_values():
    pytest.importorskip("underspec").load_dataset("fashion-mnist", download=False)
    committed = pd.read_parquet(FOLDER / "check" / "members.parquet")
    again = script().check_members(threads=1)
    assert list(again.columns) == list(committed.columns) and len(again) == len(committed)
    for column in committed.columns:
        a, b = committed[column].to_numpy(), again[column].to_numpy()
        if np.issubdtype(np.asarray(a).dtype, np.number):
            np.testing.assert_allclose(b.astype(float), a.astype(float), rtol=1e-6, atol=1e-9, err_msg=column)
        else:
            assert (pd.Series(a).fillna("na") == pd.Series(b).fillna("na")).all(), column


def test_the_chapter_reads_the_committed_study():
    views = RedundancyViews.committed(FOLDER)
    assert views is not None and views.data_name == "fashion-mnist" and views.tickets is None
    table = views.verdicts(views.l1s[0])
    assert table.set_index("hypothesis").loc["unit-level tickets do not beat a fresh narrow network at equal "
                                             "compute"].iloc[0] == "— (no tickets in this study)"
    assert {"panel", "value"} <= set(views.redundancy()) and len(views.growth())
    assert "fashion-mnist, 60,000 training images" in views.regime_text()

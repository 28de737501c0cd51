"""The committed full-size seed study (results/fashion-mnist-40-seeds, scripts/seed_study.py) still matches the
code: its check (every seed trained one epoch) is retrained and must equal the committed check tables, and the
study's own first-epoch learning curves must equal the check's; the chapter reads its tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from underspec import UnderspecError
from underspec.studies import seed_verdicts as sv

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("seed_study_script", ROOT / "scripts" / "seed_study.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
FOLDER = script.results_dir()
committed = pytest.mark.skipif(not (FOLDER / "check" / "history.parquet").is_file(),
                               reason="not yet run: python scripts/seed_study.py")
TABLES = ("outputs", "members", "seeds", "laws", "history")


def assert_tables_equal(a: pd.DataFrame, b: pd.DataFrame, name: str) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b), name
    for column in a.columns:
        x, y = a[column].to_numpy(), b[column].to_numpy()
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6, equal_nan=True, err_msg=f"{name}.{column}")
        else:
            assert (x == y).all(), f"{name}.{column}"


@committed
def test_the_study_has_its_tables_and_says_where_they_came_from():
    for name in TABLES:
        assert (FOLDER / f"{name}.parquet").is_file(), name
    study = json.loads((FOLDER / "study.json").read_text())
    assert study["n_seeds"] == 40 and study["steps"] == 46900 and study["dataset"] == "fashion-mnist"
    assert (study["l1"], study["n_classes"], study["n_test"]) == (0.0, 10, 10000)
    provenance = json.loads((FOLDER / "provenance.json").read_text())
    for key in ("trained_with_package_code", "machine", "train_seconds", "trained", "sparse",
                "tables_written_with_package_code", "written"):
        assert key in provenance, key
    outputs = pd.read_parquet(FOLDER / "outputs.parquet")
    assert len(outputs) == 40 * 10000 and outputs.top2.between(0, 15).all()


@committed
def test_the_studys_first_epoch_is_the_checks():
    check = pd.read_parquet(FOLDER / "check" / "history.parquet")
    history = pd.read_parquet(FOLDER / "history.parquet")
    keys = ["seed", "l1", "n_classes", "epoch"]
    first = history[history.epoch == 1].merge(check[keys], on=keys)
    assert len(first) == len(check) == 40
    assert_tables_equal(check.sort_values(keys).reset_index(drop=True),
                        first.sort_values(keys).reset_index(drop=True)[list(check.columns)], "history")


@pytest.fixture(scope="module")
def recomputed():
    provenance = json.loads((FOLDER / "provenance.json").read_text())
    try:
        return script.check_tables(bool(provenance["sparse"]))
    except UnderspecError as exc:
        pytest.skip(f"cannot retrain the check here: {exc}")


@pytest.mark.slow
@committed
def test_the_committed_check_equals_what_the_code_gives(recomputed):
    for name, table in recomputed.items():
        assert_tables_equal(pd.read_parquet(FOLDER / "check" / f"{name}.parquet"), table, name)


@pytest.mark.slow
@committed
def test_an_altered_committed_row_fails_the_check(recomputed):
    outputs = pd.read_parquet(FOLDER / "check" / "outputs.parquet")
    outputs.loc[0, "top2"] += 1e-3
    with pytest.raises(AssertionError, match="outputs.top2"):
        assert_tables_equal(outputs, recomputed["outputs"], "outputs")


@committed
def test_the_chapter_reads_the_committed_study():
    tables = sv.committed_tables(ROOT / "results")
    curves = sv.committed_curves(tables)
    assert set(curves.kind) == {"two references", "held-out"} and curves.null.notna().all()
    assert curves[curves.kind == "held-out"].m.max() == 39 and 7 in set(curves.m)
    draws = tables["seeds"]
    verdicts = sv.seeds_verdicts(draws[~draws.null].drop(columns="null"), 40, 7, "full size")
    verdicts += sv.laws_verdicts(tables["laws"], "full size")
    assert len(verdicts) == 4 and all(np.isfinite(v.low) for v in verdicts)


def test_a_study_not_yet_run_is_none_and_a_pointer_is_one_line(tmp_path):
    assert sv.committed_tables(tmp_path) is None
    folder = tmp_path / sv.COMMITTED
    folder.mkdir()
    for name in ("seeds", "laws", "members"):
        (folder / f"{name}.parquet").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")
    with pytest.raises(UnderspecError, match="cannot read the committed seed study") as error:
        sv.committed_tables(tmp_path)
    assert "\n" not in str(error.value)


def test_the_script_declares_the_issues_study():
    g = script.grid()
    assert len(g.seeds) == 40 and g.l1 == (0.0,) and g.n_classes == (10,) and g.steps == 46900
    assert g.for_data(60000).epochs == 50 and script.grid(epochs_only=1).epochs == 1


"""The committed results (results/<study>/) still match the code: each study's check (its first configuration
trained one epoch, every seed) is recomputed here and must equal the committed check tables, and the study's
own first-epoch learning curves must equal the check's. Results that no longer match the code fail CI
instead of going stale silently.

The engine is seed-exact, so on the machine that made them the tables are equal bit for bit; the floats are
compared to 1e-6 so that another CPU's rounding in its matrix kernels does not count as a change.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("results_script", ROOT / "scripts" / "results.py")
results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results)
STUDIES = [p for p in results.studies() if (p / "check" / "metrics.parquet").is_file()]


def assert_tables_equal(committed: pd.DataFrame, recomputed: pd.DataFrame, name: str) -> None:
    assert list(committed.columns) == list(recomputed.columns), name
    assert len(committed) == len(recomputed), name
    for column in committed.columns:
        a, b = committed[column].to_numpy(), recomputed[column].to_numpy()
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, equal_nan=True, err_msg=f"{name}.{column}")
        else:
            assert (a == b).all(), f"{name}.{column}"


def compare_check(study: Path, recomputed: dict[str, pd.DataFrame]) -> None:
    for name, table in recomputed.items():
        assert_tables_equal(pd.read_parquet(study / "check" / f"{name}.parquet"), table, f"{study.name}/{name}")


class Recomputed(dict):
    """Each study's check tables, recomputed when first asked for; a study whose data set cannot be read on
    this machine (Fashion-MNIST without Debian's package) is skipped, with the reason."""

    def __missing__(self, name):
        from underspec import UnderspecError

        study = next(p for p in STUDIES if p.name == name)
        try:
            self[name] = results.check_tables(results.config_of(study), sparse_of(study))
        except UnderspecError as exc:
            pytest.skip(f"cannot recompute {name} here: {exc}")
        return self[name]


@pytest.fixture(scope="module")
def recomputed():
    return Recomputed()


def sparse_of(study: Path) -> bool:
    """The first-layer products the study was trained with, as its provenance records."""
    import json

    return json.loads((study / "provenance.json").read_text())["sparse"]


@pytest.mark.parametrize("study", results.studies(), ids=[p.name for p in results.studies()])
def test_every_study_has_its_tables_committed(study):
    if not (study / "check" / "metrics.parquet").is_file():
        pytest.skip(f"not yet run: python scripts/results.py {study.name}")
    for name in (*results.TABLES, "history"):
        assert (study / f"{name}.parquet").is_file(), name
    assert (study / "provenance.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES, ids=[p.name for p in STUDIES])
def test_the_committed_check_equals_what_the_code_gives(study, recomputed):
    compare_check(study, recomputed[study.name])


@pytest.mark.parametrize("study", STUDIES, ids=[p.name for p in STUDIES])
def test_the_studys_first_epoch_is_the_checks(study):
    check = pd.read_parquet(study / "check" / "history.parquet")
    history = pd.read_parquet(study / "history.parquet")
    keys = ["seed", "l1", "n_classes", "epoch"]
    first = history[history.epoch == 1].merge(check[keys], on=keys)
    assert len(first) == len(check) and len(check) > 0
    assert_tables_equal(check.sort_values(keys).reset_index(drop=True),
                        first.sort_values(keys).reset_index(drop=True)[list(check.columns)], study.name)


@pytest.mark.slow
@pytest.mark.skipif(not STUDIES, reason="no study committed yet")
def test_an_altered_committed_row_fails_the_check(tmp_path, recomputed):
    study = STUDIES[0]
    copy = tmp_path / study.name
    shutil.copytree(study / "check", copy / "check")
    metrics = pd.read_parquet(copy / "check" / "metrics.parquet")
    metrics.loc[0, "pe"] += 1 / 16  # one unit's agreement more in one pair
    metrics.to_parquet(copy / "check" / "metrics.parquet", index=False)
    with pytest.raises(AssertionError, match="metrics.pe"):
        compare_check(copy, recomputed[study.name])

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


# ------------------------------------------------------------------------ a fresh checkout, an LFS pointer

MNIST5K_STUDY = next((p for p in results.studies() if p.name == "mnist5k-20-seeds"), None)
needs_study = pytest.mark.skipif(MNIST5K_STUDY is None or not (MNIST5K_STUDY / "provenance.json").is_file(),
                                 reason="results/mnist5k-20-seeds is not committed in this checkout")


def study_copy(tmp_path: Path, provenance: dict | None) -> Path:
    """results/mnist5k-20-seeds's config under ``tmp_path/results`` (its out: a scratch folder in tmp_path
    that does not exist: a checkout without the sweep's shards), with this ``provenance`` (None: none)."""
    import json

    study = tmp_path / "results" / MNIST5K_STUDY.name
    study.mkdir(parents=True)
    text = (MNIST5K_STUDY / "config.yaml").read_text()
    lines = [f"out: {tmp_path / 'scratch'}" if line.startswith("out:") else line for line in text.splitlines()]
    (study / "config.yaml").write_text("\n".join(lines) + "\n")
    if provenance is not None:
        (study / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return study


@needs_study
@pytest.mark.parametrize("sparse", [False, True])
def test_check_without_shards_takes_the_products_from_the_provenance(tmp_path, monkeypatch, sparse):
    """`scripts/results.py --check NAME` on a checkout without the study's shards: the first-layer products are
    read from provenance.json, the check tables rewritten, the provenance otherwise kept, nothing swept."""
    import json

    recorded = {**json.loads((MNIST5K_STUDY / "provenance.json").read_text()), "sparse": sparse}
    study = study_copy(tmp_path, recorded)
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    seen = []

    def check_tables(config, sparse):  # the training itself is the slow test above
        seen.append((config.out, sparse))
        return {"metrics": pd.DataFrame({"pe": [0.5]}), "history": pd.DataFrame({"epoch": [1]})}

    monkeypatch.setattr(results, "check_tables", check_tables)
    monkeypatch.setattr(results, "run_sweep", lambda *a, **k: pytest.fail("--check ran the sweep"))
    assert results.main(["--check", study.name]) == 0
    assert seen == [(str(tmp_path / "scratch"), sparse)]
    assert json.loads((study / "provenance.json").read_text()) == recorded
    assert pd.read_parquet(study / "check" / "metrics.parquet").pe.tolist() == [0.5]
    assert not (tmp_path / "scratch").exists()


@needs_study
@pytest.mark.parametrize("provenance", [None, {"published_with": "x"}, {"sparse": "yes"}],
                         ids=["no provenance", "no products recorded", "products not a flag"])
def test_check_without_shards_or_a_recorded_product_says_what_to_run(tmp_path, monkeypatch, provenance):
    study = study_copy(tmp_path, provenance)
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(results, "check_tables", lambda *a: pytest.fail("checked without knowing the products"))
    with pytest.raises(SystemExit) as exit_:
        results.main(["--check", study.name])
    message = str(exit_.value)
    assert "neither its shards" in message and f"python scripts/results.py {study.name}" in message
    assert "\n" not in message and not (study / "check").exists()


@pytest.mark.parametrize("study", [p for p in results.studies() if (p / "provenance.json").is_file()],
                         ids=lambda p: p.name)
def test_every_committed_provenance_records_the_products(study):
    """What `--check` needs on a fresh checkout (no shards): each published study's provenance says which
    first-layer products trained it."""
    import json

    assert isinstance(json.loads((study / "provenance.json").read_text()).get("sparse"), bool)


LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 5912345\n")


def lfs_study(tmp_path: Path, table: str) -> Path:
    """A copy of results/mnist5k-20-seeds's tables whose ``table`` is a Git LFS pointer never pulled."""
    study = tmp_path / MNIST5K_STUDY.name
    study.mkdir()
    for name in ("config.yaml", "metrics.parquet", "members.parquet", "shifts.parquet"):
        shutil.copy(MNIST5K_STUDY / name, study / name)
    (study / f"{table}.parquet").write_text(LFS_POINTER)
    return study


@needs_study
@pytest.mark.parametrize("table", ["metrics", "members"])
def test_a_git_lfs_pointer_as_a_committed_table_is_one_line_naming_the_file(tmp_path, table):
    """read_table and committed_regime: an UnderspecError of one line naming the file, never ArrowInvalid."""
    from underspec import UnderspecError
    from underspec.studies.regimes import committed_regime, read_table

    study = lfs_study(tmp_path, table)
    path = study / f"{table}.parquet"
    for call in (lambda: read_table(path), lambda: committed_regime(study.name, tmp_path)):
        with pytest.raises(UnderspecError) as err:
            call()
        assert str(err.value).startswith(f"{path} ") and "\n" not in str(err.value) and len(str(err.value)) < 300
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(UnderspecError, match="is not a readable Parquet table .*restore it from git"):
        committed_regime(study.name, tmp_path)


@needs_study
def test_a_git_lfs_pointer_is_said_to_be_one(tmp_path):
    from underspec import UnderspecError
    from underspec.studies.regimes import read_table

    path = lfs_study(tmp_path, "metrics") / "metrics.parquet"
    with pytest.raises(UnderspecError) as err:
        read_table(path)
    assert str(err.value) == f"{path} is a Git LFS pointer, not the table: run `git lfs pull`"

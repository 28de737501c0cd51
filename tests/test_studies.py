"""The studies layer without a notebook: a study trains once and is served from the cache, derived tables
follow the code that computes them, a committed regime's verdicts are the rules' on its tables, degenerate
networks are found, and the book's runs step trains what the chapters read."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

import underspec
from underspec import Grid, UnderspecError
from underspec.studies import (RunSpec, Study, book_study, claims, committed_regime, degenerate, degenerate_text,
                               majority_accuracy, tables)
from underspec.text import interval, number

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny(small):
    return small.take(200, 60)


def test_a_study_trains_once_and_is_then_served_from_the_cache(tiny, tmp_path, monkeypatch):
    specs = {"a": RunSpec(Grid(seeds=(0, 1), l1=(0.0,), n_classes=(3,), epochs=1), probe_size=10),
             "b": RunSpec(Grid(seeds=(0,), hidden=(8, 16), epochs=1))}
    first = Study(tiny, specs, tmp_path)
    assert first.ensure() == ["a", "b"] and first.trained("a") and first.trained("b")
    trained = first.run("a")

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("underspec.training.cache.train", no_training)
    again = Study(tiny, specs, tmp_path)
    assert again.ensure() == []
    served = again.run("a")
    assert (served.final["w1"] == trained.final["w1"]).all()
    assert isinstance(again.run("b"), underspec.MixedRun)
    assert again.run("a") is served  # one load per Study
    again.release("a")
    assert again.run("a") is not served
    with pytest.raises(UnderspecError, match="this study has no run 'c': it has a, b"):
        again.run("c")


def test_a_derived_table_is_recomputed_when_the_code_that_computes_tables_changes(tiny, tmp_path, monkeypatch):
    study = Study(tiny, {"a": RunSpec(Grid(seeds=(0, 1), l1=(0.0,), n_classes=(3,), epochs=1))}, tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"x": [len(calls)]})

    assert study.table("t", compute, runs=("a",)).x.item() == 1
    assert study.table("t", compute, runs=("a",)).x.item() == 1 and len(calls) == 1  # served from the cache
    monkeypatch.setattr(tables, "tables_code", lambda: "another-code")
    assert study.table("t", compute, runs=("a",)).x.item() == 2 and len(calls) == 2
    path = tables.table_path(study.cache, f"{study.key('a')}-t")
    path.write_bytes(b"not parquet")  # a damaged table is derived data: computed again
    assert study.table("t", compute, runs=("a",)).x.item() == 3


def test_the_book_study_serves_the_tables_every_chapter_shares(tmp_path):
    runs = book_study("mnist-5k", seeds="[0, 1, 2]", l1="0 0.01", classes="5", epochs=1, n_train=200, n_test=60,
                      device="cpu", results_dir=str(tmp_path))
    table = runs.compare_table()
    assert set(table.target) == {"params", "grads", "displacement"} and "pe_null_structured" in table
    assert len(table[["seed_a", "seed_b"]].drop_duplicates()) == 3
    verdicts = runs.verdicts()
    assert list(verdicts.claim) == list(claims.check_all(table, cka=runs.cka()[0], baselines=runs.cka()[1]).claim)
    assert runs.members.shape[0] == 6 and runs.cka_cell() == (0.0, 5)


def test_a_committed_regimes_verdicts_are_the_rules_on_its_own_tables():
    """What the study chapter shows for a committed study: ``check_all`` on its metrics table, and the
    representations claim "not testable" (a study keeps tables, not embeddings)."""
    folder = ROOT / "results" / "mnist5k-paper-steps"
    regime = committed_regime(folder.name, folder.parent)
    metrics = pd.read_parquet(folder / "metrics.parquet")
    expected = claims.check_all(metrics[metrics.target.isin(("params", "grads", "displacement"))])
    verdicts = regime.verdicts()
    pd.testing.assert_frame_equal(verdicts.iloc[:len(expected)].reset_index(drop=True), expected)
    assert verdicts.iloc[-1].verdict == "not testable with this data" and len(verdicts) == len(expected) + 1
    assert regime.name == "(b) mnist-5k, the paper's steps" and regime.facts()["data set"] == "mnist-5k"
    assert committed_regime("no-such-study", folder.parent) is None


def test_degenerate_networks_are_found_at_the_majority_class_accuracy(small):
    """An L1 strength that erases every unit leaves a network no better than always answering the majority
    class: found, and the trained one (about 0.67 on ten classes) is not."""
    grid = Grid(seeds=(0, 1), l1=(0.0, 5.0), n_classes=(10,), epochs=10, lr=0.1)
    run = underspec.train(grid, small, progress=False)
    members = underspec.member_table(run, small)
    majority = majority_accuracy(small, grid.n_classes)
    cells = degenerate(members, majority)
    assert cells[["l1", "n_classes", "n", "seeds"]].values.tolist() == [[5.0, 10, 2, 2]]
    assert degenerate_text(cells) == "λ = 5 at C = 10 (2 of 2 seeds)"
    assert degenerate(members, None).empty and degenerate_text(degenerate(members, None)) == "none"


def test_a_uniform_run_is_addressed_by_the_settings_it_was_trained_with(tiny):
    run = underspec.train(Grid(seeds=(0, 1), order_seed=5, hidden=(64,), l1=(0.0,), n_classes=(10,), epochs=1),
                          tiny, progress=False)
    assert isinstance(run, underspec.Run)
    assert run.member(seed=1, order_seed=5, hidden=64).seed == 1 and run.index(seed=1, order_seed=5, hidden=64) == 1
    for settings, message in [(dict(seed=0, order_seed=6), "this run has order_seed=5 for every member, not 6"),
                              (dict(seed=0, hidden=32), "this run has hidden=64 for every member, not 32"),
                              (dict(seed=0, width=3), "'width' is not an axis of this run")]:
        with pytest.raises(UnderspecError, match=message) as info:
            run.member(**settings)
        assert "\n" not in str(info.value)
    own = underspec.train(Grid(seeds=(0, 1), l1=(0.0,), n_classes=(10,), epochs=1), tiny, progress=False)
    assert own.index(order_seed=1) == 1 and own.index(seed=1, init_seed=1) == 1  # each member's own seed
    with pytest.raises(UnderspecError, match="every member's order_seed is its own seed"):
        own.index(seed=0, order_seed=1)
    assert set(own.members.columns) >= set(own.grid.member_names())


@pytest.mark.parametrize("axes", [{}, {"hidden": (8, 16)}, {"hidden": (8, 16), "lr": (0.01, 0.1)}])
def test_a_uniform_and_a_mixed_run_list_their_members_in_the_same_columns(tiny, axes):
    """``run.members``: the names of ``grid.member_names()`` (the axes first, then seed, l1, n_classes) and
    ``stopped`` last with a stopping rule, for a uniform run as for a mixed one; row i is member i, and its
    settings address it."""
    grid = Grid(seeds=(0, 1), l1=(0.0,), n_classes=(3,), epochs=1, stop_loss=10.0, **axes)
    run = underspec.train(grid, tiny, progress=False, probe_size=10)
    assert isinstance(run, underspec.MixedRun if axes else underspec.Run)
    table = run.members
    assert list(table.columns) == [*axes, "seed", "l1", "n_classes", "stopped"]
    assert set(table.columns) - {"stopped"} == set(grid.member_names())
    for i, member in enumerate(grid.members()):
        settings = dict(zip(grid.member_names(), member))
        assert table.loc[i, list(settings)].tolist() == list(settings.values())
        assert run.index(**settings) == i
    assert (table.stopped == 1).all()  # every member passes a loss of 10 after its first epoch


def test_the_book_runs_step_trains_exactly_the_runs_the_chapters_read(tmp_path):
    spec = importlib.util.spec_from_file_location("book_runs", ROOT / "scripts" / "book_runs.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    prepared = script.book_studies("mnist-5k", tmp_path)
    chapter = book_study(results_dir=None)  # the chapters' defaults; nothing trained without a cache
    assert {n: prepared["the book's study"].key(n) for n in chapter.specs} == {n: chapter.key(n) for n in chapter.specs}
    from underspec.studies import first_look_study
    look = first_look_study(results_dir=None)
    assert [prepared["the first look"].key(n) for n in look.specs] == [look.key(n) for n in look.specs]


def test_numbers_are_written_one_way():
    assert interval(-0.0001, -0.0004, 0.0002) == "+0.000 [+0.000, +0.000]"  # never "-0.000"
    assert interval(0.0321, 0.026, 0.037, sign=False) == "0.032 [0.026, 0.037]"
    assert interval(0.5, float("nan"), 1.0) == "+0.500" and interval(float("nan"), 0, 1) == "—"
    assert number(-0.04, 1) == "+0.0" and number(-0.06, 1) == "-0.1"


def test_twins_one_rounding_apart_measure_the_floor_and_the_gradient_mechanism_is_tabled(tmp_path, small):
    """Every seed against its one-ulp twin: at a few epochs rounding has not separated them (PE 1, no test image
    classified differently); a run without twins is refused. The gradient mechanism: where L1 has shrunk W1,
    the summed gradients' APC-1 is that of the initial weights."""
    from underspec.metrics.rounding import twin_table

    runs = book_study("mnist-5k", seeds="[0, 1, 2]", l1="0 0.05", classes="5 10", epochs=2, n_train=300,
                      n_test=100, device="cpu", results_dir=str(tmp_path))
    twins = runs.rounding_floor()
    assert len(twins) == 3 * 2 and (twins.n_classes == 10).all()
    assert (twins.pe == 1).all() and (twins.disagreement == 0).all() and (twins.apc1 > 0.999).all()
    with pytest.raises(UnderspecError, match="twin_table needs a run of a grid with perturb_ulp"):
        twin_table(runs.paper, runs.data)
    mechanism = runs.gradient_mechanism(10).set_index("l1")
    assert list(mechanism.columns) == ["grads", "init", "untrained", "norm_left"]
    assert mechanism.norm_left.loc[0.05] < mechanism.norm_left.loc[0.0]

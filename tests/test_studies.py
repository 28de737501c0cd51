"""The studies layer without a notebook: a study trains once and is served from the cache, derived tables
follow the code that computes them, a committed regime's verdicts are the rules' on its tables, degenerate
networks are found, the book's runs step trains what the chapters read; regimes (this build, a sweep, a
committed study), seeds under shift and the first look's tables hold the values the chapters print."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
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
    """What the study chapter shows for a committed study: ``check_all`` on its metrics and CKA tables, the
    representations claim decided from the committed CKA of every pair."""
    folder = ROOT / "results" / "mnist5k-paper-steps"
    regime = committed_regime(folder.name, folder.parent)
    metrics = pd.read_parquet(folder / "metrics.parquet")
    cka = pd.read_parquet(folder / "cka.parquet")
    expected = claims.check_all(metrics[metrics.target.isin(("params", "grads", "displacement"))], cka=cka)
    verdicts = regime.verdicts()
    pd.testing.assert_frame_equal(verdicts.reset_index(drop=True), expected)
    assert verdicts.iloc[-1].claim == "Representations look alike across seeds"
    assert verdicts.iloc[-1].verdict != "not testable with this data"
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
    assert list(mechanism.columns) == ["grads", "init", "untrained", "norm_left", "rel_change"]
    assert mechanism.norm_left.loc[0.05] < mechanism.norm_left.loc[0.0]
    assert mechanism.rel_change.loc[0.05] > mechanism.rel_change.loc[0.0]  # L1 moves W1 away from its init


# ---------------------------------------------------------------- regimes, shifts and the first look's tables

@pytest.fixture(scope="module")
def twenty():
    """The committed study of 20 seeds on mnist-5k (results/mnist5k-20-seeds)."""
    return committed_regime("mnist5k-20-seeds", ROOT / "results")


def test_a_regime_is_labelled_with_its_data_its_steps_and_its_accuracy(twenty):
    from underspec.studies.regimes import regime_label

    corner = twenty.members[(twenty.members.l1 == 0) & (twenty.members.n_classes == 10)]
    assert len(corner) == 20 and round(corner.test_acc.mean(), 3) == 0.889
    assert regime_label(twenty) == twenty.label() == ("mnist-5k, 4,000 training images, 3,150 of the paper's 46,900 "
                                                      "SGD steps, test accuracy 0.889 at λ = 0, C = 10")
    assert twenty.steps == 50 * 63 and twenty.grid.seeds[:2] == (0, 42) and len(twenty.grid.seeds) == 20
    empty = SimpleNamespace(dataset="mnist", n_train=60_000, steps=46_900, members=pd.DataFrame())
    assert regime_label(empty) == "mnist, 60,000 training images, 46,900 of the paper's 46,900 SGD steps"


def test_seeds_under_shift_at_one_configuration_are_summarized_from_the_pairs(twenty):
    """``shift_summary``: per test set (in distribution first) the mean accuracy of the seeds and its spread,
    the disagreement between two seeds (the mean over pairs) with an interval around it; the far data set has
    no labels to score."""
    from underspec.studies.shifts import shift_summary

    part = twenty.shifts[(twenty.shifts.l1 == 0) & (twenty.shifts.n_classes == 10)]
    part = part[part.block == -1] if "block" in part else part  # every test image (not a block left out)
    summary = shift_summary(twenty, 0.0, 10).set_index("shift")
    assert list(summary.index) == list(dict.fromkeys(part["shift"])) and summary.index[0] == "in distribution"
    home = part[part["shift"] == "in distribution"]
    accuracy = pd.concat([home.set_index("seed_a").acc_a, home.set_index("seed_b").acc_b])
    accuracy = accuracy[~accuracy.index.duplicated()]
    assert len(accuracy) == 20 and len(home) == 190
    row = summary.loc["in distribution"]
    assert row.accuracy == pytest.approx(accuracy.mean()) and row.accuracy_sd == pytest.approx(accuracy.std(ddof=1))
    assert row.disagreement == pytest.approx(home.disagreement.mean())
    assert row.disagreement_low < row.disagreement < row.disagreement_high
    assert round(row.accuracy, 3) == 0.889 and round(row.disagreement, 3) == 0.074
    assert summary.loc["rotate 30°", "disagreement_low"] > row.disagreement_high  # the seeds part under shift
    assert np.isnan(summary.loc["far: fashion-mnist", "accuracy"])


def test_the_shift_table_is_one_row_per_test_set_and_regime_in_the_books_formats(twenty):
    from underspec.studies.shifts import shift_page_table, shift_summary

    summary = shift_summary(twenty, 0.0, 10)
    table = shift_page_table({"(a′)": summary, "(x) in distribution only": summary.iloc[:1]})
    assert list(table.columns) == ["test set", "regime", "accuracy (sd over seeds)", "accuracy gap between seeds",
                                   "disagreement between seeds"]
    assert len(table) == len(summary) + 1
    assert table[["test set", "regime"]].iloc[:2].values.tolist() == [["in distribution", "(a′)"],
                                                                      ["in distribution", "(x) in distribution only"]]
    first = summary.iloc[0]
    assert table.iloc[0]["accuracy (sd over seeds)"] == "0.889 (0.006)"
    assert table.iloc[0]["disagreement between seeds"] == interval(
        first.disagreement, first.disagreement_low, first.disagreement_high, sign=False)
    assert table.iloc[0]["disagreement between seeds"].startswith("0.074 [")
    far = table[table["test set"] == "far: fashion-mnist"].iloc[0]
    assert far["accuracy (sd over seeds)"] == "—" and far["accuracy gap between seeds"] == "—"


def test_the_effects_of_lambda_and_c_on_disagreement_under_shift_and_their_sentence(twenty):
    """On the committed 20 seeds: the shifts add about 0.064 to the disagreement; L1 (from λ = 0 to 0.01, the
    largest λ without degenerate networks) lowers that excess, each added class raises it; the sentence says
    so."""
    from underspec.studies.shifts import shift_effects, shift_sentence

    s = twenty.shifts
    s = s[s.block == -1] if "block" in s else s  # every test image (not a block left out)
    keys = ["l1", "n_classes", "seed_a", "seed_b"]
    home = s[s["shift"] == "in distribution"].set_index(keys).disagreement
    moved = s[(s["shift"] != "in distribution") & ~s["shift"].str.startswith("far: ")]
    excess = (moved.groupby(keys).disagreement.mean() - home).reset_index(name="excess")
    excess = excess[(excess.n_classes >= 3) & (excess.l1 <= 0.01)]
    effects = shift_effects(twenty)
    assert (effects["base"], effects["top"]) == (0.0, 0.01)  # λ = 0.05 has degenerate networks at C >= 3
    assert effects["mean"].value == pytest.approx(excess.excess.mean())
    assert round(effects["mean"].value, 3) == 0.064
    assert effects["l1"].high < 0 < effects["c"].low
    sentence = shift_sentence(twenty)
    assert sentence.startswith("(a′) mnist-5k, 20 seeds: under the shifts, two seeds disagree on +0.064 [")
    assert "from λ = 0 to λ = 0.01: seeds disagree less under shift (-0.045 [" in sentence
    assert "per added class: seeds disagree more under shift (+0.022 [" in sentence


def test_a_sweeps_results_are_a_regime_with_the_verdicts_of_the_same_tables_committed(monkeypatch):
    """``sweep_regime`` on the tables of a committed study (as ``load_results`` would give them): the rules'
    verdicts are those of the committed regime; only the compare targets the rules read are kept."""
    from underspec.studies import regimes
    from underspec.sweeps.config import SweepConfig

    folder = ROOT / "results" / "mnist5k-paper-steps"
    tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in ("metrics", "members", "shifts", "cka")}
    results = SimpleNamespace(config=SweepConfig.from_yaml(folder / "config.yaml"), metrics=tables["metrics"],
                              tables={t: tables[t] for t in ("members", "shifts", "cka")})
    monkeypatch.setattr(regimes, "load_results", lambda out: results if Path(out) == Path("my-sweep") else None)
    sweep = regimes.sweep_regime("my-sweep")
    committed = committed_regime(folder.name, folder.parent)
    assert sweep.name == "(s) the sweep in my-sweep" and sweep.dataset == "mnist-5k" and sweep.n_train == 4000
    assert set(sweep.metrics.target) == {"params", "grads", "displacement"}
    assert sweep.grid == committed.grid and sweep.steps == committed.steps
    pd.testing.assert_frame_equal(sweep.verdicts(), committed.verdicts())


def test_this_builds_regime_is_the_book_study_with_its_own_verdicts(tmp_path):
    from underspec.studies.regimes import live_regime, regime_label

    runs = book_study("mnist-5k", seeds="[0, 1, 2]", l1="0 0.01", classes="3 5", epochs=1, n_train=200, n_test=60,
                      device="cpu", results_dir=str(tmp_path))
    regime = live_regime(runs)
    assert regime.name == "(a) mnist-5k[:200,:60], 3 seeds, this build"
    assert regime.grid == runs.grid.for_data(200) and regime.steps == 2 * 2  # 1 epoch of 4 batches, C 3 and 5
    assert regime_label(regime) == regime_label(runs)
    assert regime.facts()["training images"] == "200" and regime.facts()["seeds"] == "3"
    assert regime.shifts["shift"].iloc[0] == "in distribution" and regime.cka is not None
    pd.testing.assert_frame_equal(regime.verdicts(), runs.verdicts())  # one set of verdicts, cached once


def test_the_first_looks_table_is_one_column_per_setting_with_intervals_and_nulls(tiny):
    """``FirstLook.table`` of a tiny width experiment (widths 4 and 16, three seeds, a stopping rule every
    network meets after its first epoch): the epochs each network trained, every metric as its estimate with the
    95% interval, and the null beside it, written as the book writes numbers (never "-0.000")."""
    from underspec.metrics.seed_similarity import METRIC_NAMES, seed_similarity, similarity_estimates
    from underspec.studies.first_look import TABLE_NULLS, FirstLook

    grid = Grid(seeds=(0, 1, 2), l1=(0.0,), n_classes=(10,), hidden=(4, 16), epochs=2, stop_loss=10.0)
    run = underspec.train(grid, tiny, progress=False, probe_size=10)
    experiment, rows, pairs, epochs, examples = "width (depth 1)", [], {}, {}, {}
    for part in run.parts:
        setting = str(part.grid.hidden)
        table, per_example = seed_similarity(part, tiny, examples=True)
        pairs[(experiment, setting)], examples[(experiment, setting)] = table, per_example
        epochs[(experiment, setting)] = part.members.stopped.astype(int).tolist()
        rows.append(similarity_estimates(table, examples=per_example).assign(experiment=experiment, setting=setting))
    estimates = pd.concat(rows, ignore_index=True)
    look = FirstLook(tiny, grid.parts()[0], estimates, pairs, epochs, pd.DataFrame(), examples)
    page = look.table(experiment)
    assert list(page.columns) == ["4", "16"] and page.columns.name == experiment
    assert page.loc["epochs trained"].tolist() == ["1", "1"]  # stopped after the first of two epochs
    assert list(page.index) == ["epochs trained"] + [
        row for metric, name in TABLE_NULLS.items()
        for row in [METRIC_NAMES[metric]] + ([f"  its null ({name})"] if name else [])]
    assert page.index.is_unique and len(page) == 1 + len(TABLE_NULLS) + 4  # four metrics have a null
    e = estimates.set_index(["setting", "metric"])
    for setting in ("4", "16"):
        for metric in TABLE_NULLS:
            c = e.loc[(setting, metric)]
            assert page.loc[METRIC_NAMES[metric], setting] == interval(c.value, c.low, c.high,
                                                                       sign=metric == "apc1_excess")
            if TABLE_NULLS[metric]:  # each null under its own metric (two metrics may have the same kind of null)
                assert page.loc[f"  its null ({TABLE_NULLS[metric]})", setting] == number(c.null, sign=False)
    assert not page.apply(lambda column: column.str.contains("-0.000")).any().any()

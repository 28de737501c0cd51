"""The tuning chapter's study (``studies.tuning``) at a tiny size: its tables, its tuners' journals (a grid
search that exhausts its grid, a second call that trains nothing), and the verdicts and figures drawn from
them."""

import numpy as np
import pytest

from underspec.report import tuning_figures as tf
from underspec.studies import tuning_sentences as ts
from underspec.studies import tuning_verdicts as tv
from underspec.studies.tuning import NOISE, TuningDesign, TuningStudy
from underspec.tuning import tuner as tuner_module

TINY = TuningDesign(configs=4, seeds=4, tune_epochs=1, trials=4, trial_seeds=1, batch=2, repeats=2, grid_points=2,
                    shape_seeds=3, shape_epochs=1, overparam_seeds=3, overparam_epochs=1, overparam_train=200,
                    widths=(1, 4, 16))


@pytest.fixture(scope="module")
def study(tmp_path_factory, mnist5k):
    return TuningStudy(mnist5k.take(300, 100), (0, 42), TINY, tmp_path_factory.mktemp("cache"), device="cpu",
                       threads=1)


@pytest.fixture(scope="module")
def tables(study):
    return study.tables()


def test_the_tables_hold_every_network_once(study, tables):
    assert study.seeds[:2] == (0, 42) and len(set(study.seeds)) == len(study.seeds) == 4
    scores = tables["scores"]
    assert len(scores) == 4 * 4 and scores.groupby("number").seed.nunique().eq(4).all()
    assert scores.value.between(0, 1).all() and {"lr", "hidden", "test_acc"} <= set(scores)
    tuners = tables["tuners"]
    assert len(tuners) == 3 * 2 * 4 * 1 and set(tuners.tuner) == {"grid", "random", "tpe"}
    grid = tuners[(tuners.tuner == "grid") & (tuners.repeat == 0)]  # 2 x 2 grid points, each tried once
    assert len(set(zip(grid.lr, grid.hidden))) == 4 and set(grid.hidden) == {8, 256}
    assert list(dict.fromkeys(tables["shapes"].widths)) == ["251", "157-157-157-157", "64-64-64", "64-32-16"]
    assert set(tables["shapes"].parameters) == {199_555, 199_243, 59_210, 53_018}
    assert len(tables["contrasts"]) == 4
    over = tables["overparam"]
    assert len(over) == 3 * len(NOISE) * 3 and set(over.hidden) == {1, 4, 16}
    assert over.test_error.between(0, 1).all() and (over[over.hidden == 4].parameters == 4 * 785 + 50).all()


def test_a_second_call_reads_the_journals_and_trains_nothing(study, tables, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(tuner_module, "train_parts", refuse)
    again = study.tuners()
    assert again.equals(tables["tuners"]) and all(path.is_file() for path in study.journals())


def test_verdicts_sentences_and_figures_come_from_the_tables(study, tables):
    verdicts = tv.verdicts(tables)
    assert len(verdicts) == 6 + len(NOISE) + 2 and verdicts.verdict.isin(
        ["shown", "contradicted", "inconclusive", "not testable with this data"]).all()
    rho = verdicts.set_index("claim").loc["configurations rank alike on two disjoint sets of seeds"]
    assert -1 <= rho.value <= 1
    inflation = tv.inflation(tables["scores"])
    assert list(inflation.k) == [1, 2, 3, 4] and inflation.validation.iloc[0] == pytest.approx(0, abs=1e-12)
    assert np.all(np.diff(inflation.validation) >= -1e-12)
    for sentence in (ts.seed_sentence, ts.inflation_sentence, ts.shapes_sentence, ts.overparam_sentence,
                     ts.tuners_sentence):
        assert "this build" in sentence(tables, "this build")
    assert "not in this checkout" in ts.committed_words(None)
    for draw in (tf.seed_scores, tf.shapes_figure, tf.overparam_figure, tf.tuners_figure):
        fig = draw({"this build": tables}, title="t")
        assert fig.get_figwidth() <= 7.3
    assert len(tf.picks_table({"this build": tables})) == 3 * 2
    assert "Seed study: 4 random configurations x 4 seeds" in study.summary()


def test_the_chapter_design_follows_its_parameters():
    from underspec.studies.tuning import QUICK, chapter_design

    full = chapter_design(50, 4000)
    assert (full.tune_epochs, full.shape_epochs, full.overparam_epochs) == (5, 10, 16)
    assert full.widths[0] == 1 and full.widths[-1] == 1024 and full.configs == 16 and full.seeds == 8
    quick = chapter_design(2, 500)
    assert (quick.tune_epochs, quick.shape_epochs, quick.overparam_epochs) == (1, 1, 1)
    assert quick.widths == QUICK["widths"] and quick.configs == QUICK["configs"]


def test_learning_curves_read_the_validation_split_of_every_seed_and_width(study):
    """One row per width, seed and epoch, equal to the run's own history; the split's numbers are the
    validation split's (a network scores itself on images it never trained on), never the test set's."""
    curves = study.curves()
    assert len(curves) == 2 * 3 * TINY.shape_epochs and set(curves.hidden) == {16, 256}
    history = study.run("curves").history
    assert np.array_equal(curves.val_acc.to_numpy(), history.val_acc.to_numpy())
    assert not np.array_equal(curves.val_acc.to_numpy(), history.test_acc.to_numpy())
    assert curves[["train_loss", "val_loss"]].gt(0).all().all() and curves.val_acc.between(0, 1).all()
    tf.learning_curves(curves, title="curves")

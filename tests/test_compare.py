"""compare(run): the tidy table of metrics per configuration, seed pair and target; summarize(table)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import underspec
from underspec import Grid, UnderspecError, compare, null_init, summarize
from underspec.training.data import data_pixels
from underspec import match_units, paper_pair_metrics

PAPER = ["apc1", "apc2", "pe"]
ADDED = ["apc1_signed", "apc2_signed", "pe_signed", "apc2_w1perm", "apc1_data", "apc_act", "apc_act_signed", "pe_act"]
KEYS = ["l1", "n_classes", "seed_a", "seed_b", "target"]
ZERO = ["zero_var_w1", "zero_var_w2", "zero_var_act"]
ALIVE = ["apc1_alive", "apc2_alive", "pe_alive"]


@pytest.fixture(scope="module")
def data(mnist5k):
    return mnist5k.take(500, 200)


@pytest.fixture(scope="module")
def run(data):
    grid = Grid(seeds=(0, 42, 1337), l1=(0.0, 0.01), n_classes=(2, 10), epochs=1)
    return underspec.train(grid, data, progress=False)


@pytest.fixture(scope="module")
def table(run, data):
    return compare(run, data=data)


def test_rows_and_columns(run, table):
    metrics = PAPER + ADDED
    assert list(table.columns) == KEYS + metrics + ALIVE + ZERO + ["dead_a", "dead_b"] + [
        f"{m}_null" for m in metrics + ALIVE]
    assert len(table) == 4 * 2 * 3  # configurations x reference pairs x targets
    first = table.iloc[:6]
    assert first[["l1", "n_classes"]].drop_duplicates().values.tolist() == [[0.0, 2]]
    assert first.seed_b.tolist() == [42, 42, 42, 1337, 1337, 1337]
    assert first.target.tolist() == ["params", "grads", "displacement"] * 2
    assert (table.seed_a == 0).all()
    everything = compare(run, "all", targets=("params",), null=None)
    assert len(everything) == 4 * 3
    assert everything[["seed_a", "seed_b"]].drop_duplicates().values.tolist() == [[0, 42], [0, 1337], [42, 1337]]
    assert "apc1_data" not in everything and "apc1_null" not in everything
    assert not table[metrics + [f"{m}_null" for m in metrics]].isna().any().any()


@pytest.mark.parametrize("target, record", [("params", "final"), ("grads", "grad_sum")])
def test_the_paper_values_of_a_row_equal_the_papers_loops(run, table, target, record):
    row = table[(table.l1 == 0.01) & (table.n_classes == 10) & (table.seed_b == 1337) & (table.target == target)]
    a, b = (getattr(run.member(seed, 0.01, 10), record) for seed in (0, 1337))
    ref = paper_pair_metrics(a["w1"], b["w1"], a["w2"], b["w2"])
    for k in PAPER:
        assert row[k].item() == pytest.approx(ref[k], abs=1e-12), k


def test_gradients_and_displacement_agree_under_sgd(table):
    # with plain SGD the summed gradients are (init - final) / lr: the same unit vectors up to scale and sign
    grads = table[table.target == "grads"].reset_index(drop=True)
    disp = table[table.target == "displacement"].reset_index(drop=True)
    for k in ("apc1", "apc2", "apc1_signed", "apc1_data"):
        np.testing.assert_allclose(grads[k], disp[k], atol=1e-5)


def test_additions_match_their_definitions(run, data, table):
    row = table[(table.l1 == 0.0) & (table.n_classes == 10) & (table.seed_b == 42) & (table.target == "params")]
    a, b = run.member(0, 0.0, 10), run.member(42, 0.0, 10)
    acts = [m.embeddings["post"][-1].T for m in (a, b)]  # (H, P): final epoch, held-out probe images
    assert row.apc_act.item() == pytest.approx(underspec.apc(match_units(*acts)).item(), abs=1e-12)
    mask = data_pixels(data.x_train)
    assert row.apc1_data.item() == pytest.approx(
        underspec.apc(match_units(a.final["w1"][:, mask], b.final["w1"][:, mask])).item(), abs=1e-12)
    assert row.apc1_null.item() == null_init(10, pixel_mask=mask)["apc1"]
    assert (table[table.n_classes == 2].apc2_null == 1.0).all()


def test_zero_variance_units_follow_the_policy(run):
    grad_sum = {k: v.clone() for k, v in run.grad_sum.items()}
    grad_sum["w1"][run.index(42, 0.0, 10), 5] = 0.0  # a unit that never got a gradient (a dead unit)
    dead = dataclasses.replace(run, grad_sum=grad_sum)
    with pytest.raises(UnderspecError, match=r"zero-variance .* in w1 of the grads of seeds \(0, 42\) at l1=0.0, n_c"):
        compare(dead, targets=("grads",), policy="raise", null=None)
    zero = compare(dead, targets=("grads",), null=None)
    hit = (zero.l1 == 0.0) & (zero.n_classes == 10) & (zero.seed_b == 42)
    assert zero[hit].zero_var_w1.tolist() == [1] and (zero[~hit].zero_var_w1 == 0).all()
    assert np.isfinite(zero.apc1).all()
    exclude = compare(dead, targets=("grads",), policy="exclude", null=None)
    assert exclude[hit].apc1.item() > zero[hit].apc1.item()  # averaged over 15 units instead of counting a 0
    assert exclude[~hit].apc1.tolist() == zero[~hit].apc1.tolist()


def test_random_pairing_is_a_lower_bound_not_a_chance_level(run):
    shuffled = compare(run, targets=("params", "grads"), null="random-pairing", n_null=64)
    row = shuffled.iloc[1]  # l1 = 0, C = 2, seeds 0 and 42, grads
    a, b = (run.params("grad_sum")["w1"][run.index(s, 0.0, 2)] for s in (0, 42))
    r, _, _ = underspec.unit_correlation(a, b)
    assert row.target == "grads" and row.apc1_random_pairing == pytest.approx(r.abs().mean().item(), abs=0.02)
    assert row.pe_random_pairing < 0.2
    pd.testing.assert_frame_equal(shuffled, compare(run, targets=("params", "grads"), null="random-pairing",
                                                    n_null=64))
    with pytest.raises(UnderspecError, match="now null='random-pairing'"):
        compare(run, null="shuffle")


@pytest.mark.parametrize("kwargs, message", [
    ({"pairs": "some"}, "unknown pairs view 'some'"),
    ({"targets": ("weights",)}, "unknown target"),
    ({"null": "random"}, "unknown null 'random'"),
    ({"policy": "ignore"}, "unknown zero-variance policy"),
])
def test_bad_arguments_are_refused(run, kwargs, message):
    with pytest.raises(UnderspecError, match=message):
        compare(run, **kwargs)


def test_data_must_be_the_runs_data(run, mnist5k):
    with pytest.raises(UnderspecError, match="trained on 'mnist-5k\\[:500,:200\\]'"):
        compare(run, data=mnist5k)


def test_summarize_gives_mean_spread_and_interval():
    table = pd.DataFrame({"l1": 0.0, "n_classes": [3] * 4 + [4] * 2, "seed_a": 0, "seed_b": [1, 2, 3, 4, 1, 2],
                          "target": "params", "apc1": [0.1, 0.2, 0.3, 0.6, 0.5, np.nan],
                          "apc1_null": [0.07] * 4 + [0.05] * 2})
    summary = summarize(table, method="pairs")  # the old pair bootstrap, kept as a named option
    assert list(summary.columns) == ["target", "l1", "n_classes", "metric", "n", "n_seeds", "mean", "std", "ci_low",
                                     "ci_high", "null", "null_structured", "random_pairing", "method"]
    three, four = summary.iloc[0], summary.iloc[1]
    assert (three.n, three["mean"], three["null"]) == (4, pytest.approx(0.3), pytest.approx(0.07))
    assert three["std"] == pytest.approx(np.std([0.1, 0.2, 0.3, 0.6], ddof=1))
    assert 0.1 <= three.ci_low < 0.3 < three.ci_high <= 0.6
    assert (four.n, four["mean"], four.ci_low, four.ci_high) == (1, 0.5, 0.5, 0.5)  # the NaN is left out
    pd.testing.assert_frame_equal(summary, summarize(table, method="pairs"))  # seeded bootstrap
    # the default resamples seeds: the reference view (every pair has seed 0) resamples the other four seeds,
    # the jackknife-t interval of the four values: mean 0.3 +- t(3) * sd / sqrt(4)
    three = summarize(table).iloc[0]
    half = 3.182446305284263 * np.std([0.1, 0.2, 0.3, 0.6], ddof=1) / 2
    assert (three.ci_low, three.ci_high) == (pytest.approx(0.3 - half), pytest.approx(0.3 + half))
    assert three.method == "jackknife" and three.n_seeds == 5


def test_summarize_of_a_compare_table(table):
    summary = summarize(table)
    assert len(summary) == 4 * 3 * 14  # configurations x targets x metrics
    row = summary[(summary.target == "params") & (summary.l1 == 0.0) & (summary.n_classes == 10)
                  & (summary.metric == "pe")].iloc[0]
    values = table[(table.target == "params") & (table.l1 == 0.0) & (table.n_classes == 10)].pe
    assert (row.n, row["mean"]) == (2, pytest.approx(values.mean()))

"""Choosing under seed noise (``metrics.selection``, ``studies.tuning_verdicts``) and the equal-budget widths:
known values, exact against enumeration, and the verdict rules on hand-made tables."""

import itertools

import numpy as np
import pandas as pd
import pytest

from underspec import Grid
from underspec.errors import UnderspecError
from underspec.metrics.selection import (best_of_k, best_of_k_inflation, best_of_k_weights, gaps_to, seed_splits,
                                         single_seed_winners, split_agreement)
from underspec.studies import tuning_verdicts as tv
from underspec.training.memory import n_parameters, width_for_parameters


def test_parameter_budget_widths_are_the_widest_that_fit():
    assert width_for_parameters(200_000, 1) == 251 and width_for_parameters(200_000, 4) == 157
    assert width_for_parameters(12_700, 1) == 15  # the paper's 12,730 parameters at width 16 do not fit 12,700
    for depth in (1, 2, 4):
        w = width_for_parameters(200_000, depth)
        count = lambda h: n_parameters(Grid(hidden=h, depth=depth), 784)  # noqa: E731
        assert count(w) <= 200_000 < count(w + 1)
    assert n_parameters(Grid(hidden=251), 784) == 199_555 and n_parameters(Grid(hidden=157, depth=4), 784) == 199_243
    with pytest.raises(UnderspecError):
        width_for_parameters(100, 1)


def test_best_of_k_equals_the_formula_and_the_enumeration():
    x = np.array([0.91, 0.87, 0.95, 0.90, 0.89])
    s = np.sort(x)
    # E[max of 2 of 5] = sum_j s_j C(j-1, 1) / C(5, 2)
    assert best_of_k(x, 2) == pytest.approx(sum(s[j] * j for j in range(5)) / 10)
    for k in range(1, 6):
        enumerated = np.mean([max(c) for c in itertools.combinations(x, k)])
        assert best_of_k(x, k) == pytest.approx(enumerated, abs=1e-15)
        assert best_of_k_weights(5, k).sum() == pytest.approx(1)
    assert best_of_k(x, 1) == pytest.approx(x.mean()) and best_of_k(x, 5) == x.max()
    table = best_of_k_inflation(x)
    assert table.inflation.iloc[0] == pytest.approx(0, abs=1e-15) and table.inflation.is_monotonic_increasing
    assert table.inflation.iloc[-1] == pytest.approx(x.max() - x.mean())


def test_best_of_k_by_another_score_is_the_enumerated_pick_and_shares_ties():
    val = np.array([0.5, 0.7, 0.6, 0.9])
    test = np.array([0.55, 0.60, 0.80, 0.70])
    for k in range(1, 5):
        enumerated = np.mean([test[max(c, key=lambda i: val[i])] for c in itertools.combinations(range(4), k)])
        assert best_of_k(test, k, by=val) == pytest.approx(enumerated)
    tied = np.array([1.0, 1.0, 0.0])  # the best of all three by a tied score: either tied seed, half each
    assert best_of_k(np.array([0.2, 0.4, 0.9]), 3, by=tied) == pytest.approx(0.3)
    with pytest.raises(UnderspecError):
        best_of_k(val, 5)


def test_seed_splits_are_every_unordered_split_once():
    assert seed_splits(4, 2) == [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    assert len(seed_splits(8, 4)) == 35 and len(seed_splits(7, 3)) == 70
    with pytest.raises(UnderspecError):
        seed_splits(5, 3)


def test_identical_seed_sets_rank_alike_and_crown_one_winner():
    config_effect = np.array([0.1, 0.5, 0.3, 0.9, 0.7])
    scores = np.tile(config_effect[:, None], (1, 6))  # every seed scores every configuration alike
    splits = split_agreement(scores, 3)
    assert len(splits) == 10 and np.allclose(splits.spearman, 1) and splits.same_winner.all()
    assert (single_seed_winners(scores) == 3).all()
    reversed_half = np.concatenate([scores[:, :3], -scores[:, 3:]], 1)
    first = split_agreement(reversed_half, 3).iloc[0]
    assert first.spearman == pytest.approx(-1) and first.winner_a == 3 and first.winner_b == 0


def test_gaps_to_the_chosen_are_paired_over_seeds():
    scores = np.array([[0.9, 0.8, 0.85], [0.8, 0.7, 0.75], [0.9, 0.81, 0.84]])
    gaps = gaps_to(scores, 0)
    assert gaps.gap.iloc[1] == pytest.approx(0.1) and gaps.low.iloc[1] == pytest.approx(0.1)  # a constant gap
    assert gaps.apart.tolist() == [False, True, False]


def _scores(values: np.ndarray) -> pd.DataFrame:
    k, s = values.shape
    return pd.DataFrame([{"number": i, "seed": 10 + j, "value": values[i, j], "test_acc": values[i, j] - 0.01,
                          "lr": 0.01 * (i + 1), "hidden": 8 * (i + 1)} for i in range(k) for j in range(s)])


def test_seed_findings_on_configurations_far_apart_and_on_pure_noise():
    rng = np.random.default_rng(0)
    apart = np.linspace(0.5, 0.9, 6)[:, None] + 0.001 * rng.standard_normal((6, 8))
    found = tv.seed_findings(_scores(apart))
    assert found["spearman"].value > 0.9 and found["spearman"].low > 0 and found["changed"].value == 0
    assert found["alone"] == 0 and found["winner"] == 5 and found["margin"].low > 0 and found["tied"] == 0
    noise = 0.8 + 0.05 * rng.standard_normal((6, 8))
    found = tv.seed_findings(_scores(noise))
    assert abs(found["spearman"].value) < 0.5 and found["changed"].value > 0.3


def test_the_bump_of_a_double_descent_and_of_a_monotone_curve():
    assert tv.bump(np.array([0.5, 0.3, 0.4, 0.2])) == pytest.approx(0.1)
    assert tv.bump(np.array([0.5, 0.4, 0.3, 0.2])) == pytest.approx(-0.1)
    rows = [{"hidden": w, "label_noise": 0.2, "seed": s, "parameters": w, "train_error": 0.0,
             "test_error": e + 0.001 * s} for w, e in zip((1, 2, 4, 8, 16), (0.5, 0.3, 0.45, 0.3, 0.2)) for s in range(4)]
    e, top = tv.bump_estimate(pd.DataFrame(rows), 0.2)
    assert top == 4 and e.value == pytest.approx(0.15) and e.low > 0


def test_tuner_curves_and_picks_read_validation_only():
    rows = []
    for tuner, values in (("grid", (0.5, 0.7, 0.6)), ("tpe", (0.6, 0.8, 0.9))):
        for repeat in range(2):
            for number, v in enumerate(values):
                for seed in (0, 1):
                    rows.append({"tuner": tuner, "repeat": repeat, "number": number, "seed": seed, "value": v + 0.01 * repeat,
                                 "test_acc": 1.0 - v, "lr": 0.1 * number, "hidden": 8 + number, "state": "COMPLETE"})
    tuners = pd.DataFrame(rows)
    curves = tv.tuner_curves(tuners)
    grid = curves[curves.tuner == "grid"]
    assert grid.networks.tolist() == [2, 4, 6] and grid.value.tolist() == pytest.approx([0.505, 0.705, 0.705])
    picks = tv.picks(tuners)
    assert picks[picks.tuner == "grid"].hidden.tolist() == [9, 9]  # the best validation, not the best test
    assert picks[picks.tuner == "grid"].test.tolist() == pytest.approx([0.3, 0.3])
    e = tv.tuner_difference(tuners, "tpe", "grid")
    assert e.value == pytest.approx(0.2) and 0 < e.low < 0.2 < e.high  # both repeats 0.01 apart: a spread

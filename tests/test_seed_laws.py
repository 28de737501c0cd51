"""Seeds as a statistic: the how-many-seeds curves on simulated populations of models, the replicated
intervals against seed_image_estimate, separations, and the laws of seed variance on simulated seeds whose
truth is known (independent errors; a calibrated ensemble)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from underspec import UnderspecError
from underspec.metrics import seed_laws
from underspec.metrics.uncertainty import multibootstrap, seed_image_estimate


def population(n_seeds: int, t: int, spread: float, seed: int = 0) -> np.ndarray:
    """Every seed's outputs on t images: the image's own value plus a seed-specific shift of its
    distribution (spread 0: every seed draws from one distribution)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n_seeds, t)) + spread * rng.normal(0, 1, (n_seeds, 1))


def test_doubling():
    assert seed_laws.doubling(1) == [1] and seed_laws.doubling(8) == [1, 2, 4, 8]
    assert seed_laws.doubling(20) == [1, 2, 4, 8, 16, 20]


def test_references_of_one_distribution_are_at_0_and_shifted_seeds_need_more_of_them():
    same = seed_laws.seeds_curve(population(8, 2000, 0.0), n_draws=4, n_boot=10)
    assert set(same.kind) == set(seed_laws.KINDS) and same.alpha_hat.max() <= 0.05
    shifted = seed_laws.curve_estimates(seed_laws.seeds_curve(population(16, 2000, 1.0), n_draws=8, n_boot=10), 16)
    two = shifted[shifted.kind == "two references"].set_index("m").value
    held = shifted[shifted.kind == "held-out"].set_index("m").value
    assert list(two.index) == [1, 2, 4, 8] and list(held.index) == [1, 2, 4, 8, 15]
    assert two[1] > 0.15 and two[8] < two[1] / 2  # mixtures of more seeds come closer to each other
    assert held[15] > 0.1  # one shifted seed stays apart from the population however large the reference
    row = shifted.iloc[0]
    assert row.low <= row.value <= row.high and row.spread_low <= row.value <= row.spread_high


def test_every_draw_uses_disjoint_seeds_and_bad_input_is_refused():
    draws = seed_laws.seeds_curve(population(6, 40, 0.0), n_draws=3, n_boot=2)
    for a, b in zip(draws.seeds_a, draws.seeds_b):
        assert not set(a) & set(b) and len(set(a) | set(b)) == len(a) + len(b)
    with pytest.raises(UnderspecError, match="at least 2 seeds"):
        seed_laws.seeds_curve(np.zeros((1, 40)))


def test_replicates_give_seed_image_estimates_interval_and_differences_separate_planted_changes():
    rng = np.random.default_rng(0)
    correct = (rng.random((7, 400)) < 0.8).astype(float)

    def stat(keep, images):
        return correct[np.ix_(keep, images)].mean()

    e = seed_laws.replicate_estimate(seed_laws.replicates(stat, 7, 400), 7)
    reference = seed_image_estimate(stat, 7, 400)
    assert (e.value, e.low, e.high) == pytest.approx((reference.value, reference.low, reference.high), abs=1e-12)
    better = np.minimum(correct + (rng.random((7, 400)) < 0.5), 1.0)  # the same seeds, right more often
    reps = np.stack([seed_laws.replicates(lambda k, i, c=c: c[np.ix_(k, i)].mean(), 7, 400)
                     for c in (correct, correct, better)])
    found = seed_laws.separations(reps, 7)
    assert not found[0, 1] and found[0, 2] and found[1, 2] and (found == found.T).all()
    with pytest.raises(UnderspecError, match="at least 3 seeds"):
        seed_laws.replicates(stat, 2, 400)


def test_setting_metrics_summarise_the_seeds_of_a_setting():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (300,), generator=g)
    logits = torch.randn(5, 300, 4, generator=g, dtype=torch.float64) + 3 * torch.nn.functional.one_hot(labels, 4)
    found = seed_laws.setting_metrics(logits, labels, n_boot=5, n_blocks=5)
    assert set(found) == {"accuracy", "churn", "ece", "alpha_hat"} and all(len(v) == 1 + 5 + 5 for v in found.values())
    assert found["accuracy"][0] == pytest.approx(float((logits.argmax(-1) == labels).double().mean()))
    pred = logits.argmax(-1)
    pairs = [float((pred[i] != pred[j]).double().mean()) for i in range(5) for j in range(i + 1, 5)]
    assert found["churn"][0] == pytest.approx(np.mean(pairs))
    assert 0 <= found["alpha_hat"][0] <= 0.1  # seeds drawn alike


def test_the_disagreement_equality_holds_for_a_calibrated_ensemble_and_fails_for_an_overconfident_one():
    rng = np.random.default_rng(1)
    s, t, c = 12, 3000, 3
    p = rng.dirichlet(np.ones(c) * 0.7, t)  # each image's class probabilities
    cumulative = p.cumsum(1)
    labels = (rng.random((t, 1)) > cumulative).sum(1)  # drawn from p: calibrated
    pred = (rng.random((s, t, 1)) > cumulative).sum(-1)  # every seed draws its prediction from p
    e = multibootstrap(seed_laws.gde_gap(pred, labels))
    assert e.low < 0 < e.high and abs(e.value) < 0.01
    e = multibootstrap(seed_laws.gde_gap(pred, p.argmax(1)))  # labels always the likeliest class
    assert e.low > 0.05  # seeds disagree far more than they err


def test_jordans_prediction_equals_the_observed_spread_for_independent_errors_and_not_for_shared_ones():
    rng = np.random.default_rng(2)
    t = 500
    q = rng.beta(0.5, 3, t)  # each image's error rate
    ratios = []
    for _ in range(200):  # 200 studies of 50 seeds whose errors are independent by construction
        correct = (rng.random((50, t)) >= q).astype(float)
        predicted, observed = seed_laws.jordan_spread(correct)
        ratios.append(observed ** 2 / predicted ** 2)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.03)
    correct = (rng.random((2000, t)) >= q).astype(float)  # and one study of many seeds
    predicted, observed = seed_laws.jordan_spread(correct)
    assert observed == pytest.approx(predicted, rel=0.05)
    shared = (rng.random((2000, 1)) * 0.2 + rng.random((2000, t)) >= q).astype(float)  # a seed-wide luck
    predicted, observed = seed_laws.jordan_spread(shared)
    assert observed > 2 * predicted
    with pytest.raises(UnderspecError, match="at least 2 seeds"):
        seed_laws.jordan_spread(np.ones((1, 10)))


def test_twin_disagreement():
    assert seed_laws.twin_disagreement([[0, 1], [2, 2]], [[0, 2], [2, 2]]).tolist() == [[0, 1], [0, 0]]
    with pytest.raises(UnderspecError, match="two"):
        seed_laws.twin_disagreement([[0]], [[0, 1]])


def test_curve_difference_is_the_difference_of_the_means_with_a_seed_interval():
    draws = seed_laws.seeds_curve(population(12, 600, 1.0), n_draws=10, n_boot=5, ms=[1, 4])
    e = seed_laws.curve_difference(draws, "held-out", 1, 4, 12)
    held = draws[draws.kind == "held-out"]
    assert e.value == pytest.approx(held[held.m == 1].alpha_hat.mean() - held[held.m == 4].alpha_hat.mean())
    assert e.low <= e.value <= e.high
    with pytest.raises(UnderspecError, match="no 'held-out' draws at M = 1 and 3"):
        seed_laws.curve_difference(draws, "held-out", 1, 3, 12)


def hostile_logits():
    """Five seeds' logits on 50 images of 4 classes, the labels, and three hostile versions (NaN logits, an
    empty test set, one seed)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (50,), generator=g)
    logits = torch.randn(5, 50, 4, generator=g, dtype=torch.float64)
    nan = logits.clone()
    nan[2, 3, 1] = float("nan")
    return {"NaN or infinite": (nan, labels), "empty test set": (logits[:, :0], labels[:0]),
            "at least 2 seeds": (logits[:1], labels)}


@pytest.mark.parametrize("case", ["NaN or infinite", "empty test set", "at least 2 seeds"])
def test_hostile_logits_get_one_clear_error_at_every_entry_point(case):
    """NaN logits, an empty test set and one model: one line saying which, from every statistic of seeds."""
    from underspec.metrics.trimming import alpha_hats_loo
    from underspec.studies.seeds import laws_row

    logits, labels = hostile_logits()[case]
    messages = {"NaN or infinite": "NaN or infinite", "empty test set": "empty test set|at least one image|at least "
                "4 test images", "at least 2 seeds": "at least 2 seeds|nothing to compare"}
    pred = logits.nan_to_num().argmax(-1).numpy()
    calls = [lambda: seed_laws.setting_metrics(logits, labels, n_boot=2, n_blocks=5),
             lambda: laws_row(logits, labels)]
    if case != "NaN or infinite":  # predictions cannot hold NaN; the scalar outputs refuse it themselves
        calls.append(lambda: seed_laws.gde_gap(pred, labels.numpy()))
    if case != "empty test set":  # scalar_outputs refuses an empty set (the setting_metrics call covers it)
        values = logits.sum(-1)  # one scalar per image, NaN where a logit is
        calls += [lambda: alpha_hats_loo(values, n_boot=2), lambda: seed_laws.seeds_curve(values, n_draws=2, n_boot=2)]
    for call in calls:
        with pytest.raises(UnderspecError, match=messages[case]) as err:
            call()
        assert "\n" not in str(err.value)


def test_setting_metrics_alpha_hat_is_each_seed_against_the_mixture_of_the_others():
    """The setting summary's alpha-hat is the leave-one-out level (every seed against all the others), on
    every seed and image subset its replicates take."""
    from underspec.metrics.trimming import alpha_hats, scalar_outputs

    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 3, (200,), generator=g)
    logits = torch.randn(5, 200, 3, generator=g, dtype=torch.float64)
    logits[0] += 2.0 * torch.nn.functional.one_hot(labels, 3)  # one seed unlike the others: a level above 0
    found = seed_laws.setting_metrics(logits, labels, output="top2", n_boot=7, n_blocks=4)["alpha_hat"]
    values = scalar_outputs(logits, kind="top2")

    def general(seeds, images):
        v = values[seeds][:, images]
        others = [[j for j in range(len(seeds)) if j != i] for i in range(len(seeds))]
        return float(alpha_hats(v, v[torch.tensor(others)], n_boot=7).mean())

    everything, images = list(range(5)), torch.arange(200)
    assert found[0] == general(everything, images) and found[0] > 0
    assert found[1] == general([1, 2, 3, 4], images)  # seed 0 left out
    block = np.arange(200) * 4 // 200
    assert found[1 + 5] == general(everything, torch.as_tensor(np.flatnonzero(block != 0)))  # first block left out

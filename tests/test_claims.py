"""The claim rules, on synthetic worlds where the truth is known: seed-pair tables shaped like compare's,
with seed effects and pair noise, so every rule resamples seeds exactly as it does on real data."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pandas as pd
import pytest

from underspec import UnderspecError
from underspec.metrics.chance import fixed_similarity_at, fixed_similarity_curve
from underspec.studies import claims

SEEDS = (0, 42, 1337, 3213, 9999, 5783, 1023)
L1 = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)
CLASSES = tuple(range(2, 11))
METRICS = ("pe", "apc1", "apc2", "apc2_w1perm", "apc1_data", "pe_alive")


def world(rule, *, noise: float = 0.004, seed: int = 0, seeds=SEEDS, dead=lambda l1: 0) -> pd.DataFrame:
    """A compare-shaped table: for every configuration, seed pair and target, each metric is
    rule(target, l1, c)[metric] = (mean, untrained null, structured null) plus the two seeds' effects and
    pair noise; ``dead(l1)``: dead units of every network at that lambda."""
    rng = np.random.default_rng(seed)
    effect = {(s, m): rng.normal(0, noise) for s in seeds for m in METRICS}
    rows = []
    for l1, c, (a, b), target in itertools.product(L1, CLASSES, itertools.combinations(seeds, 2),
                                                   ("params", "grads")):
        row = {"l1": l1, "n_classes": c, "seed_a": a, "seed_b": b, "target": target, "dead_a": dead(l1),
               "dead_b": dead(l1)}
        for metric, (mean, null, structured) in rule(target, l1, c).items():
            row[metric] = mean + effect[a, metric] + effect[b, metric] + rng.normal(0, noise)
            row[f"{metric}_null"], row[f"{metric}_null_structured"] = null, structured
        rows.append(row)
    return pd.DataFrame(rows)


def chance_apc2(c):
    return 1.0 - 0.05 * (c - 2)  # falls with C, as the untrained null of a matching over C entries does


@functools.lru_cache(maxsize=None)
def fixed(metric: str, value: float, c: int) -> float:
    """The fixed-similarity null of ``metric`` at C = c (C = 2: as at 3; the rules leave it out), for the
    similarity at which it is ``value`` at C = 10, as the rules calibrate it."""
    return float(fixed_similarity_at(fixed_similarity_curve(metric, range(3, 11)), value)[max(c, 3) - 3])


BUMP = {0.0: 0.0, 0.001: 0.03, 0.0025: 0.06, 0.005: 0.10, 0.01: 0.06, 0.05: -0.05}  # PE peaks at 0.005
BUMP_MEAN = sum(BUMP.values()) / len(BUMP)


def paper_world(target, l1, c):
    """Everything the paper says, for real: PE rises with C by 0.02 a class more than networks of one fixed
    similarity do, peaks clearly at lambda 0.005 (over all units and over the live ones) and is 0.48 at
    (0.001, 9); APC-2 falls with C by 0.02 a class more than its fixed-similarity null and ignores lambda; the
    gradients' APC-1 stands above its structured null only at lambda 0."""
    pe = fixed("pe", 0.31, c) + 0.02 * (c - 10) + BUMP[l1] - BUMP_MEAN
    pe = 0.48 if (l1, c) == (0.001, 9) else pe
    apc2 = fixed("apc2", 0.6, c) - 0.02 * (c - 10)
    if target == "grads":
        return {"pe": (0.1, 1 / 16, 0.07), "apc1": (0.30 + (0.2 if l1 == 0 else 0.0), 0.07, 0.30),
                "apc2": (apc2, chance_apc2(c), apc2 - 0.1), "pe_alive": (0.1, 1 / 16, 0.07)}
    return {"pe": (pe, 1 / 16, 0.07), "apc1": (0.10 + 0.01 * (c - 3), 0.068, 0.08),
            "apc2": (apc2, chance_apc2(c), apc2 - 0.1), "apc2_w1perm": (0.4, 0.27, 0.27),
            "apc1_data": (0.10 + 0.01 * (c - 3), 0.068, 0.08), "pe_alive": (pe, 1 / 16, 0.07)}


def null_world(target, l1, c):
    """Every metric equals its null, and the nulls have trends: PE rises with C and APC-2 falls exactly as
    networks of one fixed similarity do; PE is 0.48 in the paper's cell, and so is its structured null."""
    pe = fixed("pe", 0.31, c)
    if c == 9 and l1 in (0.0, 0.001):  # the cell at 0.48, another at C = 9 lower: the mean over lambda stays
        pe += (0.48 - pe) * (1 if l1 == 0.001 else -1)
    apc2 = fixed("apc2", 0.6, c)
    return {"pe": (pe, pe, pe), "apc1": (0.1, 0.068, 0.1), "apc2": (apc2, apc2, apc2),
            "apc2_w1perm": (0.27, 0.27, 0.27), "apc1_data": (0.1, 0.068, 0.1), "pe_alive": (pe, pe, pe)}


def plateau_world(target, l1, c):
    """PE rises with lambda and falls at the end, but its top three values differ by less than their
    intervals (0.269, 0.270, 0.274, as the issue found on mnist-5k)."""
    pe = {0.0: 0.10, 0.001: 0.15, 0.0025: 0.269, 0.005: 0.270, 0.01: 0.274, 0.05: 0.17}[l1]
    return {**null_world(target, l1, c), "pe": (pe, 1 / 16, 0.07), "pe_alive": (pe, 1 / 16, 0.07)}


DEAD = {0.0: 0, 0.001: 1, 0.0025: 3, 0.005: 5, 0.01: 8, 0.05: 12}  # L1 erases units


def dead_units_world(target, l1, c):
    """Only the dead units change with lambda: PE over all units peaks at 0.005 (erased units pair up among
    themselves), while PE over the live units stays the same distance above its chance 1/k for k live units."""
    live = 0.2 + 1 / (16 - DEAD[l1])
    return {**null_world(target, l1, c), "pe": (0.10 + BUMP[l1], 1 / 16, 0.07), "pe_alive": (live, live, live)}


@pytest.fixture(scope="module")
def verdicts():
    return {name: claims.check_all(world(rule, noise=noise)).set_index("claim").verdict
            for name, rule, noise in (("paper", paper_world, 0.004), ("null", null_world, 0.004),
                                      ("plateau", plateau_world, 0.02))}


def test_a_world_that_behaves_as_the_paper_says_shows_every_claim(verdicts):
    assert (verdicts["paper"] == "shown").all(), verdicts["paper"].to_dict()


def test_a_metric_equal_to_its_null_is_never_a_real_effect_whatever_its_trend(verdicts):
    """PE rising with C exactly as its fixed-similarity null does is not shown (an artefact of the null); in the
    paper's world, 0.02 a class more than that null, it is."""
    v = verdicts["null"]
    assert not (v == "shown").any(), v.to_dict()
    assert v["PE rises with C"] == "artefact of the null"  # PE rises, as networks of one similarity do
    assert v["APC-2 falls with C"] == "artefact of the null"
    assert v.filter(like="highest PE").item() == "artefact of the null"  # 0.48, but the structured null's
    assert verdicts["paper"]["PE rises with C"] == "shown"


def test_a_peak_among_values_closer_than_their_intervals_is_a_plateau(verdicts):
    assert verdicts["plateau"].filter(like="PE rises with λ").tolist() == ["plateau: peak not identifiable"] * 2
    v = claims.pe_peaks_in_l1(world(plateau_world, noise=0.02))
    assert set(v.extra["tied"]) >= {0.0025, 0.005} - {v.extra["peak"]}


def test_a_peak_made_by_dead_units_alone_is_an_artefact_of_dead_units():
    v = claims.check_all(world(dead_units_world, dead=DEAD.get)).set_index("claim").verdict
    assert v["PE rises with λ up to about 0.005, then falls (all units)"] == "artefact of dead units"
    assert v["PE rises with λ up to about 0.005, then falls (units alive in both networks)"] in (
        "inconclusive", "contradicted")
    assert claims.live_chance(pd.DataFrame({"dead_a": [0, 6, 16], "dead_b": [4, 2, 16]})).tolist()[:2] == [1 / 12,
                                                                                                          1 / 10]


@pytest.mark.parametrize("n_seeds, change, expected", [(20, 0.0, "shown"), (4, 0.0, "inconclusive"),
                                                       (20, 0.05, "contradicted")])
def test_a_claim_of_no_change_is_an_equivalence_test_with_a_margin_from_the_data(n_seeds, change, expected):
    """APC-2 moving by ``change`` from the first lambda to the last: no change is shown with enough seeds and
    inconclusive with too few; a change well beyond the seeds' own spread (the margin) is contradicted."""
    def rule(target, l1, c):  # APC-2 stands 0.17 above its structured null at lambda 0 (mean over C): the
        apc2 = 0.6 + 0.02 * (c - 3) + (change if l1 == L1[-1] else 0.0)  # margin is a tenth of that
        return {"pe": (0.2, 1 / 16, 0.07), "apc1": (0.1, 0.07, 0.08), "apc2": (apc2, 0.4, 0.5)}

    v = claims.apc2_barely_moves_with_l1(world(rule, noise=0.02, seeds=tuple(range(n_seeds))))
    assert v.verdict == expected, (v.finding, v.low, v.high)
    assert v.extra["margin"] == pytest.approx(0.1 * 0.17, abs=0.004)


def test_the_verdict_vocabulary_and_the_statistics_are_stated():
    table = claims.check_all(world(paper_world))
    assert set(table.verdict) <= set(claims.VERDICTS)
    assert (table.low <= table.value).all() and (table.value <= table.high).all()
    assert table.statistic.str.len().gt(10).all() and table.rule.str.len().gt(20).all()
    assert table.rule.str.contains("null|baseline").all()  # every rule names what decided it


def test_representations_are_judged_against_the_strongest_baseline():
    pairs = pd.DataFrame(list(itertools.combinations(SEEDS, 2)), columns=["seed_a", "seed_b"])
    rng = np.random.default_rng(0)
    pairs["cka"] = 0.94 + rng.normal(0, 0.005, len(pairs))
    strong = claims.representations_alike(pairs, {"untrained networks": 0.35, "input PCA": 0.80})
    assert strong.verdict == "shown" and "input PCA" in strong.statistic
    tied = claims.representations_alike(pairs, {"untrained networks": 0.35, "another C": 0.94})
    assert tied.verdict == "inconclusive"
    below = claims.representations_alike(pairs, {"untrained networks": 0.35, "another C": 0.97})
    assert below.verdict == "contradicted"


def test_the_chapters_sentences_use_the_rules():
    paper = world(paper_world)
    assert claims.grad_verdict(paper).endswith("holds for every λ > 0 here.")
    assert "no contrast for λ > 0 to remove" in claims.grad_verdict(world(null_world), n_classes=10)
    assert "agree more, not less" in claims.w1perm_verdict(paper, l1=0.0, n_classes=10)
    assert "cannot tell the two apart" in claims.w1perm_verdict(world(null_world), l1=0.0, n_classes=10)
    assert "boost predicted for λ > 0 is not seen" in claims.dead_pixels_verdict(paper, n_classes=10)
    with pytest.raises(UnderspecError, match="compare table"):
        claims.pe_rises_with_c(pd.DataFrame({"metric": ["pe"], "mean": [0.1]}))


def cka_world(level: float, *, image_noise: float, seeds=SEEDS, n_blocks: int = 8, seed: int = 0) -> pd.DataFrame:
    """A ``cka_table``-shaped table: CKA ``level`` plus seed effects and pair noise in every configuration, the
    baselines at 0.30 (untrained) and 0.60 (input PCA); each block of images left out moves every value of the
    block by one shared amount of sd ``image_noise`` (some images make every pair look more alike)."""
    rng = np.random.default_rng(seed)
    effect = {s: rng.normal(0, 0.005) for s in seeds}
    shift = rng.normal(0, image_noise, n_blocks)
    rows = []
    for l1, c, (a, b) in itertools.product(L1[:3], (5, 10), itertools.combinations(seeds, 2)):
        value = level + effect[a] + effect[b] + rng.normal(0, 0.005)
        for block in range(-1, n_blocks):
            move = 0.0 if block < 0 else shift[block] - shift.mean()
            rows.append({"l1": l1, "n_classes": c, "seed_a": a, "seed_b": b, "block": block, "cka": value + move,
                         "untrained": 0.30, "input_pca": 0.60})
    return pd.DataFrame(rows)


def test_representations_are_judged_in_every_configuration_with_seeds_and_images_resampled():
    """CKA well above the stronger baseline (input PCA, 0.60) in every configuration is shown, below it
    contradicted; at the baseline inconclusive. Images that move every pair together widen the interval beyond
    what the seeds alone give: with that noise, a small excess is no longer shown."""
    shown = claims.representations_alike_grid(cka_world(0.70, image_noise=0.002))
    assert shown.verdict == "shown" and set(shown.extra["stronger"].values()) == {"input_pca"}
    assert set(shown.extra["cells"].values()) == {"shown"}
    assert claims.representations_alike_grid(cka_world(0.50, image_noise=0.002)).verdict == "contradicted"
    assert claims.representations_alike_grid(cka_world(0.60, image_noise=0.002)).verdict in ("inconclusive",)
    quiet = claims.representations_alike_grid(cka_world(0.61, image_noise=0.0005))
    noisy = claims.representations_alike_grid(cka_world(0.61, image_noise=0.05))
    assert noisy.high - noisy.low > 3 * (quiet.high - quiet.low)
    assert quiet.verdict == "shown" and noisy.verdict == "inconclusive"
    table = claims.check_all(world(paper_world), cka=cka_world(0.70, image_noise=0.002))
    assert table.set_index("claim").verdict["Representations look alike across seeds"] == "shown"


def test_a_pe_that_only_falls_with_lambda_is_contradicted_and_its_statistic_names_the_lambdas_it_subtracts():
    """The top at lambda = 0: the statistic is the top minus the next lambda, and says so (not "minus at 0")."""
    def falling(target, l1, c):
        return {"pe": (0.3 - 20.0 * l1, 1 / 16, 0.07), "apc1": (0.1, 0.07, 0.08), "apc2": (0.6, 0.4, 0.5)}
    v = claims.pe_peaks_in_l1(world(falling))
    assert v.extra["peak"] == 0.0 and v.verdict == "contradicted"
    assert "at the top λ (0) minus at λ = 0.001" in v.statistic
    assert v.value > 0 and v.low > 0

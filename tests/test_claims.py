"""The claim rules, on synthetic worlds where the truth is known: seed-pair tables shaped like compare's,
with seed effects and pair noise, so every rule resamples seeds exactly as it does on real data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from underspec import UnderspecError
from underspec.studies import claims

SEEDS = (0, 42, 1337, 3213, 9999, 5783, 1023)
L1 = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)
CLASSES = tuple(range(2, 11))
METRICS = ("pe", "apc1", "apc2", "apc2_w1perm", "apc1_data")


def world(rule, *, noise: float = 0.004, seed: int = 0) -> pd.DataFrame:
    """A compare-shaped table: for every configuration, seed pair and target, each metric is
    rule(target, l1, c)[metric] = (mean, untrained null, structured null) plus the two seeds' effects and
    pair noise."""
    rng = np.random.default_rng(seed)
    effect = {(s, m): rng.normal(0, noise) for s in SEEDS for m in METRICS}
    rows = []
    for l1, c, (a, b), target in itertools.product(L1, CLASSES, itertools.combinations(SEEDS, 2),
                                                   ("params", "grads")):
        row = {"l1": l1, "n_classes": c, "seed_a": a, "seed_b": b, "target": target}
        for metric, (mean, null, structured) in rule(target, l1, c).items():
            row[metric] = mean + effect[a, metric] + effect[b, metric] + rng.normal(0, noise)
            row[f"{metric}_null"], row[f"{metric}_null_structured"] = null, structured
        rows.append(row)
    return pd.DataFrame(rows)


def chance_apc2(c):
    return 1.0 - 0.05 * (c - 2)  # falls with C, as the untrained null of a matching over C entries does


def paper_world(target, l1, c):
    """Everything the paper says, for real: PE rises with C while a C-free similarity (APC-1) rises too, PE
    peaks clearly at lambda 0.005 and is 0.48 at (0.001, 9), APC-2 uses less of its headroom as C grows and
    ignores lambda, the gradients' APC-1 stands above its null only at lambda 0."""
    bump = {0.0: 0.0, 0.001: 0.03, 0.0025: 0.06, 0.005: 0.10, 0.01: 0.06, 0.05: -0.05}[l1]
    pe = 0.48 if (l1, c) == (0.001, 9) else 0.10 + 0.03 * (c - 3) + bump
    headroom = 0.5 - 0.04 * (c - 3)
    apc2 = chance_apc2(c) + headroom * (1 - chance_apc2(c))
    if target == "grads":
        return {"pe": (0.1, 1 / 16, 0.07), "apc1": (0.30 + (0.2 if l1 == 0 else 0.0), 0.07, 0.30),
                "apc2": (apc2, chance_apc2(c), chance_apc2(c))}
    return {"pe": (pe, 1 / 16, 0.07), "apc1": (0.10 + 0.01 * (c - 3), 0.068, 0.08),
            "apc2": (apc2, chance_apc2(c), chance_apc2(c)), "apc2_w1perm": (0.4, 0.27, 0.27),
            "apc1_data": (0.10 + 0.01 * (c - 3), 0.068, 0.08)}


def null_world(target, l1, c):
    """Every metric equals its null, and the nulls have trends (PE's rises with C, APC-2's falls; the PE
    null even sits at 0.48 in the paper's cell)."""
    pe_null = 0.48 if (l1, c) == (0.001, 9) else 0.06 + 0.03 * (c - 2)
    return {"pe": (pe_null, pe_null, pe_null), "apc1": (0.1, 0.068, 0.1),
            "apc2": (chance_apc2(c), chance_apc2(c), chance_apc2(c)), "apc2_w1perm": (0.27, 0.27, 0.27),
            "apc1_data": (0.1, 0.068, 0.1)}


def plateau_world(target, l1, c):
    """PE rises with lambda and falls at the end, but its top three values differ by less than their
    intervals (0.269, 0.270, 0.274, as the issue found on mnist-5k)."""
    pe = {0.0: 0.10, 0.001: 0.15, 0.0025: 0.269, 0.005: 0.270, 0.01: 0.274, 0.05: 0.17}[l1]
    return {**null_world(target, l1, c), "pe": (pe, 1 / 16, 0.07)}


@pytest.fixture(scope="module")
def verdicts():
    return {name: claims.check_all(world(rule, noise=noise)).set_index("claim").verdict
            for name, rule, noise in (("paper", paper_world, 0.004), ("null", null_world, 0.004),
                                      ("plateau", plateau_world, 0.02))}


def test_a_world_that_behaves_as_the_paper_says_confirms_every_claim(verdicts):
    assert (verdicts["paper"] == "confirmed").all(), verdicts["paper"].to_dict()


def test_a_metric_equal_to_its_null_is_never_a_real_effect_whatever_its_trend(verdicts):
    v = verdicts["null"]
    assert not (v == "confirmed").any(), v.to_dict()
    assert v["PE rises with C"] == "artefact of the chance level"  # PE rises, as its null does
    assert v["APC-2 falls with C"] == "artefact of the chance level"
    assert v.filter(like="highest PE").item() == "artefact of the chance level"  # 0.48, but the null's


def test_a_peak_among_values_closer_than_their_intervals_is_a_plateau(verdicts):
    assert verdicts["plateau"].filter(like="PE rises with λ").item() == "plateau: peak not identifiable"
    v = claims.pe_peaks_in_l1(world(plateau_world, noise=0.02))
    assert set(v.extra["tied"]) >= {0.0025, 0.005} - {v.extra["peak"]}


def test_the_verdict_vocabulary_and_the_statistics_are_stated():
    table = claims.check_all(world(paper_world))
    assert set(table.verdict) <= set(claims.VERDICTS)
    assert (table.low <= table.value).all() and (table.value <= table.high).all()
    assert table.statistic.str.len().gt(10).all() and table.rule.str.len().gt(20).all()


def test_representations_are_judged_against_the_strongest_baseline():
    pairs = pd.DataFrame(list(itertools.combinations(SEEDS, 2)), columns=["seed_a", "seed_b"])
    rng = np.random.default_rng(0)
    pairs["cka"] = 0.94 + rng.normal(0, 0.005, len(pairs))
    strong = claims.representations_alike(pairs, {"untrained networks": 0.35, "input PCA": 0.80})
    assert strong.verdict == "confirmed" and "input PCA" in strong.statistic
    weak = claims.representations_alike(pairs, {"untrained networks": 0.35, "another C": 0.94})
    assert weak.verdict == "not confirmed"


def test_the_chapters_sentences_use_the_rules():
    paper = world(paper_world)
    assert claims.grad_verdict(paper).endswith("holds for every λ > 0 here.")
    assert "no contrast for λ > 0 to remove" in claims.grad_verdict(world(null_world), n_classes=10)
    assert "agree more, not less" in claims.w1perm_verdict(paper, l1=0.0, n_classes=10)
    assert "cannot tell the two apart" in claims.w1perm_verdict(world(null_world), l1=0.0, n_classes=10)
    assert "boost predicted for λ > 0 is not seen" in claims.dead_pixels_verdict(paper, n_classes=10)
    with pytest.raises(UnderspecError, match="compare table"):
        claims.pe_rises_with_c(pd.DataFrame({"metric": ["pe"], "mean": [0.1]}))

"""The rules that mark each of the paper's claims confirmed, not confirmed or artefact."""

import itertools

import pandas as pd
import pytest

from underspec import UnderspecError
from underspec.report import claims

L1 = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)
CLASSES = tuple(range(2, 11))


def summary(rule) -> pd.DataFrame:
    """A summarize()-shaped table whose metric values come from rule(metric, target, l1, c) -> (mean, null)."""
    rows = []
    for metric, target, l1, c in itertools.product(("pe", "apc1", "apc2"), ("params", "grads"), L1, CLASSES):
        mean, null = rule(metric, target, l1, c)
        rows.append({"target": target, "l1": l1, "n_classes": c, "metric": metric, "n": 21, "mean": mean,
                     "std": 0.01, "ci_low": mean - 0.01, "ci_high": mean + 0.01, "null": null})
    return pd.DataFrame(rows)


def paper_world(metric, target, l1, c):
    """What the paper reports: PE rises with C, rises with lambda up to 0.005 then falls, and is highest (0.48)
    at lambda 0.001 / C 9; APC-2 falls with C faster than chance and ignores lambda; gradient APC-1 collapses
    for lambda > 0."""
    if metric == "pe":
        by_l1 = {0.0: 0.0, 0.001: 0.03, 0.0025: 0.05, 0.005: 0.06, 0.01: 0.03, 0.05: -0.05}[l1]
        return (0.48 if (l1, c) == (0.001, 9) else 0.1 + 0.03 * c + by_l1), 1 / 16
    if metric == "apc2":
        return 1.0 - 0.06 * c, 1.0 - 0.045 * c
    if target == "grads":
        return (0.6 if l1 == 0 else 0.08), 0.07
    return 0.3, 0.07


def artefact_world(metric, target, l1, c):
    """APC-2 falls with C exactly as its chance level does; nothing else changes."""
    if metric == "apc2":
        return 1.1 - 0.05 * c, 1.0 - 0.05 * c
    return 0.3, 0.07


def test_a_world_that_behaves_as_the_paper_says_confirms_the_claims():
    v = claims.check_all(summary(paper_world)).set_index("claim").verdict
    assert v["PE rises with C"] == "confirmed"
    assert v.filter(like="PE rises with λ").item() == "confirmed"
    assert v.filter(like="highest PE").item() == "confirmed"
    assert v["APC-2 falls with C"] == "confirmed"
    assert v["Regularisation barely moves APC-2"] == "confirmed"
    assert v.filter(like="APC-1 of the gradients").item() == "confirmed"


def test_a_trend_that_chance_shows_too_is_an_artefact():
    v = claims.check_all(summary(artefact_world)).set_index("claim").verdict
    assert v["APC-2 falls with C"] == "artefact"
    assert v["PE rises with C"] == "not confirmed"
    assert v.filter(like="APC-1 of the gradients").item() == "not confirmed"


def test_representations_need_high_cka_above_the_untrained_level():
    assert claims.representations_alike(0.94, 0.35).verdict == "confirmed"
    assert claims.representations_alike(0.94, 0.9).verdict == "not confirmed"
    assert claims.representations_alike(0.5, 0.1).verdict == "not confirmed"


def grads_above_chance_below(threshold):
    """A paper world whose gradient APC-1 stays 0.3 above chance (0.07) for 0 < lambda < threshold."""
    def rule(metric, target, l1, c):
        if metric == "apc1" and target == "grads" and 0 < l1 < threshold:
            return 0.37, 0.07
        return paper_world(metric, target, l1, c)
    return rule


def test_the_gradient_sentence_follows_the_gradient_claims_rule():
    # the paper's world: every lambda > 0 at chance (0.08 against 0.07), lambda = 0 above it
    table = summary(paper_world)
    assert claims.grad_apc1_collapses(table).verdict == "confirmed"
    assert claims.grad_verdict(table) == (
        "Averaged over C ≥ 3, the study chapter's rule: within 0.05 of chance: λ = 0.001, 0.0025, 0.005, "
        "0.01, 0.05; clearly above it: λ = none. So the paper's observation holds for every λ > 0 here.")
    # only the larger lambdas collapse: the claim fails, and the sentence says where it holds
    table = summary(grads_above_chance_below(0.005))
    assert claims.grad_apc1_collapses(table).verdict == "not confirmed"
    sentence = claims.grad_verdict(table)
    assert "within 0.05 of chance: λ = 0.005, 0.01, 0.05; clearly above it: λ = 0.001, 0.0025." in sentence
    assert sentence.endswith("holds only from the larger lambdas on.")
    # one class count differs from the average: the sentence says both, and concludes by the study's rule
    def c10_differs(metric, target, l1, c):
        if (metric, target, l1, c) == ("apc1", "grads", 0.005, 10):
            return 0.3, 0.07  # mean over C = 3..10: (7 x 0.08 + 0.3) / 8 = 0.1075, at chance
        return grads_above_chance_below(0.005)(metric, target, l1, c)
    sentence = claims.grad_verdict(summary(c10_differs), n_classes=10)
    assert sentence.startswith("At C = 10, within 0.05 of chance: λ = 0.01, 0.05; clearly above it: λ = 0.001, "
                               "0.0025, 0.005. Averaged over C ≥ 3, the study chapter's rule: within 0.05 of "
                               "chance: λ = 0.005, 0.01, 0.05; clearly above it: λ = 0.001, 0.0025.")
    assert claims.grad_apc1_collapses(summary(c10_differs)).verdict == "not confirmed"
    with pytest.raises(UnderspecError, match="no APC-1 of the gradients at C = 2"):
        claims.grad_verdict(table, n_classes=2)
    # no lambda collapses
    table = summary(grads_above_chance_below(1.0))
    assert claims.grad_apc1_collapses(table).verdict == "not confirmed"
    assert claims.grad_verdict(table).endswith("does not hold here: no λ > 0 brings it down to chance.")
    # every lambda at chance, lambda = 0 too: not the paper's contrast
    table = summary(lambda m, t, l1, c: (0.08, 0.07) if (m, t) == ("apc1", "grads") else paper_world(m, t, l1, c))
    assert claims.grad_apc1_collapses(table).verdict == "not confirmed"
    assert "but so is λ = 0" in claims.grad_verdict(table)


def rows(values, l1=0.0, c=10, target="params"):
    """summarize()-shaped rows at one configuration from {metric: (mean, null)}."""
    return pd.DataFrame([{"target": target, "l1": l1, "n_classes": c, "metric": m, "n": 21, "mean": mean,
                          "std": 0.01, "ci_low": mean - 0.01, "ci_high": mean + 0.01, "null": null}
                         for m, (mean, null) in values.items()])


def test_w1perm_sentence_compares_the_distances_above_chance():
    # APC-2 0.6 (chance 0.5) with its own matching, 0.4 (chance 0.1) under the W1 matching
    table = pd.concat([rows({"apc2": (0.6, 0.5), "apc2_w1perm": (0.4, 0.1)}),
                       rows({"apc2": (0.9, 0.9), "apc2_w1perm": (0.9, 0.9)}, l1=0.01)])
    assert claims.w1perm_verdict(table, l1=0.0, n_classes=10) == (
        "The raw number is lower under the one permutation, but it stands 0.300 above its chance level against "
        "0.100 for the independent matching: the second layers agree more, not less, once they are matched the "
        "way the symmetry says; the independent matching mostly measures its own freedom.")
    table = rows({"apc2": (0.8, 0.5), "apc2_w1perm": (0.3, 0.1)})
    sentence = claims.w1perm_verdict(table, l1=0.0, n_classes=10)
    assert "stands 0.200 above its chance level against 0.300" in sentence
    assert sentence.endswith("the independent matching finds more agreement than chance explains here.")
    with pytest.raises(UnderspecError, match="no 'apc2' for target 'params' at λ = 0, C = 5"):
        claims.w1perm_verdict(table, l1=0.0, n_classes=5)


def test_dead_pixel_sentence_reads_the_gap_per_lambda():
    # APC-1 minus APC-1 on data pixels: -0.02 at lambda 0, +0.005 at 0.01, +0.001 at 0.05 (C = 10); C = 5 ignored
    table = pd.concat([rows({"apc1": (0.30, 0.1), "apc1_data": (0.32, 0.1)}, l1=0.0),
                       rows({"apc1": (0.305, 0.1), "apc1_data": (0.30, 0.1)}, l1=0.01),
                       rows({"apc1": (0.301, 0.1), "apc1_data": (0.30, 0.1)}, l1=0.05),
                       rows({"apc1": (0.9, 0.1), "apc1_data": (0.1, 0.1)}, l1=0.05, c=5)])
    sentence = claims.dead_pixels_verdict(table, n_classes=10)
    assert sentence.startswith("Over the lambdas at C = 10, APC-1 on all pixels minus APC-1 on data pixels ranges "
                               "from -0.020 to +0.005 (at λ = 0 and λ = 0.01). The dead pixels lower APC-1 at λ = 0")
    assert sentence.endswith("the mechanical boost predicted for λ > 0 is not seen here.")
    moved = claims.dead_pixels_verdict(table, n_classes=5)
    assert "from +0.800 to +0.800" in moved and moved.endswith("The dead pixels do move APC-1, in the direction "
                                                               "shown in the table below.")

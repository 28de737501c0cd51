"""The rules that mark each of the paper's claims confirmed, not confirmed or artefact."""

import itertools

import pandas as pd

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

"""The chapter "How many seeds?" as package code: a tiny SeedStudy end to end (its tables, verdicts and
sentences), and the pieces with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from underspec.studies import seed_sentences as ss
from underspec.studies import seed_verdicts as sv
from underspec.studies.evidence import VERDICTS
from underspec.studies.seeds import extra_seeds, laws_row, null_values, seeds_study


def test_extra_seeds_keep_the_given_ones_first():
    assert extra_seeds((0, 42, 1337), 6) == (0, 42, 1337, 1, 2, 3)
    assert extra_seeds((3, 1), 2) == (3, 1) and extra_seeds((5,), 3) == (5, 0, 1)


def test_null_values_shuffle_each_image_across_the_seeds():
    values = torch.arange(12.0).reshape(3, 4)
    shuffled = null_values(values)
    assert torch.equal(shuffled.sort(0).values, values) and not torch.equal(shuffled, values)


def test_laws_row_on_simulated_seeds():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (400,), generator=g)
    logits = torch.randn(6, 400, 3, generator=g, dtype=torch.float64)
    row = laws_row(logits, labels)
    pred = logits.argmax(-1)
    assert row["n_seeds"] == 6 and row["error"] == pytest.approx(float((pred != labels).double().mean()))
    pairs = [float((pred[i] != pred[j]).double().mean()) for i in range(6) for j in range(i + 1, 6)]
    assert row["disagreement"] == pytest.approx(np.mean(pairs))
    # random logits: two seeds disagree as often as they err (both about 2/3)
    assert row["gap_low"] < 0 < row["gap_high"] and row["gap_low"] <= row["gap"] <= row["gap_high"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return seeds_study("mnist-5k", [0, 42, 1337], [0.0, 0.01], [5, 10], 2, 500, 200, "cpu",
                       str(tmp_path_factory.mktemp("runs")))


@pytest.mark.slow
def test_a_tiny_seed_study_gives_every_table_verdict_and_sentence(study):
    assert len(study.specs["many"].grid.seeds) == 6 and study.specs["order only"].grid.init_seed == 0
    curves = study.curves()
    assert set(curves.kind) == {"two references", "held-out"} and {"null", "low", "high"} <= set(curves)
    assert curves[curves.kind == "two references"].m.max() == 3 and curves[curves.kind == "held-out"].m.max() == 5
    sources = study.sources()
    both = sources[sources.source == "both (the paper)"].iloc[0]
    assert both.minus_both == 0 and list(sources.source)[1:] == ["order only", "init only", "one-ulp twin"]
    replicates = study.setting_replicates()
    assert len(replicates) == 2 * 2 * 4  # settings x summaries
    shares = sv.separation_shares(replicates, 3)
    assert len(shares) == 12 and ((shares.share >= 0) & (shares.share <= 1)).all()
    pairs, moved = study.kernels()
    assert set(pairs.record) == {"init", "final"} and (pairs.alignment.abs() <= 1 + 1e-9).all()
    assert (moved.movement > 0).all() and (moved.distance > 0).all()
    estimates = sv.kernel_estimates(pairs)
    assert len(estimates) == 5 * 2 * 2  # widths x kernels x records
    surrogates = study.surrogates()
    assert set(surrogates.layer) == {1, 2, 3} and (surrogates.groupby(["seed", "layer"]).k.max() == 64).all()
    verdicts = sv.chapter_verdicts(study, None)
    assert set(verdicts.verdict) <= set(VERDICTS) and len(verdicts) >= 7
    for text in (ss.curve_sentence(curves, 3, 0.01), ss.committed_sentence(None, 3, 0.01),
                 ss.separation_sentence(shares), ss.laws_sentence(study.laws(), sources),
                 ss.kernel_sentence(estimates, moved), ss.surrogate_sentence(surrogates),
                 ss.regimes_sentence(study, None)):
        assert isinstance(text, str) and "nan" not in text.lower()
    assert sv.outputs_table(study.outputs_compared(), "top2").shape == (3, 3)


def test_separation_shares_count_what_the_other_cannot_tell_apart():
    """Three settings: two alike, one far in the planted summary only: it separates 2 of the 3 pairs, all of
    which accuracy (equal everywhere) cannot."""
    rows = []
    for i, shift in enumerate((0.0, 0.0, 1.0)):
        reps = np.r_[shift, shift + np.linspace(-0.01, 0.01, 7), shift + np.linspace(-0.01, 0.01, 10)]
        rows += [{"l1": 0.0, "n_classes": i + 2, "metric": "accuracy", **{f"r{k}": 0.5 for k in range(18)}},
                 {"l1": 0.0, "n_classes": i + 2, "metric": "alpha_hat", **{f"r{k}": v for k, v in enumerate(reps)}}]
    shares = sv.separation_shares(pd.DataFrame(rows), 7)
    row = shares[(shares.metric == "alpha_hat") & (shares.other == "accuracy")].iloc[0]
    assert row.pairs == 3 and row.share == pytest.approx(2 / 3)
    back = shares[(shares.metric == "accuracy") & (shares.other == "alpha_hat")].iloc[0]
    assert back.pairs == 1 and back.share == 0


def synthetic_draws(level, n_seeds: int = 40, n_draws: int = 20, seed: int = 0) -> pd.DataFrame:
    """A held-out curve as ``seeds_curve`` lays it out, alpha-hat = level(M) + noise of 0.001 per draw."""
    from underspec.studies.seeds import curve_ms

    rng = np.random.default_rng(seed)
    rows = []
    for m in curve_ms(n_seeds, 7):  # 1, 2, 4, 7, 8, ..., 32, 39
        for d in range(n_draws):
            drawn = rng.permutation(n_seeds)[:1 + m]
            rows.append({"kind": "held-out", "m": m, "draw": d, "seeds_a": [int(drawn[0])],
                         "seeds_b": sorted(int(s) for s in drawn[1:]), "alpha_hat": level(m) + rng.normal(0, 0.001)})
    return pd.DataFrame(rows)


def test_the_held_out_curve_is_flat_where_it_stops_falling():
    levels = {1: 0.2, 2: 0.1, 4: 0.05, 7: 0.03}
    assert sv.plateau(synthetic_draws(lambda m: levels.get(m, 0.0)), 40) == (8, 16)  # flat from 8, against 16
    assert sv.plateau(synthetic_draws(lambda m: 0.04), 40) == (1, 16)  # flat everywhere
    assert sv.plateau(synthetic_draws(lambda m: 0.3 / m), 40) == (None, 16)  # 8 to 16 still falls by 0.019
    verdicts = sv.seeds_verdicts(synthetic_draws(lambda m: levels.get(m, 0.0)), 40, 7, "simulated")
    assert verdicts[-1].finding.endswith("flat (within 0.01 of M = 16) from M = 8")

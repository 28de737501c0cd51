"""Seed similarity across settings: each column recomputed independently, the nulls' known values, and deep
networks measured by what is defined for them."""

import numpy as np
import pytest
import torch

from underspec import Grid, UnderspecError, compare, linear_cka, train
from underspec.metrics.chance import null_structured
from underspec.metrics.matching import pair_metrics
from underspec.metrics.seed_similarity import seed_similarity, similarity_estimates


@pytest.fixture(scope="module")
def run(small):
    return train(Grid(seeds=(0, 1, 2, 3), epochs=1), small, progress=False, embeddings=True, probe_size=50)


def test_every_column_is_what_its_definition_gives(run, small):
    table = seed_similarity(run, small)
    assert list(zip(table.seed_a, table.seed_b)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    logits = {s: run.member(s, 0.0, 10).final for s in range(4)}
    logits = {s: small.x_test.double() @ p["w1"].double().T + p["b1"].double() for s, p in logits.items()}
    logits = {s: torch.relu(h) @ run.member(s, 0.0, 10).final["w2"].double().T
              + run.member(s, 0.0, 10).final["b2"].double() for s, h in logits.items()}
    for row in table.itertuples():
        a, b = logits[row.seed_a].argmax(1), logits[row.seed_b].argmax(1)
        assert row.disagreement == pytest.approx((a != b).double().mean().item())
        assert row.acc_a == pytest.approx((a == small.y_test).double().mean().item())
        p, q = row.acc_a, row.acc_b
        assert row.disagreement_null == pytest.approx(1 - p * q - (1 - p) * (1 - q) / 9)
        ea, eb = (run.embeddings[run.index(s, 0.0, 10)] for s in (row.seed_a, row.seed_b))
        assert row.cka == pytest.approx(linear_cka(ea[-1], eb[-1]).item(), abs=1e-6)
        assert row.cka_null == pytest.approx(linear_cka(ea[0], eb[0]).item(), abs=1e-6)
    for row in table.itertuples():
        a, b = (run.member(s, 0.0, 10).final for s in (row.seed_a, row.seed_b))
        a, b = ({k: v.double() for k, v in p.items()} for p in (a, b))
        expected = pair_metrics(a, b)["apc1"] - null_structured(a, b, seed=0)["apc1"]
        assert row.apc1_excess == pytest.approx(expected.item(), abs=1e-9)
    weights = compare(run, "all", targets="params", null="structured", alive=False)
    assert (table.apc1_excess - (weights.apc1 - weights.apc1_null_structured)).abs().max() < 0.01  # other mixings


def test_the_estimates_are_the_means_with_seed_level_intervals(run, small):
    table = seed_similarity(run, small)
    est = similarity_estimates(table).set_index("metric")
    accuracy = [run.history[(run.history.seed == s) & (run.history.epoch == 1)].test_acc.item() for s in range(4)]
    assert est.loc["accuracy", "value"] == pytest.approx(np.mean(accuracy))
    for metric in ("disagreement", "cka", "apc1_excess"):
        assert est.loc[metric, "value"] == pytest.approx(table[metric].mean())
        assert est.loc[metric, "low"] < est.loc[metric, "value"] < est.loc[metric, "high"]
    assert est.loc["apc1_excess", "null"] == 0 and est.loc["cka", "null"] == pytest.approx(table.cka_null.mean())


def test_a_deep_network_is_measured_by_what_is_defined_for_it(small):
    deep = train(Grid(seeds=(0, 1, 2), hidden=8, depth=2, epochs=1), small, progress=False, embeddings=True,
                 probe_size=50)
    table = seed_similarity(deep, small)
    assert table.apc1_excess.isna().all()
    assert table.disagreement.between(0, 1).all() and table.cka.notna().all()


def test_a_run_without_embeddings_is_refused(small):
    plain = train(Grid(seeds=(0, 1), epochs=1), small, progress=False, embeddings=False, probe_size=10)
    with pytest.raises(UnderspecError, match="embeddings=True"):
        seed_similarity(plain, small)

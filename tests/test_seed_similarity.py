"""Seed similarity across settings: each column recomputed independently, the nulls' known values, and deep
networks measured by what is defined for them."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from underspec import Grid, compare, linear_cka, train
from underspec.metrics.chance import null_structured
from underspec.metrics.matching import pair_metrics, weight_matching
from underspec.metrics.seed_similarity import seed_similarity, similarity_estimates


@pytest.fixture(scope="module")
def run(small):
    return train(Grid(seeds=(0, 1, 2, 3), epochs=1), small, progress=False, probe_size=10)


def hidden(params, x, layer):
    """Layer ``layer``'s pre-activations, written out: x (N, D) -> (N, H)."""
    h = x.double()
    for k in range(1, layer + 1):
        h = (torch.relu(h) if k > 1 else h) @ params[f"w{k}"].double().T + params[f"b{k}"].double()
    return h


def test_every_column_is_what_its_definition_gives(run, small):
    table = seed_similarity(run, small, probe_size=60)
    assert list(zip(table.seed_a, table.seed_b)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    members = {s: run.member(s, 0.0, 10) for s in range(4)}
    logits = {s: torch.relu(hidden(m.final, small.x_test, 1)) @ m.final["w2"].double().T + m.final["b2"].double()
              for s, m in members.items()}
    probe = small.x_test[:60]
    for row in table.itertuples():
        a, b = logits[row.seed_a].argmax(1), logits[row.seed_b].argmax(1)
        assert row.disagreement == pytest.approx((a != b).double().mean().item())
        assert row.acc_a == pytest.approx((a == small.y_test).double().mean().item())
        p, q = row.acc_a, row.acc_b
        assert row.disagreement_null == pytest.approx(1 - p * q - (1 - p) * (1 - q) / 9)
        ma, mb = members[row.seed_a], members[row.seed_b]
        cka = linear_cka(hidden(ma.final, probe, 1), hidden(mb.final, probe, 1)).item()
        assert row.cka == pytest.approx(cka, abs=1e-9) and row.cka_last == row.cka  # one hidden layer
        assert row.cka_null == pytest.approx(linear_cka(hidden(ma.init, probe, 1), hidden(mb.init, probe, 1)).item(),
                                             abs=1e-9)
    for row in table.itertuples():
        a, b = (run.member(s, 0.0, 10).final for s in (row.seed_a, row.seed_b))
        a, b = ({k: v.double() for k, v in p.items()} for p in (a, b))
        expected = pair_metrics(a, b)["apc1"] - null_structured(a, b, seed=0)["apc1"]
        assert row.apc1_excess == pytest.approx(expected.item(), abs=1e-9)
    weights = compare(run, "all", targets="params", null="structured", alive=False)
    assert (table.apc1_excess - (weights.apc1 - weights.apc1_null_structured)).abs().max() < 0.01  # other mixings


def test_cka_from_the_parameters_equals_cka_of_the_recorded_embeddings(small):
    """The first layer's CKA needs no per-epoch records: on the run's own probe images it is the CKA of its
    recorded embeddings at the last epoch (and at epoch 0 for the null)."""
    recorded = train(Grid(seeds=(0, 1, 2), epochs=2), small, progress=False, embeddings=True, probe_size=40)
    assert recorded.probe_index.tolist() == list(range(40))  # the first test images, all of class mode "first"
    table = seed_similarity(recorded, small, probe_size=40)
    for row in table.itertuples():
        ea, eb = (recorded.embeddings[recorded.index(s, 0.0, 10)] for s in (row.seed_a, row.seed_b))
        assert row.cka == pytest.approx(linear_cka(ea[-1], eb[-1]).item(), abs=1e-5)
        assert row.cka_null == pytest.approx(linear_cka(ea[0], eb[0]).item(), abs=1e-5)


def test_the_estimates_are_the_means_with_seed_level_intervals(run, small):
    table = seed_similarity(run, small)
    est = similarity_estimates(table).set_index("metric")
    accuracy = [run.history[(run.history.seed == s) & (run.history.epoch == 1)].test_acc.item() for s in range(4)]
    assert est.loc["accuracy", "value"] == pytest.approx(np.mean(accuracy))
    for metric in ("disagreement", "cka", "cka_last", "apc1_excess"):
        assert est.loc[metric, "value"] == pytest.approx(table[metric].mean())
        assert est.loc[metric, "low"] < est.loc[metric, "value"] < est.loc[metric, "high"]
    assert est.loc["apc1_excess", "null"] == 0 and est.loc["cka", "null"] == pytest.approx(table.cka_null.mean())


def test_a_deep_network_is_measured_layer_by_layer(small):
    """At depth 2, ``cka_last`` is the CKA of the second hidden layer, and APC-1 (the first layer's weights,
    indexed by pixels) is measured as at depth 1."""
    deep = train(Grid(seeds=(0, 1, 2), hidden=8, depth=2, epochs=1), small, progress=False, probe_size=10)
    table = seed_similarity(deep, small, probe_size=50)
    probe = small.x_test[:50]
    for row in table.itertuples():
        a, b = (deep.member(s, 0.0, 10) for s in (row.seed_a, row.seed_b))
        for column, layer in (("cka", 1), ("cka_last", 2)):
            assert getattr(row, column) == pytest.approx(
                linear_cka(hidden(a.final, probe, layer), hidden(b.final, probe, layer)).item(), abs=1e-9)
            assert getattr(row, f"{column}_null") == pytest.approx(
                linear_cka(hidden(a.init, probe, layer), hidden(b.init, probe, layer)).item(), abs=1e-9)
        first = {k: a.final[k].double() for k in ("w1", "b1", "w2", "b2")}, \
            {k: b.final[k].double() for k in ("w1", "b1", "w2", "b2")}
        expected = pair_metrics(*first)["apc1"] - null_structured(*first, seed=0)["apc1"]
        assert row.apc1_excess == pytest.approx(expected.item(), abs=1e-9)
    assert table.cka.ne(table.cka_last).all() and table.disagreement.between(0, 1).all()


def test_the_barrier_is_the_loss_barrier_after_weight_matching_and_as_trained(mnist5k):
    """``barrier``: the linear path's loss barrier after aligning every hidden layer by weight matching (here
    at depth 2); its null, the barrier as trained. A copy of a network with its units shuffled is the same
    network: its aligned barrier is 0, its unaligned one is not."""
    from underspec.metrics.predictions import linear_path
    from underspec.metrics.symmetry import permute
    from underspec.training.model import permutation_spec

    small = mnist5k.take(2000, 200)  # trained well enough that averaging unaligned units costs loss
    deep = train(Grid(seeds=(0, 1, 2), hidden=16, depth=2, epochs=3), small, progress=False, probe_size=10)
    table = seed_similarity(deep, small, probe_size=80)
    x, y = small.x_test[:80], small.y_test[:80]
    spec = permutation_spec(2)
    for row in table.itertuples():  # the paths in float32 (wide layers), the matching in float64
        a, b = (deep.member(s, 0.0, 10).final for s in (row.seed_a, row.seed_b))
        assert row.barrier_null == pytest.approx(linear_path(a, b, x, y)["loss_barrier"].item(), abs=1e-6)
        aligned = permute(b, weight_matching(a, b, spec=spec), spec)
        assert row.barrier == pytest.approx(linear_path(a, aligned, x, y)["loss_barrier"].item(), abs=1e-6)
    # the same network with its units shuffled: one basin after alignment
    member = deep.member(0, 0.0, 10)
    g = torch.Generator().manual_seed(0)
    shuffled = permute(member.final, {h: torch.randperm(16, generator=g) for h in spec}, spec)
    twin = dataclasses.replace(deep, final={k: torch.stack([member.final[k], shuffled[k]]) for k in member.final},
                               init={k: torch.stack([member.init[k]] * 2) for k in member.init},
                               grid=dataclasses.replace(deep.grid, seeds=(0, 1)))
    pair = seed_similarity(twin, small, probe_size=80).iloc[0]
    assert pair.barrier == pytest.approx(0, abs=1e-9) and pair.barrier_null > 0.01 and pair.disagreement == 0


def test_accuracy_gets_an_interval_over_seeds_and_test_images_from_each_seeds_answers(mnist5k):
    """``seed_similarity(..., examples=True)`` gives every seed's correctness on every test image (S, T): its
    mean is the accuracy of the table, and ``similarity_estimates`` gives accuracy an interval that resamples
    the images too (wider than the t interval over seeds alone when hard images are hard for every seed)."""
    run = train(Grid(seeds=(0, 1, 2, 3), epochs=2), mnist5k.take(1000, 300), progress=False)
    table, examples = seed_similarity(run, mnist5k.take(1000, 300), probe_size=50, examples=True)
    correct = examples["correct"]
    assert correct.shape == (4, 300) and set(np.unique(correct)) <= {0.0, 1.0}
    per_seed = pd.concat([table[["seed_a", "acc_a"]].set_axis(["seed", "acc"], axis=1),
                          table[["seed_b", "acc_b"]].set_axis(["seed", "acc"], axis=1)]).drop_duplicates("seed")
    assert sorted(correct.mean(1)) == pytest.approx(sorted(per_seed.acc), abs=1e-12)
    both = similarity_estimates(table, examples=examples, metrics=("accuracy",)).iloc[0]
    alone = similarity_estimates(table, metrics=("accuracy",)).iloc[0]
    assert both.value == pytest.approx(alone.value, abs=1e-12) and both.method == "crossed jackknife"
    assert both.high - both.low > alone.high - alone.low

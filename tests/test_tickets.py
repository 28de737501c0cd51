"""Unit-level tickets on networks where the truth is known, trained by the engine from given weights."""

from __future__ import annotations

import pytest
import torch

import underspec
from underspec import UnderspecError
from underspec.studies.tickets import keep_best, subnetwork, ticket_table, unit_scores
from underspec.training.model import forward, init_params


@pytest.fixture(scope="module")
def small():
    return underspec.load_dataset("mnist-5k").take(300, 100)


def test_the_rewound_ticket_that_keeps_every_unit_is_the_original_run_bit_for_bit(small):
    h = 8
    grid = underspec.Grid(seeds=(0, 42), hidden=h, epochs=2)
    original = underspec.train(grid, small, progress=False)
    scores = unit_scores(original.final, small.x_train[:100], torch.Generator().manual_seed(0))
    for score in scores.values():
        kept = keep_best(score, h)
        assert kept.tolist() == [list(range(h))] * 2  # every unit, in its order
        ticket = subnetwork(original.init, kept, rescale=True)  # the init-scale factors are exactly 1 at k = H
        assert all(torch.equal(ticket[k], original.init[k]) for k in ticket)
        again = underspec.train(grid, small, progress=False, start=ticket)  # through the engine, from given weights
        assert all(torch.equal(again.final[k], original.final[k]) for k in original.final)
        assert again.history.equals(original.history)


def test_kept_units_compute_what_they_computed_in_the_original(small):
    params = {k: v.unsqueeze(0) for k, v in init_params(0, 10, 12, 784).items()}  # one member
    params["w2"][0, :, [2, 5, 7]] = 0.0  # three units whose output goes nowhere
    scores = unit_scores(params, small.x_train[:50], torch.Generator().manual_seed(0))
    kept = keep_best(scores["|v|·||u||"], 9)
    assert set(kept[0].tolist()) == set(range(12)) - {2, 5, 7}
    sub = subnetwork(params, kept, rescale=False)
    torch.testing.assert_close(forward(sub, small.x_test[:20]), forward(params, small.x_test[:20]), rtol=0, atol=1e-6)
    scaled = subnetwork(params, kept, rescale=True)
    assert scaled["w1"].abs().max() > sub["w1"].abs().max()  # a narrower fresh network is drawn wider
    with pytest.raises(UnderspecError, match="number of units to keep"):
        keep_best(scores["||u||"], 13)


def test_ticket_table_has_every_variant(small):
    table = ticket_table(small, [0, 42, 1337], hidden=8, ks=[2, 4], epochs=1, n_score=50)
    assert set(table.variant) == {"original", "fine-tune", "rewind", "rewind, kept scale", "scratch-E", "scratch-B"}
    assert len(table[table.variant == "original"]) == 3
    assert len(table[(table.k == 2) & (table.variant == "rewind")]) == 4 * 3  # every score, every seed
    b = table[table.variant == "scratch-B"]
    assert b[b.k == 2].epochs.min() > b[b.k == 4].epochs.max() and table.test_acc.between(0, 1).all()

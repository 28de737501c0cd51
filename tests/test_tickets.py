"""Training from given weights, and unit-level tickets on networks where the truth is known."""

from __future__ import annotations

import pytest
import torch

import underspec
from underspec import UnderspecError
from underspec.studies.retrain import stacked, train_from
from underspec.studies.tickets import keep_best, subnetwork, ticket_table, unit_scores
from underspec.training.model import forward, init_params


@pytest.fixture(scope="module")
def small():
    return underspec.load_dataset("mnist-5k").take(300, 100)


def test_training_from_given_weights_is_the_papers_loop_to_rounding(small):
    loops = [underspec.train_paper_loop(s, l1, 10, small, hidden=8, epochs=2) for s, l1 in ((0, 0.01), (42, 0.0))]
    final, history = train_from(stacked([m.init for m in loops]), [0, 42], [0.01, 0.0], small, epochs=2)
    for i, loop in enumerate(loops):
        for k in loop.final:
            torch.testing.assert_close(final[k][i], loop.final[k], rtol=0, atol=1e-6)
        assert history[history.member == i].test_acc.iloc[-1] == pytest.approx(loop.history.test_acc.iloc[-1], abs=0.011)
    with pytest.raises(UnderspecError, match="one seed per member"):
        train_from(stacked([m.init for m in loops]), [0], 0.0, small, epochs=1)
    with pytest.raises(UnderspecError, match="leading member axis"):
        train_from(loops[0].init, [0], 0.0, small, epochs=1)


def test_the_rewound_ticket_that_keeps_every_unit_is_the_original_run_bit_for_bit(small):
    h, seeds = 8, [0, 42]
    init = stacked([init_params(s, 10, h, 784) for s in seeds])
    original, history = train_from(init, seeds, 0.0, small, epochs=2)
    scores = unit_scores(original, small.x_train[:100], torch.Generator().manual_seed(0))
    for score in scores.values():
        kept = keep_best(score, h)
        assert kept.tolist() == [list(range(h))] * 2  # every unit, in its order
        ticket = subnetwork(init, kept, rescale=True)  # the init-scale factors are exactly 1 at k = H
        assert all(torch.equal(ticket[k], init[k]) for k in init)
        final, again = train_from(ticket, seeds, 0.0, small, epochs=2)
        assert all(torch.equal(final[k], original[k]) for k in original)
        assert again.equals(history)


def test_kept_units_compute_what_they_computed_in_the_original(small):
    params = stacked([init_params(0, 10, 12, 784)])
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

"""Predictions: churn between seeds, calibration, ensembles, and the linear path (barrier) between two networks."""

import pytest
import torch
import torch.nn.functional as F

from underspec import (Grid, UnderspecError, accuracy, align_units, barrier, disagreement, ensemble_accuracy,
                       expected_calibration_error, forward, linear_path, permute_hidden, train)
from underspec.metrics.predictions import barriers


@pytest.fixture(scope="module")
def data(mnist5k):
    return mnist5k.take(4000, 200)


@pytest.fixture(scope="module")
def run(data):
    """Three seeds, two lambdas, 3 epochs on 4,000 digits (test loss about 1.5: far enough from init for a
    barrier)."""
    return train(Grid(seeds=(0, 42, 7), l1=(0.0, 0.01), epochs=3), data, progress=False)


@pytest.fixture(scope="module")
def nets(run):
    return run.member(0, 0.0, 10).final, run.member(42, 0.0, 10).final


def onehot_logits(classes, n_classes=3, scale=5.0):
    return scale * F.one_hot(torch.tensor(classes), n_classes).double()


def test_disagreement_counts_the_inputs_predicted_differently():
    a, b = onehot_logits([0, 1, 2, 1]), onehot_logits([0, 2, 2, 0])
    assert disagreement(a, b).item() == 0.5
    stack = torch.stack([a, b, a])
    pairwise = disagreement(stack[:, None], stack[None])  # all pairs of 3 networks
    assert pairwise.tolist() == [[0, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0]]


def test_expected_calibration_error_on_known_confidences():
    # two classes, confidence 0.9 on all four inputs, three right: |0.75 - 0.9| = 0.15
    logit = torch.log(torch.tensor(9.0)).item()
    logits = torch.tensor([[logit, 0.0]] * 4, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1])
    assert expected_calibration_error(logits, labels).item() == pytest.approx(0.15)
    # add two inputs at confidence 0.6, both right (another bin): (4 * 0.15 + 2 * 0.4) / 6
    logits = torch.cat([logits, torch.tensor([[0.0, torch.log(torch.tensor(1.5)).item()]] * 2, dtype=torch.float64)])
    labels = torch.cat([labels, torch.tensor([1, 1])])
    assert expected_calibration_error(logits, labels).item() == pytest.approx((4 * 0.15 + 2 * 0.4) / 6)
    assert expected_calibration_error(logits, labels, n_bins=1).item() == pytest.approx(abs(5 / 6 - 4.8 / 6))


def test_ensemble_averages_probabilities():
    labels = torch.tensor([0, 1])
    a = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64).log()  # right, then wrong but unsure
    b = torch.tensor([[0.4, 0.6], [0.1, 0.9]], dtype=torch.float64).log()  # wrong but unsure, then right
    c = torch.tensor([[0.05, 0.95], [0.95, 0.05]], dtype=torch.float64).log()  # confidently wrong twice
    assert accuracy(a, labels).item() == 0.5 and accuracy(b, labels).item() == 0.5
    assert ensemble_accuracy(torch.stack([a, b]), labels).item() == 1.0  # (0.65, 0.35) and (0.35, 0.65)
    assert ensemble_accuracy(torch.stack([a, c]), labels).item() == 0.0
    assert ensemble_accuracy(torch.stack([a, a, c]), labels).item() == 0.5
    assert ensemble_accuracy(torch.stack([a, b, c]).unsqueeze(0), labels, dim=1).tolist() == [0.0]  # 0.45 right


def test_barrier_of_simple_curves():
    assert barrier(torch.tensor([1.0, 2.0, 1.0])).item() == 1.0
    assert barrier(torch.tensor([1.0, 1.5, 2.0])).item() == 0.0  # on the line
    assert barrier(torch.tensor([0.9, 0.5, 0.9]), higher_is_better=True).item() == pytest.approx(0.4)


@pytest.mark.parametrize("method", ["weights", "activations"])
def test_barrier_to_a_permuted_copy_vanishes_after_alignment(nets, data, method):
    a = nets[0]
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    b = permute_hidden(a, perm)
    x, y = data.x_test, data.y_test
    before = linear_path(a, b, x, y)
    assert before["loss_barrier"].item() > 0.05  # averaging mismatched units hurts
    found = align_units(a, b, method=method, x=x)
    assert torch.equal(found, perm.argsort())
    after = linear_path(a, permute_hidden(b, found), x, y)
    assert after["loss_barrier"].item() == pytest.approx(0.0, abs=1e-6)
    assert after["acc_barrier"].item() == pytest.approx(0.0, abs=1e-9)


def test_linear_path_ends_at_the_two_networks(nets, data):
    a, b = nets
    x, y = data.x_test, data.y_test
    path = linear_path(a, b, x, y, n_points=5)
    assert path["t"].tolist() == [0, 0.25, 0.5, 0.75, 1]
    for end, net in ((0, a), (-1, b)):
        logits = forward(net, x).double()
        assert path["loss"][end].item() == pytest.approx(F.cross_entropy(logits, y).item(), abs=1e-6)
        assert path["acc"][end].item() == accuracy(logits, y).item()
    both = linear_path({k: torch.stack([a[k], a[k]]) for k in a}, {k: torch.stack([b[k], a[k]]) for k in b}, x, y)
    assert both["loss"].shape == (2, 11) and both["loss_barrier"][1].item() == pytest.approx(0.0, abs=1e-6)
    aligned = linear_path(a, permute_hidden(b, align_units(a, b)), x, y, n_points=5)
    assert aligned["loss_barrier"].item() < path["loss_barrier"].item()  # alignment lowers the barrier (here)


def test_bad_input_is_refused(nets):
    logits = onehot_logits([0, 1, 2])
    with pytest.raises(UnderspecError, match="class indices 0..2"):
        accuracy(logits, torch.tensor([0, 1, 7]))
    with pytest.raises(UnderspecError, match=r"labels must be \(N,\)"):
        expected_calibration_error(logits, torch.tensor([0, 1]))
    with pytest.raises(UnderspecError, match="leading"):
        ensemble_accuracy(logits, torch.tensor([0, 1, 2]), dim=0)
    with pytest.raises(UnderspecError, match="needs the inputs x"):
        align_units(*nets, method="activations")
    with pytest.raises(UnderspecError, match="unknown alignment method"):
        align_units(*nets, method="procrustes")


def test_barriers_are_the_linear_paths_of_every_pair_lambda_and_alignment(run, data):
    result = barriers(run, data, 10, n_align=500, n_points=5)
    table = result.table
    assert list(table.columns) == ["l1", "alignment", "seed_a", "seed_b", "loss_barrier", "acc_barrier"]
    assert len(table) == 2 * 3 * 3  # lambdas x alignments x seed pairs
    assert result.t.tolist() == [0, 0.25, 0.5, 0.75, 1]
    x, y = data.x_test, data.y_test
    for row in table.itertuples():  # each row is linear_path on the pair alone, aligned as the row says
        a, b = run.member(row.seed_a, row.l1, 10).final, run.member(row.seed_b, row.l1, 10).final
        if row.alignment != "as trained":
            b = permute_hidden(b, align_units(a, b, method=row.alignment, x=data.x_train[:500]))
        path = linear_path(a, b, x, y, n_points=5)
        assert row.loss_barrier == pytest.approx(path["loss_barrier"].item(), abs=1e-5)
        assert row.acc_barrier == pytest.approx(path["acc_barrier"].item(), abs=1e-9)
    for (l1, name), curve in result.curves.items():
        assert curve["loss"].shape == curve["acc"].shape == (3, 5)
        ends = [F.cross_entropy(forward(run.member(s, l1, 10).final, x).double(), y).item() for s in (0, 0, 42)]
        assert curve["loss"][:, 0].tolist() == pytest.approx(ends, abs=1e-5)  # t = 0: the first network
        # t = 1: the second network, whose function an alignment does not change
        ends = [F.cross_entropy(forward(run.member(s, l1, 10).final, x).double(), y).item() for s in (42, 7, 7)]
        assert curve["loss"][:, -1].tolist() == pytest.approx(ends, abs=1e-5)
    mean = table.groupby("alignment").loss_barrier.mean()
    assert mean["weights"] < mean["as trained"] and mean["activations"] < mean["as trained"]


def test_barriers_pick_lambdas_pairs_and_alignments(run, data):
    result = barriers(run, data, 10, l1=0.01, pairs="reference", alignments=("weights",), n_align=200, n_points=3)
    assert result.table[["l1", "alignment", "seed_a", "seed_b"]].values.tolist() == [
        [0.01, "weights", 0, 42], [0.01, "weights", 0, 7]]
    assert list(result.curves) == [(0.01, "weights")]
    with pytest.raises(UnderspecError, match="unknown alignment"):
        barriers(run, data, 10, alignments=("procrustes",))
    with pytest.raises(UnderspecError, match="no member"):
        barriers(run, data, 5)


def test_barriers_with_image_blocks_are_the_paths_on_the_images_left(run, data):
    """``barriers(..., n_blocks=)``: block -1 rows are the table without blocks; block b is every barrier on the
    test images with block b left out (for intervals over seeds and images)."""
    import pandas as pd

    plain = barriers(run, data, 10, l1=0.0, alignments=("as trained",), n_points=5).table
    blocked = barriers(run, data, 10, l1=0.0, alignments=("as trained",), n_points=5, n_blocks=4).table
    pd.testing.assert_frame_equal(blocked[blocked.block == -1].drop(columns="block").reset_index(drop=True), plain)
    row = blocked[blocked.block == 1].iloc[0]
    kept = torch.arange(len(data.y_test)) * 4 // len(data.y_test) != 1
    a, b = (run.member(int(s), 0.0, 10).final for s in (row.seed_a, row.seed_b))
    path = linear_path(a, b, data.x_test[kept], data.y_test[kept], n_points=5)
    assert row.loss_barrier == pytest.approx(path["loss_barrier"].item(), abs=1e-9)
    assert row.acc_barrier == pytest.approx(path["acc_barrier"].item(), abs=1e-12)
    with pytest.raises(UnderspecError, match="n_blocks"):
        barriers(run, data, 10, n_blocks=1)

"""Spectra, low-rank updates, capacity, weight clustering and shared redundant units, on constructed networks
where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from underspec import UnderspecError
from underspec.metrics.capacity import capacity, margins
from underspec.metrics.clustering import clustering, rotated_rows, spherical_kmeans, unit_directions
from underspec.metrics.lowrank import energy_kept, low_rank, random_low_rank, rank_ks, update_svd
from underspec.metrics.shared_units import matched_overlap, repeated_pair_agreement
from underspec.metrics.spectra import esd, spectra_over_training, spectrum_summary
from underspec.training.model import forward, init_params


def trained_like(h: int = 24, seed: int = 0):
    """An initial and a 'trained' network: the update is a random matrix of full rank."""
    init = init_params(seed, 10, hidden=h, n_inputs=40)
    g = torch.Generator().manual_seed(seed + 1)
    final = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in init.items()}
    return init, final


def test_the_low_rank_projection_at_full_rank_reproduces_the_network():
    init, final = trained_like()
    svd = update_svd(final["w1"], init["w1"])
    rank = int((svd[1] > 1e-9 * svd[1][0]).sum())
    assert rank == 24 and rank_ks(rank) == [1, 2, 4, 8, 16, 24]
    x = torch.rand(100, 40, generator=torch.Generator().manual_seed(2))
    rebuilt = {**final, "w1": low_rank(init["w1"], svd, rank)}
    logits = forward(final, x)
    assert (forward(rebuilt, x) - logits).abs().max() <= 1e-6 * logits.abs().max()  # float32 rounding
    assert energy_kept(svd[1], rank).item() == pytest.approx(1.0)
    # a rank-2 update: rank 2 is everything, rank 1 a known share
    u = torch.tensor([[1.0, 0], [0, 1], [0, 0]], dtype=torch.float64)
    update = u @ torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64)) @ torch.eye(2, 5, dtype=torch.float64)
    s = update_svd(update, torch.zeros_like(update))[1]
    assert energy_kept(s, 1).item() == pytest.approx(0.9) and energy_kept(s, 2).item() == pytest.approx(1.0)
    with pytest.raises(UnderspecError, match="number of directions"):
        low_rank(init["w1"], svd, 0)


def test_random_directions_carry_the_same_energy():
    init, final = trained_like()
    svd = update_svd(final["w1"], init["w1"])
    energy = energy_kept(svd[1], 4)
    random = random_low_rank(final["w1"], init["w1"], 4, energy, torch.Generator().manual_seed(0))
    top = low_rank(init["w1"], svd, 4)
    norm = torch.linalg.vector_norm
    assert norm(random.double() - init["w1"].double()).item() == pytest.approx(norm(top.double() - init["w1"].double()).item(),
                                                                                rel=1e-5)
    assert torch.linalg.matrix_rank(random.double() - init["w1"].double(), rtol=1e-4).item() == 4  # float32 out


def test_esd_and_the_spectrum_over_training():
    init, final = trained_like(h=60)
    eig = esd(final["w1"])
    assert eig.shape == (40,) and torch.allclose(eig, torch.linalg.eigvalsh(final["w1"].double().T @ final["w1"].double()).flip(0))
    summary = spectrum_summary(eig)
    assert np.isnan(summary["alpha"]) and "40 eigenvalues" in summary["alpha_note"]  # too few to fit
    w = torch.randn(100, 300, generator=torch.Generator().manual_seed(0))
    assert np.isfinite(spectrum_summary(esd(w))["alpha"])
    snapshots = torch.stack([w, w, w + 30 * torch.outer(torch.ones(100), torch.ones(300)) / 100])  # an outlier grows
    table = spectra_over_training(snapshots)
    ws = table[table.matrix == "W"].set_index("epoch")
    assert ws.bulk_ratio[1] == 1 and ws.outlier_ratio[1] == 1 and ws.outlier_ratio[2] > 1.5
    assert set(table[table.matrix == "W - W0"].epoch) == {1, 2}
    with pytest.raises(UnderspecError, match="per-epoch snapshots"):
        spectra_over_training(w)


def test_capacity_of_a_network_that_has_not_moved_and_of_one_that_has():
    init, final = trained_like()
    x = torch.rand(200, 40, generator=torch.Generator().manual_seed(3))
    y = forward(final, x).argmax(-1)  # its own predictions: every margin is positive
    same = capacity(init, init, x, forward(init, x).argmax(-1))
    assert same["dist"].item() == 0 and same["unit_dist"].item() == 0 and same["capacity"].item() == 0
    moved = capacity(final, init, x, y)
    assert moved["margin5"].item() > 0 and moved["capacity"].item() > 0
    assert moved["rel_dist"].item() == pytest.approx(moved["dist"].item() / init["w1"].double().norm().item())
    assert moved["spec_u"].item() <= moved["fro_u"].item()
    assert (margins(final, x, y) >= 0).all()
    wrong = capacity(final, init, x, (y + 1) % 10)  # every image misclassified: no margin, no bound
    assert wrong["margin5"].item() < 0 and np.isnan(wrong["capacity"].item())


def test_planted_clusters_are_found_and_the_rotation_null_removes_them():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 30, generator=g)
    w = centres.repeat_interleave(25, 0) + 0.05 * torch.randn(100, 30, generator=g)
    b = torch.zeros(100)
    x = unit_directions(w, b)
    labels, _ = spherical_kmeans(x, 4)
    assert len(set(labels.tolist())) == 4 and all(len(set(labels[i * 25:(i + 1) * 25])) == 1 for i in range(4))
    rows = {r["k"]: r for r in clustering(w, b, ks=(2, 4, 8))}
    assert rows[4]["silhouette"] > 0.8 and rows[4]["angle"] < 10
    null = {r["k"]: r for r in clustering(*rotated_rows(w, b, torch.Generator().manual_seed(1)), ks=(4,))}
    assert null[4]["silhouette"] < rows[4]["silhouette"] - 0.3 and null[4]["angle"] > rows[4]["angle"] + 20
    w[7] = 0.0  # an erased unit has no direction: left out
    assert unit_directions(w, b).shape == (99, 31)


def test_a_permuted_copy_shares_every_redundant_unit_and_chance_is_the_set_sizes():
    h = 10
    drop_a = torch.tensor([True] * 4 + [False] * 6)
    perm = torch.randperm(h, generator=torch.Generator().manual_seed(0))
    drop_b = torch.zeros(h, dtype=torch.bool)
    drop_b[perm[:4]] = True  # b's units perm[i] are a's units i
    overlap, chance = matched_overlap(drop_a, drop_b, perm)
    assert overlap.item() == 1.0 and chance.item() == pytest.approx(0.4)
    overlap, _ = matched_overlap(drop_a, ~drop_b, perm)
    assert overlap.item() == 0.0
    assert np.isnan(matched_overlap(drop_a, torch.zeros(h, dtype=torch.bool), perm)[0].item())
    r_a = torch.zeros(h, h, dtype=torch.float64)
    r_a[0, 1] = r_a[1, 0] = 0.9
    r_b = r_a[perm.argsort()][:, perm.argsort()]  # b's units in their own order: b's unit perm[i] is a's i
    agree, chance = repeated_pair_agreement(r_a, r_b, torch.zeros(h, dtype=torch.bool), perm)
    assert agree.item() == 1.0 and chance.item() == pytest.approx(1 / 45)


def test_the_fast_low_rank_curve_equals_the_networks_built_one_by_one():
    from underspec.metrics.lowrank import low_rank_accuracy

    init, final = trained_like(h=24)
    params = {k: torch.stack([v, v * 1.01]) for k, v in final.items()}
    start = {k: torch.stack([v, v]) for k, v in init.items()}
    x = torch.rand(300, 40, generator=torch.Generator().manual_seed(5))
    y = forward(final, x).argmax(-1)
    curve = low_rank_accuracy(params, start, x, y, [1, 4, 24], torch.Generator().manual_seed(0), random_up_to=24)
    svd = update_svd(params["w1"], start["w1"])
    for j, k in enumerate([1, 4, 24]):
        slow = (forward({**params, "w1": low_rank(start["w1"], svd, k)}, x).argmax(-1) == y).double().mean(-1)
        assert torch.allclose(curve["top"][:, j], slow, atol=1 / 300)  # a tie may round either way
        assert torch.allclose(curve["energy"][:, j], energy_kept(svd[1], k))
    assert curve["top"][0, -1] == 1.0  # k = rank: the trained network, which defines y
    assert curve["random"][0, -1] == 1.0  # k = H random directions span everything: the whole update

"""Representations: the paper's per-seed PCA, the shared aligned view, and (debiased) linear CKA."""

import numpy as np
import pytest
import torch

from underspec import Grid, UnderspecError, aligned_view, linear_cka, pca_trajectories, train
from underspec.metrics.representations import cka_over_training


@pytest.fixture(scope="module")
def embeddings(small):
    """(E+1, P, H) pre-ReLU embeddings of two seeds after 0..3 epochs: (2, 4, 100, 16)."""
    return train(Grid(seeds=(0, 42), epochs=3), small, progress=False).embeddings.double()


def kornblith_cka(x, y, debiased=False):
    """Kornblith et al. (2019)'s reference code (Gram matrices, ``center_gram``), transcribed."""
    def center_gram(gram):
        gram = gram.copy()
        n = gram.shape[0]
        if debiased:
            np.fill_diagonal(gram, 0)
            means = np.sum(gram, 0) / (n - 2)
            means -= np.sum(means) / (2 * (n - 1))
            gram -= means[:, None]
            gram -= means[None, :]
            np.fill_diagonal(gram, 0)
        else:
            means = np.mean(gram, 0)
            means -= np.mean(means) / 2
            gram -= means[:, None]
            gram -= means[None, :]
        return gram
    gx, gy = center_gram(x @ x.T), center_gram(y @ y.T)
    return gx.ravel() @ gy.ravel() / (np.linalg.norm(gx) * np.linalg.norm(gy))


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_is_one_with_itself_and_invariant_to_rotation_and_scale(embeddings, debiased):
    x = embeddings[0, -1]
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert linear_cka(x, x, debiased=debiased).item() == pytest.approx(1.0, abs=1e-12)
    y = embeddings[1, -1]
    base = linear_cka(x, y, debiased=debiased).item()
    assert base < 0.99
    assert linear_cka(x @ q, y, debiased=debiased).item() == pytest.approx(base, abs=1e-12)
    assert linear_cka(x, 3.7 * y, debiased=debiased).item() == pytest.approx(base, abs=1e-12)
    assert base == pytest.approx(kornblith_cka(x.numpy(), y.numpy(), debiased), abs=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("widths", [(64, 48), (8, 64), (64, 8)])
def test_cka_of_layers_wider_than_the_probe_is_the_reference(widths, debiased):
    """With fewer inputs than units, CKA is computed from the (P, P) Gram matrices: the same value."""
    g = torch.Generator().manual_seed(1)
    x, mix, noise = (torch.randn(*shape, generator=g, dtype=torch.float64)
                     for shape in ((20, widths[0]), (widths[0], widths[1]), (20, widths[1])))
    y = x @ mix + 3 * noise  # related to x, not equal
    value = linear_cka(x, y, debiased=debiased).item()
    assert value == pytest.approx(kornblith_cka(x.numpy(), y.numpy(), debiased), abs=1e-12)
    assert 0.05 < value < 0.99


def test_cka_per_epoch_is_batched(embeddings):
    per_epoch = linear_cka(embeddings[0], embeddings[1])
    assert per_epoch.shape == (4,)
    for e in range(4):
        assert per_epoch[e].item() == pytest.approx(linear_cka(embeddings[0, e], embeddings[1, e]).item(), abs=1e-12)
    matrix = linear_cka(embeddings[:, None], embeddings[None])  # all seed pairs: (2, 2, E+1)
    assert matrix.shape == (2, 2, 4) and torch.allclose(matrix[0, 0], torch.ones(4, dtype=torch.float64))


def test_cka_refuses_undefined_and_mismatched_inputs(embeddings):
    with pytest.raises(UnderspecError, match="without variance"):
        linear_cka(torch.zeros(100, 16), embeddings[0, -1])
    with pytest.raises(UnderspecError, match="same inputs"):
        linear_cka(embeddings[0, -1], embeddings[1, -1, :50])


def test_pca_is_fitted_on_the_final_epoch(embeddings):
    proj = pca_trajectories(embeddings, 2)
    assert proj.coords.shape == (2, 4, 100, 2) and proj.components.shape == (2, 2, 16)
    final = proj.coords[:, -1]
    torch.testing.assert_close(final.mean(-2), torch.zeros(2, 2, dtype=torch.float64), rtol=0, atol=1e-12)
    variance = final.var(-2)
    assert (variance[:, 0] >= variance[:, 1]).all()
    centred = embeddings[:, -1] - embeddings[:, -1].mean(-2, keepdim=True)
    eigvals = torch.linalg.eigvalsh(centred.transpose(-1, -2) @ centred / 99)
    torch.testing.assert_close(variance, eigvals.flip(-1)[:, :2], rtol=1e-10, atol=0)  # the top 2 directions
    full = pca_trajectories(embeddings, 16)
    rebuilt = full.coords @ full.components.unsqueeze(1) + full.mean[:, None, None]
    torch.testing.assert_close(rebuilt, embeddings, rtol=0, atol=1e-10)  # every epoch, in the final basis
    assert full.explained.sum(-1).tolist() == pytest.approx([1.0, 1.0])


def test_aligned_view_puts_a_permuted_copy_on_top_of_its_original(embeddings):
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(3))
    stack = torch.stack([embeddings[0], embeddings[0][..., perm], embeddings[1]])
    view = aligned_view(stack, 2)
    assert torch.equal(view.perms[1], perm.argsort()) and torch.equal(view.perms[0], torch.arange(16))
    torch.testing.assert_close(view.projection.coords[1], view.projection.coords[0], rtol=0, atol=1e-12)
    assert view.apc[:2].tolist() == pytest.approx([1.0, 1.0]) and view.apc[2] < 1
    assert view.projection.components.shape == (2, 16)  # one basis for all seeds


def test_bad_shapes_are_refused(embeddings):
    with pytest.raises(UnderspecError, match="n_components must be in 1..16"):
        pca_trajectories(embeddings, 17)
    with pytest.raises(UnderspecError, match=r"\(S, E\+1, P, H\)"):
        aligned_view(embeddings[0])


@pytest.fixture(scope="module")
def run(small):
    """Three seeds, two lambdas, two class counts, 2 epochs, with embeddings of the 100 test images."""
    return train(Grid(seeds=(0, 42, 7), l1=(0.0, 0.01), n_classes=(5, 10), epochs=2), small, progress=False,
                 embeddings=True)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_over_training_is_every_pair_and_epoch_of_a_configuration(run, debiased):
    table = cka_over_training(run, 10, debiased=debiased)
    assert list(table.columns) == ["l1", "seed_a", "seed_b", "epoch", "cka"]
    assert len(table) == 2 * 3 * 3  # lambdas x seed pairs x epochs (init + 2)
    assert list(dict.fromkeys(zip(table.seed_a, table.seed_b))) == [(0, 42), (0, 7), (42, 7)]  # grid order
    assert table.epoch.tolist()[:3] == [0, 1, 2] and table.l1.tolist()[::9] == [0.0, 0.01]
    for row in table.itertuples():  # each value is the reference CKA of the two members' embeddings at that epoch
        a = run.embeddings[run.index(row.seed_a, row.l1, 10), row.epoch].double().numpy()
        b = run.embeddings[run.index(row.seed_b, row.l1, 10), row.epoch].double().numpy()
        assert row.cka == pytest.approx(kornblith_cka(a, b, debiased), abs=1e-10)


def test_cka_over_training_picks_lambdas_and_pairs(run):
    one = cka_over_training(run, 5, l1=0.01, pairs="reference")
    assert set(one.l1) == {0.01} and len(one) == 2 * 3  # the 2 pairs against seed 0, 3 epochs each
    assert sorted(set(zip(one.seed_a, one.seed_b))) == [(0, 7), (0, 42)]
    both = cka_over_training(run, 5)
    torch.testing.assert_close(torch.tensor(one.cka.to_numpy()),
                               torch.tensor(both[(both.l1 == 0.01) & (both.seed_a == 0)].cka.to_numpy()))


def test_cka_over_training_needs_embeddings_and_a_configuration_of_the_grid(small, run):
    bare = train(Grid(seeds=(0, 42), epochs=1), small.take(64, 32), progress=False, embeddings=False)
    with pytest.raises(UnderspecError, match="no embeddings"):
        cka_over_training(bare, 10)
    with pytest.raises(UnderspecError, match="no member"):
        cka_over_training(run, 3)


def test_cka_baselines_are_what_unrelated_representations_share(small):
    import underspec
    from underspec.metrics.representations import cka_baselines

    run = underspec.train(underspec.Grid(seeds=(0, 42, 7), n_classes=(5, 10), epochs=2), small, progress=False,
                          probe_size=60, embeddings=True)
    x = small.x_test[run.probe_index]
    levels = cka_baselines(run, x, 10)
    assert set(levels) == {"untrained networks", "input PCA", "another C (5)"}
    emb = run.stack(0.0, 10, "embeddings")
    other = run.stack(0.0, 5, "embeddings")
    untrained = np.mean([linear_cka(emb[i, 0], emb[j, 0]).item() for i, j in ((0, 1), (0, 2), (1, 2))])
    assert levels["untrained networks"] == pytest.approx(untrained)
    cross = np.mean([linear_cka(emb[i, -1], other[j, -1]).item() for i, j in ((0, 1), (0, 2), (1, 2))])
    assert levels["another C (5)"] == pytest.approx(cross)
    centred = x.double() - x.double().mean(0)
    pcs = torch.linalg.svd(centred, full_matrices=False)[2][:16]
    expected = np.mean([linear_cka(emb[s, -1], centred @ pcs.T).item() for s in range(3)])
    assert levels["input PCA"] == pytest.approx(expected) and 0 < expected < 1


def test_the_cka_table_covers_every_configuration_with_its_baselines_and_image_blocks(small, run):
    """``cka_table``: every pair of every configuration, on every probe image (block -1) and with each block
    left out; its CKA is linear_cka of the first layer's pre-activations; the untrained baseline is the same
    pair before training; a network against itself with its units permuted would score 1 (CKA ignores unit
    order, unlike APC before matching)."""
    from underspec.metrics.representations import cka_table

    table = cka_table(run, small, probe_size=60, n_blocks=4)
    assert list(table.columns) == ["l1", "n_classes", "seed_a", "seed_b", "block", "cka", "untrained", "input_pca"]
    assert len(table) == 2 * 2 * 3 * 5 and sorted(table.block.unique()) == [-1, 0, 1, 2, 3]
    row = table[(table.block == -1) & (table.l1 == 0.01) & (table.n_classes == 5)].iloc[0]
    x = small.x_test[:60].double()
    a, b = (run.member(int(s), 0.01, 5) for s in (row.seed_a, row.seed_b))
    rep = {m: {r: x @ getattr(m, r)["w1"].double().T + getattr(m, r)["b1"].double() for r in ("init", "final")}
           for m in (a, b)}
    assert row.cka == pytest.approx(linear_cka(rep[a]["final"], rep[b]["final"]).item(), abs=1e-12)
    assert row.untrained == pytest.approx(linear_cka(rep[a]["init"], rep[b]["init"]).item(), abs=1e-12)
    shuffled = rep[a]["final"][:, torch.randperm(16)]
    assert linear_cka(rep[a]["final"], shuffled).item() == pytest.approx(1.0, abs=1e-12)
    left = table[(table.block == 0) & (table.l1 == 0.01) & (table.n_classes == 5)].iloc[0]
    kept = torch.arange(60) // 15 != 0
    assert left.cka == pytest.approx(linear_cka(rep[a]["final"][kept], rep[b]["final"][kept]).item(), abs=1e-12)
    with pytest.raises(UnderspecError, match="n_blocks"):
        cka_table(run, small, probe_size=60, n_blocks=40)

"""The hidden representations: the paper's per-seed PCA trajectories, a shared aligned view, and CKA.

Embeddings are ``Run.embeddings``-shaped: (..., E+1, P, H), the first-layer outputs (before ReLU) of P
probe images after every epoch (entry 0 = init), one block per seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from ..errors import UnderspecError, shown
from ..training.data import Dataset
from ..training.run import Run, check_run
from .matching import DEFAULT_POLICY, apc, match_units, seed_pairs


@dataclass(frozen=True, eq=False)
class Projection:
    """Embeddings projected on principal components.

    ``coords`` (..., E+1, P, k): every epoch in the basis; ``components`` (..., k, H): unit-norm principal
    axes, each with its largest-magnitude loading positive (a fixed sign, so plots do not flip);
    ``mean`` (..., H): the centre; ``explained`` (..., k): fraction of the fitted variance per component.
    """

    coords: torch.Tensor
    components: torch.Tensor
    mean: torch.Tensor
    explained: torch.Tensor


@dataclass(frozen=True, eq=False)
class AlignedView:
    """All seeds in one picture: ``projection`` of the aligned embeddings (coords (S, E+1, P, k), one basis
    for all seeds), ``perms`` (S, H) the matching of each seed's units to the reference's, and ``apc`` (S,)
    how well they matched (mean r of the matched units, 1 for the reference)."""

    projection: Projection
    perms: torch.Tensor
    apc: torch.Tensor


def pca_trajectories(embeddings: torch.Tensor, n_components: int = 2) -> Projection:
    """The paper's view: one PCA per seed, fitted on the final epoch, every epoch projected into it.

    embeddings: (..., E+1, P, H); leading axes (seeds, configurations) each get their own PCA.
    """
    _check_embeddings(embeddings, n_components)
    mean, components, explained = _pca(embeddings[..., -1, :, :], n_components)
    coords = (embeddings - mean.unsqueeze(-2).unsqueeze(-3)) @ components.unsqueeze(-3).transpose(-1, -2)
    return Projection(coords, components, mean, explained)


def aligned_view(embeddings: torch.Tensor, n_components: int = 2, *, reference: int = 0,
                 policy: str = DEFAULT_POLICY) -> AlignedView:
    """One PCA for all seeds, after putting every seed's units in the reference seed's order.

    embeddings: (S, E+1, P, H), the seeds of one configuration. Each seed's units are matched to those of
    seed ``reference`` by the signed correlation of their final-epoch embeddings over the probe images (the
    permutation symmetry keeps signs); then one PCA is fitted on the final epoch of all seeds together and
    every seed and epoch is projected into it, so that the seeds share axes.
    """
    _check_embeddings(embeddings, n_components)
    if embeddings.dim() != 4:
        raise UnderspecError(f"aligned_view needs embeddings (S, E+1, P, H), got {tuple(embeddings.shape)}")
    if not 0 <= reference < embeddings.shape[0]:
        raise UnderspecError(f"reference must index a seed, 0..{embeddings.shape[0] - 1}, got {reference}")
    final = embeddings[:, -1].transpose(-1, -2)  # (S, H, P): units over probe images
    m = match_units(final[reference], final, signed=True, policy=policy)
    perms = m.perm
    if (perms < 0).any():
        raise UnderspecError("some units could not be matched (policy 'exclude'): use policy='zero' to align")
    aligned = embeddings.gather(-1, perms[:, None, None, :].expand_as(embeddings))
    mean, components, explained = _pca(aligned[:, -1].flatten(0, 1), n_components)
    coords = (aligned - mean) @ components.transpose(-1, -2)
    return AlignedView(Projection(coords, components, mean, explained), perms, apc(m))


def linear_cka(x: torch.Tensor, y: torch.Tensor, *, debiased: bool = False, undefined: str = "raise") -> torch.Tensor:
    """Linear centred kernel alignment between representations of the same P inputs, batched.

    x: (..., P, Hx), y: (..., P, Hy) (leading axes broadcast) -> (...,) float64. ``debiased=True`` uses the
    unbiased HSIC estimator (Song et al. 2012, as in Kornblith et al. 2019's reference code), which removes
    the upward bias of CKA at small P. CKA is 1 for x vs x and invariant to orthogonal transforms and
    isotropic scaling of either side. Per epoch and seed pair: ``linear_cka(emb[a], emb[b])`` with
    (E+1, P, H) inputs gives (E+1,). A representation without variance (every unit dead) has no CKA:
    ``undefined="raise"`` refuses it, ``"nan"`` gives NaN there.
    """
    if x.shape[-2] != y.shape[-2]:
        raise UnderspecError(f"CKA compares representations of the same inputs: got {x.shape[-2]} and {y.shape[-2]}")
    n = x.shape[-2]
    if debiased and n < 4:
        raise UnderspecError(f"debiased CKA needs at least 4 inputs, got {n}")
    x = x.double() - x.double().mean(-2, keepdim=True)
    y = y.double() - y.double().mean(-2, keepdim=True)
    if n < max(x.shape[-1], y.shape[-1]):  # wide layers: the (P, P) Gram matrices are the smaller products
        kx, ky = x @ x.transpose(-1, -2), y @ y.transpose(-1, -2)  # |X^T Y|_F^2 = <X X^T, Y Y^T>_F
        xy, xx, yy = (kx * ky).sum((-1, -2)), _sq_frobenius(kx), _sq_frobenius(ky)
    else:
        xy = _sq_frobenius(x.transpose(-1, -2) @ y)
        xx = _sq_frobenius(x.transpose(-1, -2) @ x)
        yy = _sq_frobenius(y.transpose(-1, -2) @ y)
    if debiased:
        rows_x, rows_y = (x * x).sum(-1), (y * y).sum(-1)
        xy = _debias(xy, rows_x, rows_y, n)
        xx, yy = _debias(xx, rows_x, rows_x, n), _debias(yy, rows_y, rows_y, n)
    flat = (xx <= 0) | (yy <= 0)
    if undefined == "raise" and bool(flat.any()):
        raise UnderspecError("CKA is undefined for a representation without variance (e.g. all units dead)")
    return torch.where(flat, torch.nan, xy / torch.sqrt(torch.where(flat, 1.0, xx * yy)))


def cka_over_training(run: Run, n_classes: int, *, l1=None, pairs: str = "all",
                      debiased: bool = False) -> pd.DataFrame:
    """Linear CKA between the seeds of a run, for every seed pair and every epoch, at class count ``n_classes``.

    For each lambda (``l1``: one value, several, or None for every lambda of the grid) the seeds' probe
    embeddings ``run.stack(l1, n_classes, "embeddings")`` (S, E+1, P, H) are compared pair by pair
    (``pairs``: ``"all"`` seed pairs or the ``"reference"`` pairs, see ``seed_pairs``), epoch by epoch, with
    ``linear_cka`` (``debiased``: the unbiased estimator). Epoch 0 is the untrained networks: the baseline.

    Returns a tidy table, one row per (l1, seed pair, epoch): columns ``l1``, ``seed_a``, ``seed_b``,
    ``epoch`` (0..E) and ``cka``; rows in grid order of lambda, then pairs, then epochs.
    """
    if check_run(run, "cka_over_training").embeddings is None:
        raise UnderspecError("this run has no embeddings: train with embeddings=True")
    lambdas = run.lambdas(l1)
    pair_list = seed_pairs(run.grid.seeds, pairs)
    position = {s: i for i, s in enumerate(run.grid.seeds)}
    ia = torch.tensor([position[a] for a, _ in pair_list])
    ib = torch.tensor([position[b] for _, b in pair_list])
    blocks = []
    for lam in lambdas:
        emb = run.stack(lam, n_classes, "embeddings")  # (S, E+1, P, H)
        values = linear_cka(emb[ia], emb[ib], debiased=debiased)  # (pairs, E+1)
        epochs = values.shape[-1]
        blocks.append(pd.DataFrame({
            "l1": float(lam),
            "seed_a": [a for a, _ in pair_list for _ in range(epochs)],
            "seed_b": [b for _, b in pair_list for _ in range(epochs)],
            "epoch": list(range(epochs)) * len(pair_list),
            "cka": values.reshape(-1).cpu().numpy()}))
    return pd.concat(blocks, ignore_index=True)


CKA_PROBE = 500  # test images whose first-layer outputs cka_table compares
CKA_BLOCKS = 10  # the probe images left out block by block, for the images' share of the interval


def cka_table(run: Run, data: Dataset, *, probe_size: int = CKA_PROBE, n_blocks: int = CKA_BLOCKS) -> pd.DataFrame:
    """Linear CKA between every seed pair of every configuration at the end of training, beside its baselines,
    on the first ``probe_size`` test images, and the same with the images left out one block at a time.

    The representation is the first layer's output before ReLU (the paper's embedding), computed from the
    initial and final weights, so any run will do (no per-epoch records needed). Per pair: ``cka`` (the trained
    networks), ``untrained`` (the same pair before training) and ``input_pca`` (the mean over the two seeds of
    CKA between the network and the images' projection on their H leading principal components: what a linear
    map of the pixels of that size keeps). ``block`` is -1 for every probe image, and b for the images with
    block b (of ``n_blocks`` contiguous blocks) left out: the delete-a-block jackknife over the images that
    ``uncertainty.crossed_estimate`` adds to the seeds' jackknife (the multibootstrap's two sources for a
    statistic that is not a mean over images).

    Columns l1, n_classes, seed_a, seed_b, block, cka, untrained, input_pca; every pair of distinct seeds.
    """
    check_run(run, "cka_table")
    if data.name != run.data_name:
        raise UnderspecError(f"data is {data.name!r} but the run was trained on {run.data_name!r}: pass the data "
                             "set the run was trained on")
    if isinstance(probe_size, bool) or not isinstance(probe_size, int) or probe_size < 4:
        raise UnderspecError(f"probe_size is a number of test images, at least 4, got {shown(probe_size)}")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or not 2 <= n_blocks <= probe_size // 2:
        raise UnderspecError(f"n_blocks must be an integer from 2 to probe_size / 2, got {shown(n_blocks)}")
    x = data.x_test[:probe_size].double()
    p = len(x)
    if p < 2 * n_blocks:
        raise UnderspecError(f"the data set has {p} test images: too few for {n_blocks} blocks")
    subsets = [torch.ones(p, dtype=torch.bool)] + [
        torch.arange(p) // -(-p // n_blocks) != b for b in range(n_blocks)]  # every image, then block b left out
    pair_list = seed_pairs(run.grid.seeds, "all")
    position = {s: i for i, s in enumerate(run.grid.seeds)}
    ia = torch.tensor([position[a] for a, _ in pair_list])
    ib = torch.tensor([position[b] for _, b in pair_list])
    rows = []
    for lam in run.grid.l1:
        for c in run.grid.n_classes:
            reps = {}
            for record in ("init", "final"):
                w = run.stack(lam, c, record)
                reps[record] = x @ w["w1"].double().transpose(-1, -2) + w["b1"].double().unsqueeze(-2)  # (S, P, H)
            for block, keep in enumerate(subsets, start=-1):
                final, init, images = reps["final"][:, keep], reps["init"][:, keep], x[keep]
                pca = _input_projection(images, final.shape[-1])
                to_input = _safe_cka(final, pca)  # (S,)
                rows.append(pd.DataFrame({
                    "l1": float(lam), "n_classes": int(c), "seed_a": [a for a, _ in pair_list],
                    "seed_b": [b for _, b in pair_list], "block": block,
                    "cka": _safe_cka(final[ia], final[ib]).numpy(), "untrained": _safe_cka(init[ia], init[ib]).numpy(),
                    "input_pca": ((to_input[ia] + to_input[ib]) / 2).numpy()}))
    return pd.concat(rows, ignore_index=True)


def _input_projection(images: torch.Tensor, k: int) -> torch.Tensor:
    """The images (P, D) on their k leading principal components: (P, k)."""
    centred = images - images.mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return centred @ vh[:k].T


def _safe_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``linear_cka`` with NaN where a representation has no variance (every unit dead) or is not finite."""
    finite = torch.isfinite(x).flatten(-2).all(-1) & torch.isfinite(y).flatten(-2).all(-1)
    value = linear_cka(torch.nan_to_num(x), torch.nan_to_num(y), undefined="nan")
    return torch.where(finite, value, torch.nan)


def cka_baselines(run: Run, x_probe: torch.Tensor, n_classes: int, *, l1: float | None = None,
                  other_classes: int | None = None) -> dict[str, float]:
    """What any two representations of these images share, as CKA levels a "representations look alike"
    verdict must beat, for the seeds of (``l1``, ``n_classes``) at the end of training:

    - ``"untrained networks"``: CKA between the seeds before training (epoch 0), the mean over pairs;
    - ``"input PCA"``: CKA between each trained network and the probe images' own projection on their H
      leading principal components (what a linear map of the pixels of that size keeps), the mean over seeds;
    - ``"another C"``: CKA between each seed and every other seed trained for ``other_classes`` classes (default:
      the grid's other class count nearest to ``n_classes``; left out if the grid has only one).

    x_probe: the probe images (P, D), ``data.x_test[run.probe_index]``. Returns {name: level}.
    """
    if check_run(run, "cka_baselines").embeddings is None:
        raise UnderspecError("this run has no embeddings: train with embeddings=True")
    l1 = run.grid.l1[0] if l1 is None else float(l1)
    emb = run.stack(l1, n_classes, "embeddings")  # (S, E+1, P, H)
    if x_probe.shape[0] != emb.shape[2]:
        raise UnderspecError(f"x_probe has {x_probe.shape[0]} images, the run's probe {emb.shape[2]}: pass "
                             "data.x_test[run.probe_index]")
    pairs = seed_pairs(run.grid.seeds, "all")
    position = {s: i for i, s in enumerate(run.grid.seeds)}
    ia = torch.tensor([position[a] for a, _ in pairs])
    ib = torch.tensor([position[b] for _, b in pairs])
    levels = {"untrained networks": float(linear_cka(emb[ia, 0], emb[ib, 0]).mean())}
    x = x_probe.double() - x_probe.double().mean(0)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    projection = x @ vh[:emb.shape[-1]].T  # (P, H): the images on their H leading components
    levels["input PCA"] = float(linear_cka(emb[:, -1], projection).mean())
    others = [c for c in run.grid.n_classes if c != n_classes]
    if other_classes is None and others:
        other_classes = min(others, key=lambda c: abs(c - n_classes))
    if other_classes is not None:
        other = run.stack(l1, other_classes, "embeddings")
        levels[f"another C ({other_classes})"] = float(linear_cka(emb[ia, -1], other[ib, -1]).mean())
    return levels


def _debias(dot: torch.Tensor, rows_x: torch.Tensor, rows_y: torch.Tensor, n: int) -> torch.Tensor:
    """Unbiased HSIC (times a constant that cancels in CKA) from the feature-space terms."""
    sum_x, sum_y = rows_x.sum(-1), rows_y.sum(-1)
    return dot - n / (n - 2) * (rows_x * rows_y).sum(-1) + sum_x * sum_y / ((n - 1) * (n - 2))


def _sq_frobenius(m: torch.Tensor) -> torch.Tensor:
    return (m * m).sum((-1, -2))


def _pca(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (..., P, H) -> mean (..., H), components (..., k, H) sign-fixed, explained-variance ratio (..., k)."""
    mean = x.mean(-2)
    _, s, vh = torch.linalg.svd(x - mean.unsqueeze(-2), full_matrices=False)
    components = vh[..., :k, :]
    biggest = components.abs().argmax(-1, keepdim=True)
    components = components * torch.sign(components.gather(-1, biggest))
    var = s * s
    return mean, components, var[..., :k] / var.sum(-1, keepdim=True)


def _check_embeddings(embeddings: torch.Tensor, n_components: int) -> None:
    if embeddings.dim() < 3:
        raise UnderspecError(f"embeddings must be (..., E+1, P, H), got shape {tuple(embeddings.shape)}")
    p, h = embeddings.shape[-2:]
    if not 1 <= n_components <= min(p, h):
        raise UnderspecError(f"n_components must be in 1..{min(p, h)} for {p} images x {h} units, got {n_components}")

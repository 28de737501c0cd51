"""Pictures of data and networks: digits, units as images, learning curves, matchings, gradients, embeddings,
paths between networks. Each function draws what it is given (tables, tensors) and returns a matplotlib
``Figure``; it never trains and never computes a metric it could be given.

Conventions (``style``): every figure's title states the data set, the grid slice and the number of seeds; a
metric is drawn with its spread and, where one exists, its null as a dashed grey line; one colour per seed
throughout the book (``seed_colors``). The settings apply per figure (``styled``), never globally.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .metric_plots import plot_metric
from .style import (CHANCE_STYLE, DIGIT_CMAP, DIVERGING, TARGET_LABELS, fmt_l1, metric_label, seed_colors, styled,
                    subtitle)

def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def _symmetric_limit(values: np.ndarray, quantile: float = 0.995) -> float:
    v = np.abs(values[np.isfinite(values)])
    lim = float(np.quantile(v, quantile)) if v.size else 1.0
    return lim if lim > 0 else 1.0


def _image_grid(ax_rows, images: np.ndarray, shape=(28, 28), per_image_scale: bool = True, cmap=DIVERGING,
                vmax: float | None = None):
    """Draw images (rows, cols, D) into a 2-d array of axes; returns the last AxesImage."""
    im = None
    for r, axes in enumerate(ax_rows):
        for c, ax in enumerate(axes):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= images.shape[1]:
                ax.axis("off")
                continue
            img = images[r, c].reshape(shape)
            lim = _symmetric_limit(img, 1.0) if per_image_scale else vmax
            im = ax.imshow(img, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    return im


# --------------------------------------------------------------------------------------- data and model

@styled
def digits(data, per_digit: int = 8):
    """The first ``per_digit`` training images of every digit, one row per digit."""
    y = data.y_train.numpy()
    fig, axes = plt.subplots(10, per_digit, figsize=(per_digit * 0.75, 10 * 0.75), squeeze=False)
    for d in range(10):
        idx = np.flatnonzero(y == d)[:per_digit]
        for c, ax in enumerate(axes[d]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(idx):
                ax.imshow(data.x_train[idx[c]].reshape(data.image_shape), cmap="gray_r", vmin=0, vmax=1)
            if c == 0:
                ax.set_ylabel(str(d), rotation=0, labelpad=10, fontsize=10)
    fig.suptitle(f"{data.name}: the first {per_digit} training images of each digit "
                 f"({len(data.y_train):,} train / {len(data.y_test):,} test)")
    return fig


@styled
def pixel_usage(fraction_nonzero: np.ndarray, data_name: str, shape=(28, 28)):
    """Where the data lives: the fraction of training images in which each pixel is non-zero."""
    frac = _as_numpy(fraction_nonzero).reshape(shape)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(frac, cmap="magma", vmin=0, vmax=1)
    ax.contour(frac == 0, levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, label="fraction of training images with pixel > 0")
    ax.set_title(f"{data_name}: {int((frac == 0).sum())} pixels are 0 in every training image\n"
                 "(outlined in cyan: their weights get no data gradient)")
    return fig


@styled
def learning_curves(history: pd.DataFrame, *, data_name: str, l1: float, n_classes: int, epoch: int | None = None):
    """Loss and accuracy per epoch, training (dashed, running average over the epoch) and test (solid), one
    colour per seed; ``history`` holds the seeds' rows for one (l1, C)."""
    h = history[(history.l1 == l1) & (history.n_classes == n_classes)]
    seeds = list(dict.fromkeys(h.seed))
    colors = seed_colors(seeds)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for s in seeds:
        hs = h[h.seed == s]
        for ax, col in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(hs.epoch, hs[f"train_{col}"], "--", color=colors[s], linewidth=1, alpha=0.8)
            ax.plot(hs.epoch, hs[f"test_{col}"], "-", color=colors[s], linewidth=1.4, label=f"seed {s}")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    if epoch is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(epoch, color="0.5", linewidth=0.8)
    handles = [plt.Line2D([], [], color="0.2", linestyle="--", label="train (running mean)"),
               plt.Line2D([], [], color="0.2", linestyle="-", label="test")]
    handles += [plt.Line2D([], [], color=colors[s], label=f"seed {s}") for s in seeds]
    ax_acc.legend(handles=handles, loc="lower right", ncol=2)
    fig.suptitle("Learning curves: " + subtitle(data_name, seeds=seeds, l1=l1, n_classes=n_classes,
                                                  epochs=int(h.epoch.max())))
    return fig


@styled
def final_accuracy(history: pd.DataFrame, *, data_name: str, chance: dict[int, float] | None = None):
    """Final test accuracy of every network against C, one panel per λ; each dot is one seed.

    ``chance``: {C: accuracy of always predicting the most frequent class}, drawn dashed.
    """
    last = history[history.epoch == history.epoch.max()]
    l1s = sorted(last.l1.unique())
    seeds = list(dict.fromkeys(last.seed))
    colors = seed_colors(seeds)
    ncols = min(len(l1s), 3)
    nrows = math.ceil(len(l1s) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False, sharey=True)
    for ax, lam in zip(axes.flat, l1s):
        d = last[last.l1 == lam]
        for i, s in enumerate(seeds):
            ds = d[d.seed == s]
            ax.plot(ds.n_classes + (i - len(seeds) / 2) * 0.04, ds.test_acc, "o", color=colors[s], markersize=3)
        if chance:
            cs = sorted(chance)
            ax.plot(cs, [chance[c] for c in cs], **CHANCE_STYLE, label="majority class")
        ax.set(title=f"λ = {fmt_l1(lam)}", xlabel="C (classes)", ylabel="test accuracy")
        ax.set_xticks(sorted(d.n_classes.unique()))
    for ax in axes.flat[len(l1s):]:
        ax.axis("off")
    axes.flat[0].legend(loc="lower left")
    fig.suptitle("Final test accuracy, one dot per seed: " + subtitle(
        data_name, seeds=seeds, epochs=int(history.epoch.max())))
    return fig


@styled
def unit_images(w1_by_row, row_labels, *, title: str, shape=(28, 28), col_labels=None, per_image_scale=True,
                cell: float = 0.62):
    """Rows of W1 as images: ``w1_by_row`` (R, H, D), one figure row per network (or per version of one),
    one column per hidden unit. Red = positive weight, blue = negative, white = 0 (each image scaled to its
    own largest |weight| unless ``per_image_scale=False``)."""
    w = _as_numpy(w1_by_row)
    rows, hidden = w.shape[:2]
    fig, axes = plt.subplots(rows, hidden, figsize=(cell * hidden + 1.2, cell * rows + 0.9), squeeze=False,
                             gridspec_kw=dict(wspace=0.04, hspace=0.04))
    fig.set_layout_engine("constrained", w_pad=0.01, h_pad=0.01, wspace=0.0, hspace=0.0)
    vmax = None if per_image_scale else _symmetric_limit(w)
    im = _image_grid(axes, w, shape, per_image_scale, vmax=vmax)
    for r, label in enumerate(row_labels):
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    labels = col_labels if col_labels is not None else [str(j) for j in range(hidden)]
    for j, label in enumerate(labels):
        axes[0, j].set_title(label, fontsize=7)
    if not per_image_scale:
        fig.colorbar(im, ax=axes, shrink=0.6, label="weight")
    fig.suptitle(title)
    return fig


@styled
def disagreement_matrix(matrix, seeds, *, title: str, label: str = "fraction of test images"):
    """Pairwise disagreement between seeds (S, S), annotated, with the value in each cell."""
    m = _as_numpy(matrix)
    fig, ax = plt.subplots(figsize=(0.62 * len(seeds) + 2.6, 0.55 * len(seeds) + 1.3))
    off = m[~np.eye(len(m), dtype=bool)]
    im = ax.imshow(m, cmap="viridis", vmin=0, vmax=max(float(np.nanmax(off)), 1e-6) if off.size else 1)
    for i in range(len(m)):
        for j in range(len(m)):
            if i != j:
                ax.text(j, i, f"{m[i, j]:.3f}", ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] < 0.6 * np.nanmax(off) else "black")
    ax.set_xticks(range(len(seeds)), [str(s) for s in seeds], rotation=45)
    ax.set_yticks(range(len(seeds)), [str(s) for s in seeds])
    ax.set(xlabel="seed", ylabel="seed")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title)
    return fig


@styled
def bars_with_points(values: pd.DataFrame, *, x: str, y: str, title: str, ylabel: str, chance: float | None = None,
                     chance_label: str = "chance", order=None, color="C0", xlabel: str | None = None):
    """Mean (bar) and every value (dots) of ``y`` for each category ``x``."""
    order = list(order) if order is not None else list(dict.fromkeys(values[x]))
    fig, ax = plt.subplots(figsize=(1.9 * len(order) + 2.5, 3.6))
    rng = np.random.default_rng(0)
    for i, key in enumerate(order):
        v = values.loc[values[x] == key, y].to_numpy(float)
        ax.bar(i, np.nanmean(v), color=color, alpha=0.35, width=0.6)
        ax.plot(i + rng.uniform(-0.15, 0.15, len(v)), v, "o", color=color, markersize=3)
    if chance is not None:
        ax.axhline(chance, **CHANCE_STYLE, label=chance_label)
        ax.legend(loc="best")
    ax.set_xticks(range(len(order)), [str(k) for k in order])
    ax.set(ylabel=ylabel, xlabel=x if xlabel is None else xlabel)
    ax.set_title(title)
    return fig


# ------------------------------------------------------------------------------------ explorer views

def _filter_row(fig, spec, w1: np.ndarray, label: str, col_labels=None, shape=(28, 28)):
    """One row of unit images inside ``spec`` (a SubplotSpec); returns the axes."""
    hidden = w1.shape[0]
    sub = spec.subgridspec(1, hidden, wspace=0.05)
    axes = [fig.add_subplot(sub[0, j]) for j in range(hidden)]
    _image_grid([axes], w1[None], shape)
    axes[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if col_labels is not None:
        for ax, text in zip(axes, col_labels):
            ax.set_title(text, fontsize=7)
    return axes


@styled
def training_state(history: pd.DataFrame, w1, *, data_name: str, seed: int, l1: float, n_classes: int, epoch: int):
    """Learning curves of one configuration (all seeds faint, ``seed`` bold, ``epoch`` marked) above the
    ``seed``'s first-layer filters ``w1`` (H, 784) at that epoch."""
    h = history[(history.l1 == l1) & (history.n_classes == n_classes)]
    seeds = list(dict.fromkeys(h.seed))
    colors = seed_colors(seeds)
    w = _as_numpy(w1)
    half = math.ceil(w.shape[0] / 2)
    fig = plt.figure(figsize=(11, 6.2), layout="constrained")
    spec = fig.add_gridspec(3, 2, height_ratios=[2.2, 1, 1])
    for col, (what, ylabel) in enumerate((("loss", "cross-entropy"), ("acc", "accuracy"))):
        ax = fig.add_subplot(spec[0, col])
        for s in seeds:
            hs = h[h.seed == s]
            bold = s == seed
            ax.plot(hs.epoch, hs[f"test_{what}"], "-", color=colors[s], linewidth=2 if bold else 0.8,
                    alpha=1 if bold else 0.45, label=f"seed {s} (test)" if bold else None)
            if bold:
                ax.plot(hs.epoch, hs[f"train_{what}"], "--", color=colors[s], linewidth=1.2, label=f"seed {s} (train)")
        ax.axvline(epoch, color="0.3", linewidth=0.8)
        ax.set(xlabel="epoch", ylabel=ylabel, title=f"{'loss' if what == 'loss' else 'accuracy'} (other seeds faint)")
        ax.legend(loc="best")
    _filter_row(fig, spec[1, :], w[:half], "units\n0-7" if half == 8 else "units", [str(j) for j in range(half)])
    _filter_row(fig, spec[2, :], w[half:], "units\n8-15" if half == 8 else "",
                [str(j) for j in range(half, w.shape[0])])
    fig.suptitle(f"Seed {seed} at epoch {epoch}: " + subtitle(data_name, seeds=seeds, l1=l1, n_classes=n_classes)
                 + "\nbottom: its first-layer weights (rows of W1) as 28x28 images, red > 0 > blue")
    return fig


@styled
def permutation_view(w1, w1_permuted, perm, logits, logits_permuted, *, title: str):
    """A network and its hidden-unit permutation: both sets of filters, and both networks' logits on the
    same images plotted against each other (they lie on the diagonal)."""
    w, wp = _as_numpy(w1), _as_numpy(w1_permuted)
    a, b = _as_numpy(logits).ravel(), _as_numpy(logits_permuted).ravel()
    fig = plt.figure(figsize=(12, 3.8), layout="constrained")
    spec = fig.add_gridspec(2, 2, width_ratios=[3.2, 1])
    _filter_row(fig, spec[0, 0], w, "original", [str(j) for j in range(w.shape[0])])
    _filter_row(fig, spec[1, 0], wp, "permuted", [f"←{int(p)}" for p in _as_numpy(perm)])
    ax = fig.add_subplot(spec[:, 1])
    ax.plot(a, b, ".", markersize=2, alpha=0.4)
    lim = [min(a.min(), b.min()), max(a.max(), b.max())]
    ax.plot(lim, lim, color="0.4", linewidth=0.8)
    ax.set(xlabel="logit, original network", ylabel="logit, permuted network",
           title=f"max |difference| = {np.abs(a - b).max():.1e}\nover {a.size:,} logits")
    fig.suptitle(title + "\nunit i of the permuted network is unit perm[i] of the original (top labels: ←perm[i])")
    return fig


def correlation_limit(*matrices) -> float:
    """The colour limit of correlation heat maps: the largest |r| of the matrices themselves (not 1), so two
    pairs of networks whose correlations differ do not look the same on a +-1 scale."""
    values = np.concatenate([np.abs(_as_numpy(m)).ravel() for m in matrices])
    values = values[np.isfinite(values)]
    return max(float(values.max()) if values.size else 1.0, 1e-6)


@styled
def correlation_heatmap(ax, r, *, title: str, xlabel: str, ylabel: str, limit: float | None = None):
    """One correlation matrix on ``ax`` (diverging, -limit..limit; ``limit``: default the matrix's own
    largest |r|, ``correlation_limit``); returns the image."""
    limit = correlation_limit(r) if limit is None else limit
    im = ax.imshow(_as_numpy(r), cmap=DIVERGING, vmin=-limit, vmax=limit)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    n = _as_numpy(r).shape
    ax.set_xticks(range(0, n[1], 3))
    ax.set_yticks(range(0, n[0], 3))
    return im


@styled
def matching_view(w1_a, w1_b_aligned, r, perm, *, signed: bool, seeds, title: str):
    """R1 between two networks before and after the Hungarian matching, and their matched filters.

    r: (H, H) Pearson correlations of the rows of W1 (a's units x b's units); perm: (H,) b's unit matched to
    each unit of a; w1_b_aligned: b's W1 already in a's order."""
    r = _as_numpy(r)
    perm = _as_numpy(perm).astype(int)
    after = r[:, perm]
    diag = np.diag(after)
    score = diag if signed else np.abs(diag)
    fig = plt.figure(figsize=(12, 7.4), layout="constrained")
    spec = fig.add_gridspec(2, 3, height_ratios=[2.1, 1], width_ratios=[1, 1, 1.15])
    limit = correlation_limit(r)
    ax0 = fig.add_subplot(spec[0, 0])
    correlation_heatmap(ax0, r, title="before: unit i vs unit j", xlabel=f"unit of seed {seeds[1]}",
                        ylabel=f"unit of seed {seeds[0]}", limit=limit)
    ax1 = fig.add_subplot(spec[0, 1])
    im = correlation_heatmap(ax1, after, title="after matching: matched pairs on the diagonal",
                             xlabel=f"matched unit of seed {seeds[1]}", ylabel=f"unit of seed {seeds[0]}",
                             limit=limit)
    fig.colorbar(im, ax=[ax0, ax1], shrink=0.8,
                 label=f"Pearson r of the W1 rows\n(scale ±{limit:.2f}: this pair's largest |r|)")
    ax2 = fig.add_subplot(spec[0, 2])
    order = np.argsort(-score)
    ax2.bar(range(len(score)), diag[order], color=np.where(diag[order] >= 0, "C3", "C0"))
    ax2.axhline(0, color="0.3", linewidth=0.6)
    ax2.set_xticks(range(len(score)), [str(i) for i in order], fontsize=7)
    ax2.set(ylim=(-1, 1), xlabel=f"unit of seed {seeds[0]} (sorted)", ylabel="r of the matched pair",
            title=f"{'APC (signed)' if signed else 'APC = mean |r|'} = {score.mean():.3f}")
    sub = spec[1, :].subgridspec(2, 1, hspace=0.1)
    _filter_row(fig, sub[0], _as_numpy(w1_a), f"seed {seeds[0]}")
    _filter_row(fig, sub[1], _as_numpy(w1_b_aligned), f"seed {seeds[1]}\nmatched", [f"←{p}" for p in perm])
    fig.suptitle(title + f"\nmatching on {'signed r' if signed else '|r| (the paper)'}; bars: red r > 0, "
                 "blue r < 0 (anti-correlated units paired)")
    return fig


@styled
def epoch_gradient(w1_before, w1_after, *, lr: float, title: str, shape=(28, 28)):
    """One epoch's summed gradient of W1, recovered as (W1 before - W1 after) / lr (exact for plain SGD):
    each unit's gradient as an image, and the mean |gradient| over units as a map of the image."""
    g = (_as_numpy(w1_before) - _as_numpy(w1_after)) / lr
    fig = plt.figure(figsize=(12, 4.4), layout="constrained")
    spec = fig.add_gridspec(2, 2, width_ratios=[3.2, 1])
    half = math.ceil(g.shape[0] / 2)
    _filter_row(fig, spec[0, 0], g[:half], "units 0-7", [str(j) for j in range(half)])
    _filter_row(fig, spec[1, 0], g[half:], "units 8-15", [str(j) for j in range(half, g.shape[0])])
    ax = fig.add_subplot(spec[:, 1])
    im = ax.imshow(np.abs(g).mean(0).reshape(shape), cmap="magma")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.8, label="mean |summed gradient| over units")
    ax.set_title(f"‖gradient‖ = {np.linalg.norm(g):.3g}")
    fig.suptitle(title + "\nthe epoch's summed W1 gradient, (W1 before − W1 after) / lr; red > 0 > blue")
    return fig


@styled
def embedding_scatter(coords, labels, epoch: int, *, explained=None, title: str, trail: bool = True):
    """Probe embeddings projected on 2 principal components at ``epoch``, coloured by digit, with each
    digit's mean path from epoch 0 up to ``epoch``. coords: (E+1, P, 2); labels: (P,)."""
    c = _as_numpy(coords)
    y = _as_numpy(labels).astype(int)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    cmap = plt.get_cmap(DIGIT_CMAP)
    ax.scatter(c[epoch, :, 0], c[epoch, :, 1], c=[cmap(d % 10) for d in y], s=6, alpha=0.55, linewidths=0)
    if trail:
        for d in np.unique(y):
            path = c[: epoch + 1, y == d].mean(1)
            ax.plot(path[:, 0], path[:, 1], "-", color=cmap(d % 10), linewidth=1.2)
            ax.plot(*path[-1], "o", color=cmap(d % 10), markeredgecolor="black", markersize=7)
            ax.annotate(str(d), path[-1], fontsize=8, ha="center", va="center", color="white")
    lo = np.nanquantile(c[..., :2].reshape(-1, 2), 0.005, axis=0)
    hi = np.nanquantile(c[..., :2].reshape(-1, 2), 0.995, axis=0)
    pad = 0.05 * (hi - lo)
    ax.set(xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]))
    ev = _as_numpy(explained) if explained is not None else None
    ax.set_xlabel("PC 1" + (f" ({ev[0]:.0%} of final variance)" if ev is not None else ""))
    ax.set_ylabel("PC 2" + (f" ({ev[1]:.0%})" if ev is not None else ""))
    ax.set_title(title + "\ndots: probe images coloured by digit; lines: each digit's mean since epoch 0",
                 fontsize=9)
    return fig


@styled
def correlation_pair(r_left, r_right, *, titles, xlabels, ylabel: str, suptitle: str):
    """Two correlation matrices side by side on one colour scale: +-(the larger of their largest |r|), said
    in the colour bar."""
    limit = correlation_limit(r_left, r_right)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.3))
    for ax, r, title, xlabel in zip(axes, (r_left, r_right), titles, xlabels):
        im = correlation_heatmap(ax, r, title=title, xlabel=xlabel, ylabel=ylabel, limit=limit)
    fig.colorbar(im, ax=list(axes), shrink=0.85,
                 label=f"Pearson r of the W1 rows\n(scale ±{limit:.2f}: the largest |r| of both)")
    fig.suptitle(suptitle)
    return fig


@styled
def distance_comparison(distances: pd.DataFrame, *, title: str, ylabel: str = "‖θ_a − θ_b‖ (all parameters)"):
    """Distances between parameter vectors by kind of pair (column ``kind``, values ``distance``): every
    pair as a dot, the mean as a bar."""
    return bars_with_points(distances, x="kind", y="distance", title=title, ylabel=ylabel, xlabel="")


@styled
def aligned_filters(w1_aligned, seeds, r_matched=None, *, title: str):
    """Every seed's W1 rows put in the reference seed's unit order (S, H, D): one row per seed, so a
    column shows one matched unit across seeds. ``r_matched`` (S, H): each match's correlation with the
    reference, printed under the images of the last row as the mean over seeds."""
    labels = None
    if r_matched is not None:
        r = np.abs(_as_numpy(r_matched))[1:]
        labels = [f"|r|={v:.2f}" for v in r.mean(0)]
    return unit_images(w1_aligned, [f"seed {s}" for s in seeds], title=title, col_labels=labels)


@styled
def grad_norm_curves(history: pd.DataFrame, *, data_name: str, n_classes: int, l1_floor: dict | None = None):
    """The mean per-step norm of the W1 gradient in each epoch, one colour per λ: the mean over seeds as
    a line and the range over seeds as a band (log scale). ``l1_floor``: {λ: norm of the L1 term alone},
    drawn dotted in the same colour."""
    h = history[history.n_classes == n_classes]
    l1s = sorted(h.l1.unique())
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(l1s)))
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for color, lam in zip(colors, l1s):
        g = h[h.l1 == lam].groupby("epoch").grad_norm
        mean, lo, hi = g.mean(), g.min(), g.max()
        ax.plot(mean.index, mean, color=color, label=f"λ = {fmt_l1(lam)}")
        ax.fill_between(mean.index, lo, hi, color=color, alpha=0.2, linewidth=0)
        if l1_floor and lam in l1_floor and l1_floor[lam] > 0:
            ax.axhline(l1_floor[lam], color=color, linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="mean ‖∂loss/∂W1‖ per step")
    ax.legend(loc="best", ncol=2)
    ax.set_title("Gradient norm during training (band: range over seeds; dotted: ‖λ·sign(W1)‖)\n"
                 + subtitle(data_name, seeds=h.seed.nunique(), n_classes=n_classes, epochs=int(h.epoch.max())))
    return fig


@styled
def pixel_maps(maps, labels, *, title: str, cbar_label: str, shape=(28, 28), mask=None, ncols: int | None = None):
    """Several non-negative 28x28 maps (K, 784) side by side, on one colour scale; ``mask`` (784,) bool
    outlines the pixels that are zero in every training image."""
    m = _as_numpy(maps)
    k = m.shape[0]
    ncols = ncols or k
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.9 * ncols + 1.2, 2.0 * nrows + 0.7), squeeze=False)
    vmax = float(np.nanquantile(m, 0.995)) or 1.0
    im = None
    for ax, img, label in zip(axes.flat, m, labels):
        im = ax.imshow(img.reshape(shape), cmap="magma", vmin=0, vmax=vmax)
        if mask is not None:
            ax.contour(_as_numpy(mask).reshape(shape), levels=[0.5], colors="cyan", linewidths=0.6)
        ax.set_title(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[k:]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=cbar_label)
    fig.suptitle(title)
    return fig


@styled
def identity_scatter(x, y, *, title: str, xlabel: str, ylabel: str, max_points: int = 20000):
    """y against x with the identity line, and the largest difference in the title."""
    a, b = _as_numpy(x).ravel(), _as_numpy(y).ravel()
    idx = np.random.default_rng(0).choice(a.size, min(a.size, max_points), replace=False)
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot(a[idx], b[idx], ".", markersize=2, alpha=0.4)
    lim = [min(a.min(), b.min()), max(a.max(), b.max())]
    ax.plot(lim, lim, color="0.4", linewidth=0.8)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    scale = np.abs(a).max() or 1.0
    ax.set_title(f"{title}\nmax |difference| = {np.abs(a - b).max():.1e} ({np.abs(a - b).max() / scale:.1e} of max |x|)",
                 fontsize=9)
    return fig


def _digit_legend(ax, digits, loc="best"):
    cmap = plt.get_cmap(DIGIT_CMAP)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=cmap(d % 10), label=str(d)) for d in digits]
    ax.legend(handles=handles, title="digit", loc=loc, ncol=2, fontsize=7, title_fontsize=7)


@styled
def trajectory_panels(coords, labels, seeds, *, explained=None, title: str, ncols: int = 4):
    """The paper's representation view, one panel per seed, each in its own PCA basis: the probe images at
    the final epoch (dots, coloured by digit) and each digit's mean from epoch 0 to the end (line).
    coords: (S, E+1, P, 2); labels: (P,); explained: (S, 2) or None."""
    c = _as_numpy(coords)
    y = _as_numpy(labels).astype(int)
    digits = np.unique(y)
    cmap = plt.get_cmap(DIGIT_CMAP)
    s = c.shape[0]
    ncols = min(ncols, s)
    nrows = math.ceil(s / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 3.1 * nrows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= s:
            ax.axis("off")
            continue
        ax.scatter(c[k, -1, :, 0], c[k, -1, :, 1], c=[cmap(d % 10) for d in y], s=3, alpha=0.35, linewidths=0)
        for d in digits:
            path = c[k][:, y == d].mean(1)
            ax.plot(path[:, 0], path[:, 1], color=cmap(d % 10), linewidth=1.2)
            ax.plot(*path[-1], "o", color=cmap(d % 10), markeredgecolor="black", markersize=4.5)
        ev = _as_numpy(explained)[k] if explained is not None else None
        ax.set_title(f"seed {seeds[k]}" + (f" (PC1 {ev[0]:.0%}, PC2 {ev[1]:.0%})" if ev is not None else ""),
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("PC 1", fontsize=7)
        ax.set_ylabel("PC 2", fontsize=7)
    _digit_legend(axes.flat[min(s, axes.size) - 1], digits, loc="best")
    fig.suptitle(title)
    return fig


@styled
def shared_view(coords, labels, seeds, *, title: str, explained=None, ncols: int = 5):
    """All seeds in one PCA basis (after aligning their units), one small panel per digit on shared axes: in
    each, every seed's mean of that digit from epoch 0 (open circle) to the end of training (filled dot), one
    colour per seed, and the other digits' final means in light grey for orientation. A digit whose seeds
    end on one spot is represented alike. coords: (S, E+1, P, 2); labels: (P,); explained: (2,) or None."""
    c = _as_numpy(coords)
    y = _as_numpy(labels).astype(int)
    digits = np.unique(y)
    colors = seed_colors(seeds)
    means = np.stack([c[:, :, y == d].mean(2) for d in digits], 1)  # (S, digits, E+1, 2)
    ncols = min(ncols, len(digits))
    nrows = math.ceil(len(digits) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.35 * ncols + 1.6, 2.3 * nrows + 0.8), squeeze=False,
                             sharex=True, sharey=True)
    for k, ax in enumerate(axes.flat):
        if k >= len(digits):
            ax.axis("off")
            continue
        ax.plot(means[:, :, -1, 0].ravel(), means[:, :, -1, 1].ravel(), ".", color="0.85", markersize=3, zorder=0)
        for i, seed in enumerate(seeds):
            path = means[i, k]
            ax.plot(path[:, 0], path[:, 1], color=colors[int(seed)], linewidth=0.8, alpha=0.8)
            ax.plot(*path[0], "o", markerfacecolor="none", markeredgecolor=colors[int(seed)], markersize=3.5)
            ax.plot(*path[-1], "o", color=colors[int(seed)], markeredgecolor="black", markeredgewidth=0.4,
                    markersize=5)
        ax.set_title(f"digit {digits[k]}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.2, linewidth=0.5)
    ev = _as_numpy(explained) if explained is not None else None
    for ax in axes[-1]:
        ax.set_xlabel("shared PC 1" + (f" ({ev[0]:.0%})" if ev is not None else ""), fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("shared PC 2" + (f" ({ev[1]:.0%})" if ev is not None else ""), fontsize=7)
    handles = [plt.Line2D([], [], marker="o", linestyle="-", color=colors[int(s)], label=f"seed {s}") for s in seeds]
    handles += [plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="0.3",
                           label="epoch 0"),
                plt.Line2D([], [], marker=".", linestyle="", color="0.8", label="other digits (final)")]
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=7)
    fig.suptitle(title + "\none panel per digit: each seed's mean of that digit from epoch 0 (open) to the end (filled)")
    return fig


BASELINE_STYLES = ({"linestyle": "--", "color": "0.35"}, {"linestyle": ":", "color": "0.2"},
                   {"linestyle": "-.", "color": "0.5"})


@styled
def cka_curves(cka: pd.DataFrame, *, title: str, chance_epoch: int = 0, baselines: dict | None = None):
    """CKA between seed pairs over training (columns l1, epoch, cka; one row per pair and epoch): the mean
    over pairs as a line and the range as a band, one colour per λ. ``baselines`` {name: CKA level} (what
    any two representations of these images share, ``cka_baselines``) are drawn as grey horizontal lines;
    without them, the value at epoch ``chance_epoch`` (untrained, independent networks) is drawn dashed."""
    l1s = sorted(cka.l1.unique())
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(l1s)))
    fig, ax = plt.subplots(figsize=(7.8, 4.4))
    for color, lam in zip(colors, l1s):
        g = cka[cka.l1 == lam].groupby("epoch").cka
        mean = g.mean()
        ax.plot(mean.index, mean, color=color, label=f"λ = {fmt_l1(lam)}")
        ax.fill_between(mean.index, g.min(), g.max(), color=color, alpha=0.18, linewidth=0)
    if baselines is None:
        baselines = {"untrained networks (epoch 0)": cka[cka.epoch == chance_epoch].cka.mean()}
    for k, (name, level) in enumerate(baselines.items()):
        ax.axhline(level, linewidth=1.2, label=f"baseline: {name} ({level:.2f})", **BASELINE_STYLES[k % 3])
    low = min([0.5, *(v - 0.05 for v in baselines.values())])
    ax.set(xlabel="epoch", ylabel="linear CKA between two seeds", ylim=(max(low, 0.0), 1.0))
    ax.legend(loc="lower right", ncol=2, fontsize=7)
    ax.set_title(title)
    return fig


@styled
def path_curves(t, curves: dict, *, title: str, chance_acc: float | None = None):
    """Test loss (left) and accuracy (right) along the straight line between two networks' weights, for
    several alignments: ``curves`` maps a name to {"loss": (pairs, T), "acc": (pairs, T)}. The mean over
    pairs is a line, the range a band."""
    t = _as_numpy(t)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.9))
    for k, (name, c) in enumerate(curves.items()):
        for ax, key in zip(axes, ("loss", "acc")):
            v = _as_numpy(c[key])
            ax.plot(t, v.mean(0), color=f"C{k}", label=name, linewidth=1.6)
            ax.fill_between(t, v.min(0), v.max(0), color=f"C{k}", alpha=0.18, linewidth=0)
    if chance_acc is not None:
        axes[1].axhline(chance_acc, **CHANCE_STYLE, label="majority class")
    axes[0].set(xlabel="t   (network a at t = 0, network b at t = 1)", ylabel="test cross-entropy",
                title="loss along (1 − t)·θ_a + t·θ_b")
    axes[1].set(xlabel="t", ylabel="test accuracy", title="accuracy along the path")
    axes[1].legend(loc="lower center")
    fig.suptitle(title)
    return fig


# ------------------------------------------------------------------------------- grids and regimes

@styled
def member_heatmaps(members: pd.DataFrame, columns: dict, *, title: str, flagged: pd.DataFrame | None = None,
                    flag_label: str = "flagged", ncols: int = 2):
    """Per-network values of a ``member_table`` as small heat maps, one per column: the mean over seeds for
    every λ (rows) and C (columns), written in each cell. ``columns``: {column: (label, format)}, e.g.
    {"rel_change": ("‖W1 − W1₀‖ / ‖W1₀‖", "{:.2f}")}. ``flagged``: configurations (columns l1, n_classes) to
    outline in red, named ``flag_label`` in the legend; ``ncols`` panels a row."""
    means = members.groupby(["l1", "n_classes"])[list(columns)].mean()
    l1s, classes = sorted(members.l1.unique()), sorted(members.n_classes.unique())
    ncols = min(ncols, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=((0.5 * len(classes) + 2.2) * ncols, (0.42 * len(l1s) + 1.5) * nrows + 0.6),
                             squeeze=False)
    for ax in axes.flat[len(columns):]:
        ax.axis("off")
    marks = set() if flagged is None else {(float(a), int(b)) for a, b in zip(flagged.l1, flagged.n_classes)}
    for ax, (column, (label, fmt)) in zip(axes.flat, columns.items()):
        grid = means[column].unstack("n_classes").reindex(index=l1s, columns=classes).to_numpy(float)
        im = ax.imshow(grid, cmap="viridis", aspect="auto")
        finite = grid[np.isfinite(grid)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for i, lam in enumerate(l1s):
            for j, c in enumerate(classes):
                ax.text(j, i, fmt.format(grid[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if grid[i, j] < middle else "black")
                if (float(lam), int(c)) in marks:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.6))
        ax.set_xticks(range(len(classes)), [str(c) for c in classes])
        ax.set_yticks(range(len(l1s)), [fmt_l1(v) for v in l1s])
        ax.set(xlabel="number of classes C", ylabel="L1 strength λ", title=label)
        ax.title.set_fontsize(9)
        fig.colorbar(im, ax=ax, shrink=0.85)
    fig.suptitle(title + (f"\nred outline: {flag_label}" if marks else ""))
    return fig


@styled
def shift_panels(summaries: dict, *, title: str):
    """Seeds under distribution shift, one panel per regime: for every test set (in distribution first, then
    the shifts), the gap in accuracy between two seeds and the fraction of images on which they disagree,
    each the mean over seed pairs with its seed-level interval (error bars). ``summaries``: {regime name:
    ``summarize_shifts`` rows of one configuration}, columns shift, acc_gap(_low, _high), disagreement(_low,
    _high)."""
    names = list(summaries)
    widest = max(len(part) for part in summaries.values())
    fig, axes = plt.subplots(1, len(names), figsize=(0.55 * widest * len(names) + 1.8 * len(names) + 1.0, 4.2),
                             squeeze=False, sharey=True)
    series = (("acc_gap", "accuracy gap between two seeds", "C0", "s"),
              ("disagreement", "disagreement between two seeds", "C3", "o"))
    for ax, name in zip(axes[0], names):
        part = summaries[name].set_index("shift")
        shifts = list(part.index)
        x = np.arange(len(shifts))
        for k, (column, label, color, marker) in enumerate(series):
            mean = part[column].to_numpy(float)
            low, high = part[f"{column}_low"].to_numpy(float), part[f"{column}_high"].to_numpy(float)
            err = np.vstack([mean - low, high - mean])
            ax.errorbar(x + (k - 0.5) * 0.22, mean, yerr=np.where(np.isfinite(err), err, 0), fmt=marker, color=color,
                        markersize=4, capsize=2, linewidth=1, label=label)
        ax.axvspan(-0.5, 0.5, color="0.93", zorder=0)
        ax.set_xticks(x, shifts, rotation=45, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.grid(axis="y", alpha=0.25, linewidth=0.6)
    axes[0, 0].set_ylabel("fraction of test images")
    axes[0, 0].legend(loc="upper left", fontsize=7)
    fig.suptitle(title)
    return fig


REGIME_PANELS = (("pe", "params"), ("apc1", "params"), ("apc2", "params"), ("apc1", "grads"))


@styled
def regime_figure(summaries: dict, *, title: str, panels=REGIME_PANELS, spread: str | None = "ci"):
    """The paper's Figure 3.1 for several training regimes as small multiples: one row per regime
    (``summaries``: {regime name: ``summarize`` table}), one column per (metric, target) of ``panels``, each
    against λ with one line per C, its seed-level band and both nulls (``metric_plots.plot_metric``)."""
    names = list(summaries)
    fig, axes = plt.subplots(len(names), len(panels), figsize=(3.3 * len(panels) + 1.8, 2.5 * len(names) + 0.9),
                             squeeze=False, sharex=True)
    handles = []
    for i, name in enumerate(names):
        for j, (metric, target) in enumerate(panels):
            ax = axes[i, j]
            row = plot_metric(ax, summaries[name], metric, target, x="l1", spread=spread)
            handles = handles if len(handles) >= len(row) else row
            ax.set_title(f"{metric_label(metric, short=True)}, {TARGET_LABELS.get(target, target)}", fontsize=8)
            ax.set_ylabel(name if j == 0 else "", fontsize=8)
            if i < len(names) - 1:
                ax.set_xlabel("")
            else:
                ax.set_xlabel("λ (categorical axis)", fontsize=8)
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=7)
    fig.suptitle(title)
    return fig


SETTING_METRICS = {"accuracy": "test accuracy", "disagreement": "disagreement between seeds",
                   "cka": "CKA, first hidden layer", "cka_last": "CKA, last hidden layer",
                   "apc1_excess": "APC-1 above its structured null",
                   "barrier": "loss barrier, units aligned",
                   "apc_in": "APC, incoming weights", "apc_out": "APC, outgoing weights", "pe": "PE",
                   "apc_act": "APC, activations", "layer_cka": "CKA"}


@styled
def settings_figure(estimates: pd.DataFrame, *, title: str):
    """Seed-to-seed similarity across settings: one row per experiment, one column per metric of
    ``SETTING_METRICS`` (in the order of ``estimates``); each setting's mean with its 95% interval (error bar)
    and the metric's null (grey dash; APC-1 is drawn as its excess, so its null is 0). ``estimates``: columns ``experiment``, ``setting``,
    ``metric``, ``value``, ``low``, ``high``, ``null`` (``metrics.seed_similarity.similarity_estimates`` per
    setting)."""
    experiments = list(dict.fromkeys(estimates.experiment))
    metrics = [m for m in dict.fromkeys(estimates.metric) if m in SETTING_METRICS]
    fig, axes = plt.subplots(len(experiments), len(metrics), figsize=(2.7 * len(metrics), 2.4 * len(experiments)),
                             squeeze=False)
    for i, experiment in enumerate(experiments):
        part = estimates[estimates.experiment == experiment]
        settings = list(dict.fromkeys(part.setting))
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            rows = part[part.metric == metric].set_index("setting").reindex(settings)
            x = np.arange(len(settings))
            ax.errorbar(x, rows.value, yerr=[rows.value - rows.low, rows.high - rows.value], fmt="o", capsize=3)
            if rows.null.notna().any():
                ax.scatter(x, rows.null, marker="_", s=300, color=CHANCE_STYLE["color"], zorder=3,
                           label="null")
            ax.set_xticks(x, settings, fontsize=7, rotation=20 if max(map(len, settings)) > 6 else 0)
            ax.set_title(SETTING_METRICS[metric] if i == 0 else "", fontsize=8)
            ax.set_ylabel(experiment if j == 0 else "", fontsize=8)
    fig.suptitle(title)
    return fig

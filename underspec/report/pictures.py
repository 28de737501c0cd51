"""Pictures of data and networks: digits, units as images, training states, permutations and matchings,
gradients as images, embeddings and their trajectories. Each function draws what it is given (tables,
tensors) and returns a matplotlib ``Figure``; it never trains and never computes a metric it could be given.
Curves live in ``curves``, the study's figures in ``study_figures``.

Conventions (``style``): every figure's title states the data set, the grid slice and the number of seeds; a
metric is drawn with its spread and, where one exists, its null as a dashed grey line; one colour per seed
throughout the book (``seed_colors``). The settings apply per figure (``styled``), never globally.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..text import number
from .style import (BASE_TEXT, DIGIT_CMAP, DIVERGING, PAGE_WIDTH, as_numpy, columns_that_fit, fit_title, seed_colors,
                    styled, subtitle)


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
    cell = min(0.75, (PAGE_WIDTH - 0.4) / per_digit)  # at most the page's width
    fig, axes = plt.subplots(10, per_digit, figsize=(per_digit * cell + 0.4, 10 * cell + 0.5), squeeze=False)
    for d in range(10):
        idx = np.flatnonzero(y == d)[:per_digit]
        for c, ax in enumerate(axes[d]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(idx):
                ax.imshow(data.x_train[idx[c]].reshape(data.image_shape), cmap="gray_r", vmin=0, vmax=1)
            if c == 0:
                ax.set_ylabel(str(d), rotation=0, labelpad=10, fontsize=10)
    fig.suptitle(fit_title(f"{data.name}: the first {per_digit} training images of each digit "
                           f"({len(data.y_train):,} train / {len(data.y_test):,} test)"))
    return fig


@styled
def pixel_usage(fraction_nonzero: np.ndarray, data_name: str, shape=(28, 28)):
    """Where the data lives: the fraction of training images in which each pixel is non-zero."""
    frac = as_numpy(fraction_nonzero).reshape(shape)
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
def unit_images(w1_by_row, row_labels, *, title: str, shape=(28, 28), col_labels=None, per_image_scale=True,
                cell: float = 0.62):
    """Rows of W1 as images: ``w1_by_row`` (R, H, D), one figure row per network (or per version of one),
    one column per hidden unit. Red = positive weight, blue = negative, white = 0 (each image scaled to its
    own largest |weight| unless ``per_image_scale=False``). ``cell``: inches an image, less where the row
    would be wider than the page."""
    w = as_numpy(w1_by_row)
    rows, hidden = w.shape[:2]
    cell = min(cell, (PAGE_WIDTH - 1.2) / hidden)
    fig, axes = plt.subplots(rows, hidden, figsize=(cell * hidden + 1.2, cell * rows + 0.9), squeeze=False,
                             gridspec_kw=dict(wspace=0.04, hspace=0.04))
    fig.set_layout_engine("constrained", w_pad=0.01, h_pad=0.01, wspace=0.0, hspace=0.0)
    vmax = None if per_image_scale else _symmetric_limit(w)
    im = _image_grid(axes, w, shape, per_image_scale, vmax=vmax)
    for r, label in enumerate(row_labels):
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=BASE_TEXT)
    labels = col_labels if col_labels is not None else [str(j) for j in range(hidden)]
    for j, label in enumerate(labels):
        axes[0, j].set_title(label, fontsize=BASE_TEXT)
    if not per_image_scale:
        fig.colorbar(im, ax=axes, shrink=0.6, label="weight")
    fig.suptitle(fit_title(title))
    return fig


# ------------------------------------------------------------------------------------ explorer views

def _filter_row(fig, spec, w1: np.ndarray, label: str, col_labels=None, shape=(28, 28), per_row: int | None = None):
    """Unit images inside ``spec`` (a SubplotSpec), ``per_row`` a row (default: all in one row; more rows
    where there are more units); returns the axes."""
    hidden = w1.shape[0]
    per_row = min(per_row or hidden, hidden)
    rows = math.ceil(hidden / per_row)
    sub = spec.subgridspec(rows, per_row, wspace=0.05, hspace=0.25)
    axes = [fig.add_subplot(sub[j // per_row, j % per_row]) for j in range(hidden)]
    for r in range(rows):
        _image_grid([axes[r * per_row:(r + 1) * per_row]], w1[None, r * per_row:(r + 1) * per_row], shape)
    axes[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=BASE_TEXT)
    if col_labels is not None:
        for ax, text in zip(axes, col_labels):
            ax.set_title(text, fontsize=BASE_TEXT)
    return axes


@styled
def training_state(history: pd.DataFrame, w1, *, data_name: str, seed: int, l1: float, n_classes: int, epoch: int):
    """Learning curves of one configuration (all seeds faint, ``seed`` bold, ``epoch`` marked) above the
    ``seed``'s first-layer filters ``w1`` (H, 784) at that epoch."""
    h = history[(history.l1 == l1) & (history.n_classes == n_classes)]
    seeds = list(dict.fromkeys(h.seed))
    colors = seed_colors(seeds)
    w = as_numpy(w1)
    half = math.ceil(w.shape[0] / 2)
    fig = plt.figure(figsize=(PAGE_WIDTH, 6.2), layout="constrained")
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
    fig.suptitle(fit_title(f"Seed {seed} at epoch {epoch}: " + subtitle(data_name, seeds=seeds, l1=l1,
                                                                        n_classes=n_classes)
                           + "\nbottom: its first-layer weights (rows of W1) as 28x28 images, red > 0 > blue"))
    return fig


@styled
def permutation_view(w1, w1_permuted, perm, logits, logits_permuted, *, title: str):
    """A network and its hidden-unit permutation: both sets of filters, and both networks' logits on the
    same images plotted against each other (they lie on the diagonal)."""
    w, wp = as_numpy(w1), as_numpy(w1_permuted)
    a, b = as_numpy(logits).ravel(), as_numpy(logits_permuted).ravel()
    fig = plt.figure(figsize=(PAGE_WIDTH, 4.4), layout="constrained")
    spec = fig.add_gridspec(2, 2, width_ratios=[2.4, 1])
    per_row = math.ceil(w.shape[0] / 2) if w.shape[0] > 8 else None  # two rows of units: each image readable
    _filter_row(fig, spec[0, 0], w, "original", [str(j) for j in range(w.shape[0])], per_row=per_row)
    _filter_row(fig, spec[1, 0], wp, "permuted", [f"←{int(p)}" for p in as_numpy(perm)], per_row=per_row)
    ax = fig.add_subplot(spec[:, 1])
    ax.plot(a, b, ".", markersize=2, alpha=0.4)
    lim = [min(a.min(), b.min()), max(a.max(), b.max())]
    ax.plot(lim, lim, color="0.4", linewidth=0.8)
    ax.set(xlabel="logit, original network", ylabel="logit, permuted network",
           title=f"max |difference| = {np.abs(a - b).max():.1e}\nover {a.size:,} logits")
    fig.suptitle(fit_title(title + "\nunit i of the permuted network is unit perm[i] of the original (labels: ←perm[i])"))
    return fig


def correlation_limit(*matrices) -> float:
    """The colour limit of correlation heat maps: the largest |r| of the matrices themselves (not 1), so two
    pairs of networks whose correlations differ do not look the same on a +-1 scale."""
    values = np.concatenate([np.abs(as_numpy(m)).ravel() for m in matrices])
    values = values[np.isfinite(values)]
    return max(float(values.max()) if values.size else 1.0, 1e-6)


@styled
def correlation_heatmap(ax, r, *, title: str, xlabel: str, ylabel: str, limit: float | None = None):
    """One correlation matrix on ``ax`` (diverging, -limit..limit; ``limit``: default the matrix's own
    largest |r|, ``correlation_limit``); returns the image."""
    limit = correlation_limit(r) if limit is None else limit
    im = ax.imshow(as_numpy(r), cmap=DIVERGING, vmin=-limit, vmax=limit)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    n = as_numpy(r).shape
    ax.set_xticks(range(0, n[1], 3))
    ax.set_yticks(range(0, n[0], 3))
    return im


@styled
def matching_view(w1_a, w1_b_aligned, r, perm, *, signed: bool, seeds, title: str):
    """R1 between two networks before and after the Hungarian matching, and their matched filters.

    r: (H, H) Pearson correlations of the rows of W1 (a's units x b's units); perm: (H,) b's unit matched to
    each unit of a; w1_b_aligned: b's W1 already in a's order."""
    r = as_numpy(r)
    perm = as_numpy(perm).astype(int)
    after = r[:, perm]
    diag = np.diag(after)
    score = diag if signed else np.abs(diag)
    fig = plt.figure(figsize=(PAGE_WIDTH, 8.6), layout="constrained")
    spec = fig.add_gridspec(3, 1, height_ratios=[2.5, 1.6, 1.2])
    top = spec[0].subgridspec(1, 2)
    limit = correlation_limit(r)
    ax0 = fig.add_subplot(top[0, 0])
    correlation_heatmap(ax0, r, title="before: unit i vs unit j", xlabel=f"unit of seed {seeds[1]}",
                        ylabel=f"unit of seed {seeds[0]}", limit=limit)
    ax1 = fig.add_subplot(top[0, 1])
    im = correlation_heatmap(ax1, after, title="after matching: matched pairs\non the diagonal",
                             xlabel=f"matched unit of seed {seeds[1]}", ylabel=f"unit of seed {seeds[0]}",
                             limit=limit)
    fig.colorbar(im, ax=[ax0, ax1], shrink=0.9,
                 label=f"Pearson r of the W1 rows\n(scale ±{limit:.2f}: this pair's largest |r|)")
    ax2 = fig.add_subplot(spec[1])
    order = np.argsort(-score)
    ax2.bar(range(len(score)), diag[order], color=np.where(diag[order] >= 0, "C3", "C0"))
    ax2.axhline(0, color="0.3", linewidth=0.6)
    ax2.set_xticks(range(len(score)), [str(i) for i in order], fontsize=BASE_TEXT)
    ax2.set(ylim=(-1, 1), xlabel=f"unit of seed {seeds[0]} (sorted)", ylabel="r of the matched pair",
            title=f"{'APC (signed)' if signed else 'APC = mean |r|'} = {number(score.mean(), sign=False)}")
    sub = spec[2].subgridspec(2, 1, hspace=0.1)
    _filter_row(fig, sub[0], as_numpy(w1_a), f"seed {seeds[0]}")
    _filter_row(fig, sub[1], as_numpy(w1_b_aligned), f"seed {seeds[1]}\nmatched", [f"←{p}" for p in perm])
    fig.suptitle(fit_title(title + f"\nmatching on {'signed r' if signed else '|r| (the paper)'}; bars: red r > 0, "
                           "blue r < 0 (anti-correlated units paired)"))
    return fig


@styled
def epoch_gradient(w1_before, w1_after, *, lr: float, title: str, shape=(28, 28)):
    """One epoch's summed gradient of W1, recovered as (W1 before - W1 after) / lr (exact for plain SGD):
    each unit's gradient as an image, and the mean |gradient| over units as a map of the image."""
    g = (as_numpy(w1_before) - as_numpy(w1_after)) / lr
    fig = plt.figure(figsize=(PAGE_WIDTH, 3.5), layout="constrained")
    spec = fig.add_gridspec(2, 2, width_ratios=[2.6, 1])
    half = math.ceil(g.shape[0] / 2)
    _filter_row(fig, spec[0, 0], g[:half], "units 0-7", [str(j) for j in range(half)])
    _filter_row(fig, spec[1, 0], g[half:], "units 8-15", [str(j) for j in range(half, g.shape[0])])
    ax = fig.add_subplot(spec[:, 1])
    im = ax.imshow(np.abs(g).mean(0).reshape(shape), cmap="magma")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.8, label="mean |summed gradient|\nover units")
    ax.set_title(f"‖gradient‖ = {np.linalg.norm(g):.3g}")
    fig.suptitle(fit_title(title + "\nthe epoch's summed W1 gradient, (W1 before − W1 after) / lr; red > 0 > blue"))
    return fig


@styled
def embedding_scatter(coords, labels, epoch: int, *, explained=None, title: str, trail: bool = True):
    """Probe embeddings projected on 2 principal components at ``epoch``, coloured by digit, with each
    digit's mean path from epoch 0 up to ``epoch``. coords: (E+1, P, 2); labels: (P,)."""
    c = as_numpy(coords)
    y = as_numpy(labels).astype(int)
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
    ev = as_numpy(explained) if explained is not None else None
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
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.7))
    for ax, r, title, xlabel in zip(axes, (r_left, r_right), titles, xlabels):
        im = correlation_heatmap(ax, r, title=title, xlabel=xlabel, ylabel=ylabel, limit=limit)
    fig.colorbar(im, ax=list(axes), shrink=0.85,
                 label=f"Pearson r of the W1 rows\n(scale ±{limit:.2f}: the largest |r| of both)")
    fig.suptitle(fit_title(suptitle))
    return fig


@styled
def aligned_filters(w1_aligned, seeds, r_matched=None, *, title: str):
    """Every seed's W1 rows put in the reference seed's unit order (S, H, D): one row per seed, so a
    column shows one matched unit across seeds. ``r_matched`` (S, H): each match's correlation with the
    reference, printed under the images of the last row as the mean over seeds."""
    labels = None
    if r_matched is not None:
        r = np.abs(as_numpy(r_matched))[1:]
        labels = [f"|r|\n{v:.2f}" for v in r.mean(0)]  # two lines: as narrow as the images
    return unit_images(w1_aligned, [f"seed {s}" for s in seeds], title=title, col_labels=labels)


@styled
def pixel_maps(maps, labels, *, title: str, cbar_label: str, shape=(28, 28), mask=None, ncols: int | None = None):
    """Several non-negative 28x28 maps (K, 784) side by side, on one colour scale, ``ncols`` a row at most (fewer
    where they would be wider than the page); ``mask`` (784,) bool outlines the pixels that are zero in every
    training image."""
    m = as_numpy(maps)
    k = m.shape[0]
    ncols = min(ncols or k, columns_that_fit(k, 1.8, beside=1.2))  # maps wrap onto more rows at the page's width
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.8 * ncols + 1.2, 2.0 * nrows + 0.8), squeeze=False)
    vmax = float(np.nanquantile(m, 0.995)) or 1.0
    im = None
    for ax, img, label in zip(axes.flat, m, labels):
        im = ax.imshow(img.reshape(shape), cmap="magma", vmin=0, vmax=vmax)
        if mask is not None:
            ax.contour(as_numpy(mask).reshape(shape), levels=[0.5], colors="cyan", linewidths=0.6)
        ax.set_title(label, fontsize=BASE_TEXT)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[k:]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=cbar_label)
    fig.suptitle(fit_title(title))
    return fig


@styled
def identity_scatter(x, y, *, title: str, xlabel: str, ylabel: str, max_points: int = 20000):
    """y against x with the identity line, and the largest difference in the title."""
    a, b = as_numpy(x).ravel(), as_numpy(y).ravel()
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
    ax.legend(handles=handles, title="digit", loc=loc, ncol=2, fontsize=BASE_TEXT, title_fontsize=BASE_TEXT)


@styled
def trajectory_panels(coords, labels, seeds, *, explained=None, title: str, ncols: int = 4):
    """The paper's representation view, one panel per seed, each in its own PCA basis: the probe images at
    the final epoch (dots, coloured by digit) and each digit's mean from epoch 0 to the end (line).
    coords: (S, E+1, P, 2); labels: (P,); explained: (S, 2) or None."""
    c = as_numpy(coords)
    y = as_numpy(labels).astype(int)
    digits = np.unique(y)
    cmap = plt.get_cmap(DIGIT_CMAP)
    s = c.shape[0]
    ncols = min(ncols, columns_that_fit(s, 2.4))  # panels wrap onto more rows at the page's width
    nrows = math.ceil(s / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(PAGE_WIDTH, 2.43 * ncols), 2.4 * nrows + 0.6), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= s:
            ax.axis("off")
            continue
        ax.scatter(c[k, -1, :, 0], c[k, -1, :, 1], c=[cmap(d % 10) for d in y], s=3, alpha=0.35, linewidths=0)
        for d in digits:
            path = c[k][:, y == d].mean(1)
            ax.plot(path[:, 0], path[:, 1], color=cmap(d % 10), linewidth=1.2)
            ax.plot(*path[-1], "o", color=cmap(d % 10), markeredgecolor="black", markersize=4.5)
        ev = as_numpy(explained)[k] if explained is not None else None
        ax.set_title(f"seed {seeds[k]}" + (f" (PC1 {ev[0]:.0%}, PC2 {ev[1]:.0%})" if ev is not None else ""),
                     fontsize=BASE_TEXT + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("PC 1", fontsize=BASE_TEXT)
        ax.set_ylabel("PC 2", fontsize=BASE_TEXT)
    spare = s < axes.size  # an empty panel holds the legend, else the last one does
    _digit_legend(axes.flat[s if spare else s - 1], digits, loc="center" if spare else "best")
    fig.suptitle(fit_title(title))
    return fig


@styled
def shared_view(coords, labels, seeds, *, title: str, explained=None, ncols: int = 5):
    """All seeds in one PCA basis (after aligning their units), one small panel per digit on shared axes: in
    each, every seed's mean of that digit from epoch 0 (open circle) to the end of training (filled dot), one
    colour per seed, and the other digits' final means in light grey for orientation. A digit whose seeds
    end on one spot is represented alike. coords: (S, E+1, P, 2); labels: (P,); explained: (2,) or None."""
    c = as_numpy(coords)
    y = as_numpy(labels).astype(int)
    digits = np.unique(y)
    colors = seed_colors(seeds)
    means = np.stack([c[:, :, y == d].mean(2) for d in digits], 1)  # (S, digits, E+1, 2)
    ncols = min(ncols, columns_that_fit(len(digits), 1.8))  # panels wrap onto more rows at the page's width
    nrows = math.ceil(len(digits) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(PAGE_WIDTH, 1.82 * ncols), 1.9 * nrows + 1.5), squeeze=False,
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
        ax.set_title(f"digit {digits[k]}", fontsize=BASE_TEXT + 1)
        ax.tick_params(labelsize=BASE_TEXT)
        ax.grid(alpha=0.2, linewidth=0.5)
    ev = as_numpy(explained) if explained is not None else None
    for ax in axes[-1]:
        ax.set_xlabel("shared PC 1" + (f" ({ev[0]:.0%})" if ev is not None else ""), fontsize=BASE_TEXT)
    for ax in axes[:, 0]:
        ax.set_ylabel("shared PC 2" + (f" ({ev[1]:.0%})" if ev is not None else ""), fontsize=BASE_TEXT)
    handles = [plt.Line2D([], [], marker="o", linestyle="-", color=colors[int(s)], label=f"seed {s}") for s in seeds]
    handles += [plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="0.3",
                           label="epoch 0"),
                plt.Line2D([], [], marker=".", linestyle="", color="0.8", label="other digits (final)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), frameon=False,
               fontsize=BASE_TEXT)
    fig.suptitle(fit_title(title + "\none panel per digit: each seed's mean of that digit from epoch 0 (open) to the "
                           "end (filled)"))
    return fig


# ------------------------------------------------------------------------------- grids and regimes



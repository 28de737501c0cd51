"""Every figure of the book: functions that draw what they are given (tables, tensors, a Run) and return a
matplotlib ``Figure``. A figure never trains and never computes a metric it could be given; the small
summaries it needs to draw (a mean over seeds, a PCA basis handed over by the caller) are the caller's.

Conventions (honest figures): every figure's title states the data set, the grid slice and the number of
seeds; a metric is drawn with its spread over seed pairs and, where one exists, its chance level as a
dashed grey line. One colour per seed throughout the book (``seed_colors``).
"""

from __future__ import annotations

import base64
import io
import math

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib import animation
from matplotlib.colors import TwoSlopeNorm

CHANCE_STYLE = dict(color="0.35", linestyle="--", linewidth=1.2)
DIVERGING = "RdBu_r"
DIGIT_CMAP = "tab10"

plt.rcParams.update({
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "figure.titlesize": 11,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
})


# --------------------------------------------------------------------------------------------- helpers

def seed_colors(seeds) -> dict[int, tuple]:
    """One colour per seed, in the order given (the reference seed first)."""
    cmap = plt.get_cmap("tab10")
    return {int(s): cmap(i % 10) for i, s in enumerate(seeds)}


def fmt_l1(value: float) -> str:
    """λ as the book writes it: 0, 0.001, 0.0025, ..."""
    return "0" if value == 0 else f"{value:g}"


def describe(data_name: str, *, seeds=None, l1=None, n_classes=None, epochs=None, extra: str = "") -> str:
    """The standard figure subtitle: data set, number of seeds, the grid slice shown, epochs."""
    parts = [str(data_name)]
    if seeds is not None:
        n = seeds if isinstance(seeds, int) else len(list(seeds))
        parts.append(f"{n} seed{'s' if n != 1 else ''}")
    for name, value in (("λ", l1), ("C", n_classes)):
        if value is None:
            continue
        if isinstance(value, (list, tuple, np.ndarray)):
            shown = [fmt_l1(v) if name == "λ" else str(v) for v in value]
            parts.append(f"{name} ∈ {{{', '.join(shown)}}}" if len(shown) > 1 else f"{name} = {shown[0]}")
        else:
            parts.append(f"{name} = {fmt_l1(value) if name == 'λ' else value}")
    if epochs is not None:
        parts.append(f"{epochs} epochs")
    if extra:
        parts.append(extra)
    return " · ".join(parts)


def run_description(run, **fixed) -> str:
    """``describe`` for a Run: its data set, seeds and epochs, plus the fixed grid values."""
    return describe(run.data_name, seeds=run.grid.seeds, epochs=run.grid.epochs, **fixed)


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


def to_html_image(fig, alt: str = "figure") -> str:
    """A figure as an inline ``<img>`` tag (PNG, base64), and the figure closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def png_bytes(fig) -> bytes:
    """A figure rendered to PNG bytes (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------------------- data and model

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
    fig.suptitle("Learning curves: " + describe(data_name, seeds=seeds, l1=l1, n_classes=n_classes,
                                                  epochs=int(h.epoch.max())))
    return fig


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
    fig.suptitle("Final test accuracy, one dot per seed: " + describe(
        data_name, seeds=seeds, epochs=int(history.epoch.max())))
    return fig


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


def bars_with_points(values: pd.DataFrame, *, x: str, y: str, title: str, ylabel: str, chance: float | None = None,
                     chance_label: str = "chance", order=None, color="C0"):
    """Mean (bar) and every value (dots) of ``y`` for each category ``x``."""
    order = list(order) if order is not None else list(dict.fromkeys(values[x]))
    fig, ax = plt.subplots(figsize=(1.2 * len(order) + 2.5, 3.4))
    rng = np.random.default_rng(0)
    for i, key in enumerate(order):
        v = values.loc[values[x] == key, y].to_numpy(float)
        ax.bar(i, np.nanmean(v), color=color, alpha=0.35, width=0.6)
        ax.plot(i + rng.uniform(-0.15, 0.15, len(v)), v, "o", color=color, markersize=3)
    if chance is not None:
        ax.axhline(chance, **CHANCE_STYLE, label=chance_label)
        ax.legend(loc="best")
    ax.set_xticks(range(len(order)), [str(k) for k in order])
    ax.set(ylabel=ylabel, xlabel=x)
    ax.set_title(title)
    return fig

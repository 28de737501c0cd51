"""Curves and bars of what training and comparing give: learning curves, accuracy per configuration,
gradient norms, disagreement between seeds, CKA over training, loss along the path between two networks.
Each function draws what it is given (tables, tensors) and returns a matplotlib ``Figure``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..text import formatted
from .style import (BASE_TEXT, CELL_TEXT, CHANCE_STYLE, PAGE_WIDTH, as_numpy, cell_text, columns_that_fit, fit_title,
                    fmt_l1, seed_colors, styled, subtitle)


@styled
def learning_curves(history: pd.DataFrame, *, data_name: str, l1: float, n_classes: int, epoch: int | None = None):
    """Loss and accuracy per epoch, training (dashed, running average over the epoch) and test (solid), one
    colour per seed; ``history`` holds the seeds' rows for one (l1, C)."""
    h = history[(history.l1 == l1) & (history.n_classes == n_classes)]
    seeds = list(dict.fromkeys(h.seed))
    colors = seed_colors(seeds)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.9))
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
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), frameon=False)
    fig.suptitle(fit_title("Learning curves: " + subtitle(data_name, seeds=seeds, l1=l1, n_classes=n_classes,
                                                            epochs=int(h.epoch.max()))))
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
    ncols = columns_that_fit(len(l1s), 2.4)  # panels wrap onto more rows at the page's width
    nrows = math.ceil(len(l1s) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(PAGE_WIDTH, 2.43 * ncols), 2.5 * nrows + 0.6), squeeze=False,
                             sharey=True)
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
    fig.suptitle(fit_title("Final test accuracy, one dot per seed: " + subtitle(
        data_name, seeds=seeds, epochs=int(history.epoch.max()))))
    return fig


@styled
def grad_norm_curves(history: pd.DataFrame, *, data_name: str, n_classes: int, l1_floor: dict | None = None):
    """The mean per-step norm of the W1 gradient in each epoch, one colour per λ: the mean over seeds as
    a line and the range over seeds as a band (log scale). ``l1_floor``: {λ: norm of the L1 term alone},
    drawn dotted in the same colour."""
    h = history[history.n_classes == n_classes]
    l1s = sorted(h.l1.unique())
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(l1s)))
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.2))
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
    ax.set_title(fit_title("Gradient norm during training (band: range over seeds; dotted: ‖λ·sign(W1)‖)\n"
                           + subtitle(data_name, seeds=h.seed.nunique(), n_classes=n_classes,
                                      epochs=int(h.epoch.max())), fontsize=10))
    return fig


@styled
def disagreement_matrix(matrix, seeds, *, title: str, label: str = "fraction of test images"):
    """Pairwise disagreement between seeds (S, S), with the value in each cell where the cells are large
    enough for ``CELL_TEXT`` (else the colour bar gives the values); never wider than the page."""
    m = as_numpy(matrix)
    side = min(PAGE_WIDTH - 1.4, 0.62 * len(seeds) + 1.2)  # never wider than the page
    fig, ax = plt.subplots(figsize=(side + 1.4, side * 0.9 + 0.7))
    off = m[~np.eye(len(m), dtype=bool)]
    im = ax.imshow(m, cmap="viridis", vmin=0, vmax=max(float(np.nanmax(off)), 1e-6) if off.size else 1)
    ax.set_xticks(range(len(seeds)), [str(s) for s in seeds], rotation=45)
    ax.set_yticks(range(len(seeds)), [str(s) for s in seeds])
    ax.set(xlabel="seed", ylabel="seed")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(fit_title(title, fontsize=10, width=side + 1.2))
    texts = [formatted(v, ".3f") for v in off]
    if cell_text(fig, ax, m.shape, texts):  # else the colour bar gives the values
        for i in range(len(m)):
            for j in range(len(m)):
                if i != j:
                    ax.text(j, i, formatted(m[i, j], ".3f"), ha="center", va="center", fontsize=CELL_TEXT,
                            color="white" if m[i, j] < 0.6 * np.nanmax(off) else "black")
    return fig


@styled
def bars_with_points(values: pd.DataFrame, *, x: str, y: str, title: str, ylabel: str, chance: float | None = None,
                     chance_label: str = "chance", order=None, color="C0", xlabel: str | None = None):
    """Mean (bar) and every value (dots) of ``y`` for each category ``x``."""
    order = list(order) if order is not None else list(dict.fromkeys(values[x]))
    fig, ax = plt.subplots(figsize=(min(PAGE_WIDTH, 1.4 * len(order) + 2.2), 3.6))
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
    ax.set_title(fit_title(title, fontsize=10))
    return fig


@styled
def distance_comparison(distances: pd.DataFrame, *, title: str, ylabel: str = "‖θ_a − θ_b‖ (all parameters)"):
    """Distances between parameter vectors by kind of pair (column ``kind``, values ``distance``): every
    pair as a dot, the mean as a bar."""
    return bars_with_points(distances, x="kind", y="distance", title=title, ylabel=ylabel, xlabel="")


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
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.4))
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
    ax.legend(loc="lower right", ncol=2, fontsize=BASE_TEXT)
    ax.set_title(fit_title(title, fontsize=10))
    return fig


@styled
def path_curves(t, curves: dict, *, title: str, chance_acc: float | None = None):
    """Test loss (left) and accuracy (right) along the straight line between two networks' weights, for
    several alignments: ``curves`` maps a name to {"loss": (pairs, T), "acc": (pairs, T)}. The mean over
    pairs is a line, the range a band."""
    t = as_numpy(t)
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.7))
    for k, (name, c) in enumerate(curves.items()):
        for ax, key in zip(axes, ("loss", "acc")):
            v = as_numpy(c[key])
            ax.plot(t, v.mean(0), color=f"C{k}", label=name, linewidth=1.6)
            ax.fill_between(t, v.min(0), v.max(0), color=f"C{k}", alpha=0.18, linewidth=0)
    if chance_acc is not None:
        axes[1].axhline(chance_acc, **CHANCE_STYLE, label="majority class")
    axes[0].set(xlabel="t   (a at t = 0, b at t = 1)", ylabel="test cross-entropy",
                title="loss along (1 − t)·θ_a + t·θ_b")
    axes[1].set(xlabel="t", ylabel="test accuracy", title="accuracy along the path")
    axes[1].legend(loc="lower center")
    fig.suptitle(fit_title(title))
    return fig

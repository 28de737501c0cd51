"""The study's figures: member tables as heat maps, seeds under shift per regime, Figure 3.1 by regime, and
seed similarity across settings. Each function draws what it is given and returns a matplotlib ``Figure``.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..metrics.seed_similarity import METRIC_NAMES
from ..text import formatted
from .metric_plots import plot_metric
from .style import (CELL_TEXT, CHANCE_STYLE, PAGE_WIDTH, TARGET_LABELS, cell_text, fit_title, fmt_l1, metric_label,
                    styled)


@styled
def member_heatmaps(members: pd.DataFrame, columns: dict, *, title: str, flagged: pd.DataFrame | None = None,
                    flag_label: str = "flagged", ncols: int = 2):
    """Per-network values of a ``member_table`` as small heat maps, one per column: the mean over seeds for
    every λ (rows) and C (columns), written in each cell where the cells are large enough for ``CELL_TEXT``
    (else the colour bars give the values). ``columns``: {column: (label, format)}, e.g.
    {"rel_change": ("‖W1 − W1₀‖ / ‖W1₀‖", "{:.2f}")}. ``flagged``: configurations (columns l1, n_classes) to
    outline in red, named ``flag_label`` in the legend; ``ncols`` panels a row."""
    means = members.groupby(["l1", "n_classes"])[list(columns)].mean()
    l1s, classes = sorted(members.l1.unique()), sorted(members.n_classes.unique())
    ncols = min(ncols, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, (0.42 * len(l1s) + 1.6) * nrows + 0.6), squeeze=False)
    for ax in axes.flat[len(columns):]:
        ax.axis("off")
    marks = set() if flagged is None else {(float(a), int(b)) for a, b in zip(flagged.l1, flagged.n_classes)}
    panels = []
    for ax, (column, (label, fmt)) in zip(axes.flat, columns.items()):
        grid = means[column].unstack("n_classes").reindex(index=l1s, columns=classes).to_numpy(float)
        im = ax.imshow(grid, cmap="viridis", aspect="auto")
        panels.append((ax, grid, fmt))
        for i, lam in enumerate(l1s):
            for j, c in enumerate(classes):
                if (float(lam), int(c)) in marks:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.6))
        ax.set_xticks(range(len(classes)), [str(c) for c in classes])
        ax.set_yticks(range(len(l1s)), [fmt_l1(v) for v in l1s])
        ax.set(xlabel="number of classes C", ylabel="L1 strength λ", title=label)
        ax.title.set_fontsize(9)
        fig.colorbar(im, ax=ax, shrink=0.85)
    fig.suptitle(fit_title(title + (f"\nred outline: {flag_label}" if marks else "")))
    texts = [formatted(v, fmt) for _, grid, fmt in panels for v in grid.ravel()]
    if panels and cell_text(fig, panels[0][0], panels[0][1].shape, texts):  # else the colour bars give the values
        for ax, grid, fmt in panels:
            finite = grid[np.isfinite(grid)]
            middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
            for (i, j), value in np.ndenumerate(grid):
                ax.text(j, i, formatted(value, fmt), ha="center", va="center", fontsize=CELL_TEXT,
                        color="white" if value < middle else "black")
    return fig


@styled
def shift_panels(summaries: dict, *, title: str, ncols: int = 2):
    """Seeds under distribution shift, one panel per regime: for every test set (in distribution first, then
    the shifts), the gap in accuracy between two seeds and the fraction of images on which they disagree,
    each the mean over seed pairs with its seed-level interval (error bars). ``summaries``: {regime name:
    ``summarize_shifts`` rows of one configuration}, columns shift, acc_gap(_low, _high), disagreement(_low,
    _high). ``ncols`` panels a row."""
    names = list(summaries)
    ncols = min(ncols, len(names))  # small multiples that wrap: readable at the page's width
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 3.6 * nrows + 0.6), squeeze=False, sharey=True)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    series = (("acc_gap", "accuracy gap between two seeds", "C0", "s"),
              ("disagreement", "disagreement between two seeds", "C3", "o"))
    for ax, name in zip(axes.flat, names):
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
        ax.set_xticks(x, shifts, rotation=40, ha="right")
        ax.set_title(name)
        ax.grid(axis="y", alpha=0.25, linewidth=0.6)
    for row in axes:
        row[0].set_ylabel("fraction of test images")
    axes[0, 0].legend(loc="upper left")
    fig.suptitle(title)
    return fig


REGIME_PANELS = (("pe", "params"), ("apc1", "params"), ("apc2", "params"), ("apc1", "grads"))


@styled
def regime_figure(summaries: dict, *, title: str, panels=REGIME_PANELS, spread: str | None = "ci", ncols: int = 2):
    """The paper's Figure 3.1 for several training regimes as small multiples: one block per regime
    (``summaries``: {regime name: ``summarize`` table}, its name over it), in it one panel per (metric, target)
    of ``panels``, ``ncols`` a row so that they keep their size at the page's width, each against λ with one
    line per C, its seed-level band and both nulls (``metric_plots.plot_metric``); one legend under all."""
    names = list(summaries)
    ncols = min(ncols, len(panels))
    rows = math.ceil(len(panels) / ncols)
    fig = plt.figure(figsize=(PAGE_WIDTH, (2.15 * rows + 0.45) * len(names) + 1.4))
    blocks = np.atleast_1d(fig.subfigures(len(names), 1))
    handles = []
    for name, block in zip(names, blocks):
        axes = block.subplots(rows, ncols, squeeze=False, sharex=True)
        for ax in axes.flat[len(panels):]:
            ax.axis("off")
        for k, (ax, (metric, target)) in enumerate(zip(axes.flat, panels)):
            row = plot_metric(ax, summaries[name], metric, target, x="l1", spread=spread)
            handles = handles if len(handles) >= len(row) else row
            ax.set_title(f"{metric_label(metric, short=True)}, {TARGET_LABELS.get(target, target)}", fontsize=9)
            ax.set_ylabel(metric_label(metric, short=True))
            ax.set_xlabel("λ (categorical axis)" if k >= len(panels) - ncols else "")
        block.suptitle(name, fontsize=10, fontweight="bold")
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    fig.suptitle(fit_title(title))
    return fig


@styled
def settings_figure(estimates: pd.DataFrame, *, title: str, ncols: int = 3):
    """Seed-to-seed similarity across settings: for every experiment a block of panels, one per metric of
    ``METRIC_NAMES`` (in the order of ``estimates``), ``ncols`` a row so that they stay readable at the page's
    width; each setting's mean with its 95% interval (error bar) and the metric's null (grey dash; APC-1 is
    drawn as its excess, so its null is 0). ``estimates``: columns ``experiment``, ``setting``, ``metric``,
    ``value``, ``low``, ``high``, ``null`` (``metrics.seed_similarity.similarity_estimates`` per setting)."""
    experiments = list(dict.fromkeys(estimates.experiment))
    metrics = [m for m in dict.fromkeys(estimates.metric) if m in METRIC_NAMES]
    ncols = min(ncols, len(metrics))
    block = math.ceil(len(metrics) / ncols)  # rows per experiment
    fig, axes = plt.subplots(block * len(experiments), ncols, figsize=(PAGE_WIDTH, 2.3 * block * len(experiments) + 0.8),
                             squeeze=False)
    for i, experiment in enumerate(experiments):
        part = estimates[estimates.experiment == experiment]
        settings = list(dict.fromkeys(part.setting))
        panels = axes[i * block:(i + 1) * block].flat
        for j, ax in enumerate(panels):
            if j >= len(metrics):
                ax.axis("off")
                continue
            metric = metrics[j]
            rows = part[part.metric == metric].set_index("setting").reindex(settings)
            x = np.arange(len(settings))
            ax.errorbar(x, rows.value, yerr=[rows.value - rows.low, rows.high - rows.value], fmt="o", capsize=3)
            if rows.null.notna().any():
                ax.scatter(x, rows.null, marker="_", s=300, color=CHANCE_STYLE["color"], zorder=3,
                           label="null")
            ax.set_xticks(x, settings, rotation=25 if max(map(len, settings)) > 6 else 0,
                          ha="right" if max(map(len, settings)) > 6 else "center")
            ax.set_title(METRIC_NAMES[metric])
            if j % ncols == 0:
                # wrapped: a long experiment name ran past the panel's height and was cut at the page's edge
                ax.set_ylabel(textwrap.fill(experiment, 24) if j == 0 else "", fontweight="bold" if j == 0 else None)
    fig.suptitle(title)
    return fig

"""The figures of the chapter "How many seeds?": the how-many-seeds curves, the setting summaries and what
each separates, the laws of seed variance, the kernels across widths and the PCA surrogate. Each draws the
tables it is given (``underspec.studies.seeds`` and ``seed_verdicts`` compute them) and returns a Figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..text import fmt_l1, formatted
from .style import CELL_TEXT, CHANCE_STYLE, PAGE_WIDTH, fit_title, styled

METRIC_TITLES = {"accuracy": "test accuracy", "churn": "churn (disagreement)", "ece": "calibration error (ECE)",
                 "alpha_hat": "alpha-hat (each seed vs the others)"}


def _bars(ax, x, table: pd.DataFrame, *, label=None, color=None, marker="o", value="value", low="low", high="high",
          line: bool = True):
    v, lo, hi = (table[c].to_numpy(float) for c in (value, low, high))
    err = np.vstack([v - np.where(np.isfinite(lo), lo, v), np.where(np.isfinite(hi), hi, v) - v])
    return ax.errorbar(x, v, yerr=err, fmt=marker + ("-" if line else ""), capsize=3, label=label, color=color,
                       markersize=4)


@styled
def seed_curves(curves: dict[str, pd.DataFrame], *, title: str, resolution: float, paper_seeds: int):
    """alpha-hat against the number of seeds M of the reference: two disjoint M-seed references (left) and a
    held-out seed against M (right). ``curves``: {label: ``SeedStudy.curves()``-like table} (one colour each):
    points the mean over draws with the seed interval, a band the 2.5-97.5% spread of the draws, dashes the
    exchangeable-seeds null (``null`` column), dots the grid's resolution."""
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.2), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, kind in zip(axes, ("two references", "held-out")):
        for color, (label, table) in zip(colors, curves.items()):
            part = table[table.kind == kind].sort_values("m")
            if part.empty:
                continue
            ax.fill_between(part.m, part.spread_low, part.spread_high, color=color, alpha=0.15, linewidth=0)
            _bars(ax, part.m, part, label=label, color=color)
            if "null" in part:
                ax.plot(part.m, part["null"], **{**CHANCE_STYLE, "color": color, "linewidth": 1})
        ax.axhline(resolution, color="0.5", linestyle=":", linewidth=1)
        ax.axvline(paper_seeds, color="0.7", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="seeds in the reference, M", title="two disjoint M-seed references" if kind == "two references"
               else "one held-out seed vs M seeds")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].set_ylabel("alpha-hat (trimmed share)")
    axes[0].legend(loc="upper right")
    fig.suptitle(fit_title(title))
    return fig


@styled
def setting_summaries(estimates: pd.DataFrame, nulls: pd.DataFrame, *, title: str):
    """Each setting summary against C, one line per lambda, with intervals; grey dashes: the null of each
    (``SeedStudy.setting_nulls``), the mean over lambdas."""
    metrics = list(METRIC_TITLES)
    fig, axes = plt.subplots(2, 2, figsize=(PAGE_WIDTH, 5.4))
    l1s = sorted(estimates.l1.unique())
    for ax, metric in zip(axes.flat, metrics):
        part = estimates[estimates.metric == metric]
        for i, lam in enumerate(l1s):
            line = part[part.l1 == lam].sort_values("n_classes")
            _bars(ax, line.n_classes + (i - len(l1s) / 2) * 0.06, line, label=f"λ = {fmt_l1(lam)}")
        null = nulls[nulls.metric == metric].groupby("n_classes")["null"].mean()
        ax.plot(null.index, null.to_numpy(), **CHANCE_STYLE)
        ax.set(title=METRIC_TITLES[metric], xlabel="number of classes C")
    axes.flat[0].legend(ncol=2, fontsize=8)
    fig.suptitle(fit_title(title))
    return fig


@styled
def separation_matrix(shares: pd.DataFrame, *, title: str):
    """The share of the setting pairs the column's summary cannot tell apart that the row's tells apart (a
    95% interval separates 5% of equal pairs by chance: the null)."""
    names = list(METRIC_TITLES)
    grid = np.full((len(names), len(names)), np.nan)
    for r in shares.itertuples():
        grid[names.index(r.metric), names.index(r.other)] = r.share
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.7, 3.6))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=max(0.1, float(np.nanmax(grid)) if np.isfinite(grid).any() else 1))
    short = ["accuracy", "churn", "ECE", "alpha-hat"]
    ax.set_xticks(range(len(names)), short)
    ax.set_yticks(range(len(names)), short)
    ax.set(xlabel="cannot separate ...", ylabel="... what this separates")
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            ax.text(j, i, formatted(v, "{:.2f}"), ha="center", va="center", fontsize=CELL_TEXT,
                    color="white" if v < 0.5 * np.nanmax(grid) else "black")
    fig.colorbar(im, ax=ax, shrink=0.85, label="share of pairs (chance: 0.05)")
    fig.suptitle(fit_title(title, width=PAGE_WIDTH * 0.7))
    return fig


@styled
def seed_laws(laws: pd.DataFrame, sources: pd.DataFrame, *, title: str, margin_share: float):
    """Left: disagreement against test error per setting (bars: the gap's interval), the equality y = x dashed.
    Middle: observed against predicted seed SD of accuracy (bars: the ratio's interval), y = x dashed. Right:
    disagreement per source of randomness with its interval; dashes: both seeds' level, band: +- the margin."""
    fig, axes = plt.subplots(1, 3, figsize=(PAGE_WIDTH, 2.9))
    ax = axes[0]
    for setting, marker in (("grid", "o"), ("many", "s")):
        part = laws[laws.setting == setting]
        if part.empty:
            continue
        y = part.error + part.gap
        ax.errorbar(part.error, y, yerr=np.vstack([part.gap - part.gap_low, part.gap_high - part.gap]), fmt=marker,
                    markersize=4, capsize=2, label="paper grid" if setting == "grid" else "most seeds")
    top = float(max(laws.error.max(), (laws.error + laws.gap_high).max()))
    ax.plot([0, top], [0, top], **CHANCE_STYLE)
    ax.set(xlabel="test error", ylabel="disagreement", title="disagreement equality")
    ax.legend(fontsize=8)
    ax = axes[1]
    yerr = np.vstack([(laws.ratio - laws.ratio_low) * laws.predicted_sd, (laws.ratio_high - laws.ratio) * laws.predicted_sd])
    ax.errorbar(laws.predicted_sd, laws.ratio * laws.predicted_sd, yerr=yerr, fmt="o", markersize=4, capsize=2)
    top = float(np.nanmax(np.r_[laws.predicted_sd, laws.ratio_high * laws.predicted_sd]))
    ax.plot([0, top], [0, top], **CHANCE_STYLE)
    ax.set(xlabel="predicted SD (independent images)", ylabel="observed SD over seeds", title="Jordan's spread")
    ax = axes[2]
    x = np.arange(len(sources))
    _bars(ax, x, sources, marker="o", line=False)
    both = float(sources.value.iloc[0])
    ax.axhline(both, **CHANCE_STYLE)
    ax.axhspan(both * (1 - margin_share), both * (1 + margin_share), color="0.85")
    ax.set_xticks(x, [s.replace(" (the paper)", "").replace("one-ulp ", "ulp ") for s in sources.source],
                  rotation=25, ha="right")
    ax.set(ylabel="disagreement", title="sources of randomness")
    fig.suptitle(fit_title(title))
    return fig


@styled
def kernel_figure(alignment: pd.DataFrame, moved: pd.DataFrame, *, title: str):
    """Left: alignment between seeds of the NTK and the conjugate kernel against width, before training (the
    null: the pair untrained, dashed) and after, with intervals. Right: how far each seed's kernel moved from
    init against the parameters' distance from init, one colour per width."""
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.2))
    ax = axes[0]
    for kernel, color in (("ntk", "C0"), ("ck", "C1")):
        for record, style in (("init", "--"), ("final", "-")):
            part = alignment[(alignment.kernel == kernel) & (alignment.record == record)].sort_values("hidden")
            bars = _bars(ax, part.hidden, part, color=color,
                         label=f"{'NTK' if kernel == 'ntk' else 'conjugate kernel'}, {'untrained' if record == 'init' else 'trained'}")
            bars[0].set_linestyle(style)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set(xlabel="hidden units", ylabel="centred alignment between seeds", title="kernels of two seeds")
    ax.legend(fontsize=8)
    ax = axes[1]
    widths = sorted(moved.hidden.unique())
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(widths)))
    for color, width in zip(colors, widths):
        for kernel, marker in (("ntk", "o"), ("ck", "^")):
            part = moved[(moved.hidden == width) & (moved.kernel == kernel)]
            ax.scatter(part.distance, part.movement, color=color, marker=marker, s=16,
                       label=f"{width}" if kernel == "ntk" else None)
    ax.set(xlabel="‖θ − θ₀‖ / ‖θ₀‖", ylabel="‖K − K₀‖ / ‖K₀‖ (log scale)", title="how far the kernel moved (o NTK, ^ CK)",
           yscale="log")
    ax.legend(title="width", fontsize=8, ncol=2)
    fig.suptitle(fit_title(title))
    return fig


@styled
def surrogate_figure(means: pd.DataFrame, *, title: str, chance: float):
    """k-NN and nearest-class-centre accuracy on the top-k principal components of each hidden layer against
    k, the mean over seeds with its interval; dashes: the majority class's share (the null)."""
    layers = sorted(means.layer.unique())
    fig, axes = plt.subplots(1, len(layers), figsize=(PAGE_WIDTH, 2.9), sharey=True, squeeze=False)
    for ax, layer in zip(axes[0], layers):
        part = means[means.layer == layer].sort_values("k")
        for column, label in (("knn", "k-NN"), ("ncc", "nearest centre")):
            _bars(ax, part.k, part, label=label, value=column, low=f"{column}_low", high=f"{column}_high")
        ax.axhline(chance, **CHANCE_STYLE)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set(xlabel="principal components k", title=f"hidden layer {layer}")
    axes[0, 0].set_ylabel("test accuracy")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(fit_title(title))
    return fig

"""Plots of metric tables, the paper's Figure 3.1 among them: PE, APC-1 and APC-2 for the parameters and the
gradients, against lambda and against C, each with its spread over seed pairs and its chance level.

The figures draw what they are given: a ``summarize`` table (one row per target, configuration and metric
with ``mean``, ``std``, ``ci_low``, ``ci_high``, ``null``), which the caller makes; the strips draw a
``compare`` table (one row per configuration, seed pair and target) as it is. Used by ``underspec report``
(a sweep's results), the sweep notebook (one shard) and the book's chapters.

- ``plot_metric(ax, summary, metric, target, x=...)``: one panel, one line per value of the other axis.
- ``figure_3_1(summary, x="l1" | "n_classes")``: the grid of panels (rows: targets, columns: metrics).
- ``save_figure_3_1(summary, folder)``: both versions (against lambda and against C) as PNG and SVG.
- ``table_3_1(summary)``: the numbers behind the figure, one row per (target, lambda, C).
- ``metric_panels(summary, metrics)``: one panel per metric; ``metric_strip(table, metrics)``: every pair as
  a dot beside its chance level.

Reading the panels: the dashed grey line is the chance level (the ``<metric>_null`` columns: what unrelated
networks score), so a metric means something only as its distance above that line. At C = 2 every entry of the
second-layer correlation is +-1, so APC-2 is 1 and PE is arbitrary there (PROTOCOL section 3).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..errors import UnderspecError, shown
from ..files import atomic_write
from ..text import formatted
from .style import (AXIS_LABELS, BASE_TEXT, CELL_TEXT, CHANCE_STYLE, PAGE_WIDTH, TARGET_LABELS, cell_text,
                    columns_that_fit, fit_title, fmt_l1, metric_label, styled)

PANEL_METRICS = ("pe", "apc1", "apc2")
PANEL_TARGETS = ("params", "grads")
AXES = ("l1", "n_classes")
SPREADS = ("ci", "std", None)


def _summary(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` if it is a ``summarize`` table; a figure never summarizes for its caller."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise UnderspecError("need a non-empty table from underspec.summarize(compare(...))")
    if not {"metric", "mean", "ci_low", "ci_high"} <= set(table.columns):
        raise UnderspecError("this is a compare table, not its summary: pass underspec.summarize(table)")
    return table


DEGENERATE_AT_2 = ("apc2", "pe", "apc2_signed", "pe_signed", "apc2_w1perm", "apc2_alive", "pe_alive")  # W2 columns of 2
NULL_STYLES = {"null": ("untrained null", CHANCE_STYLE),
               "null_structured": ("structured null", dict(color="0.35", linestyle=":", linewidth=1.4))}


@styled
def plot_metric(ax, summary: pd.DataFrame, metric: str, target: str = "params", *, x: str = "l1",
                spread: str | None = "ci", chance: bool = True, legend: bool = False):
    """Draw one panel: ``metric`` of ``target`` against ``x`` ("l1" or "n_classes"), one line per value of
    the other axis (a categorical palette), the mean with a band (``spread``: "ci" the seed-level interval of
    ``summarize``, "std" mean +- one std over pairs, None no band) and the nulls when ``chance`` (dashed:
    untrained networks; dotted: the structured null, when the summary has it).

    No band is drawn over the paper's reference view (one reference seed: its own effect cannot be
    resampled). At C = 2 the second-layer metrics are a tie-breaking artefact (a Pearson r over two numbers is
    +-1): that line is light grey and its label says so. lambda is drawn on evenly spaced categorical positions (its values
    span 0 and several decades), and the axis label says so. Returns the line handles (for a legend).
    """
    _check(x, spread)
    summary = _summary(summary)
    part = summary[(summary.metric == metric) & (summary.target == target)]
    if part.empty:
        raise UnderspecError(f"no rows for metric {shown(metric)} and target {shown(target)}: the table has metrics "
                             f"{sorted(summary.metric.unique())} and targets {sorted(summary.target.unique())}")
    hue = "n_classes" if x == "l1" else "l1"
    xs = sorted(part[x].unique())
    position = {v: i for i, v in enumerate(xs)} if x == "l1" else {v: v for v in xs}
    hues = sorted(part[hue].unique())
    degenerate = metric in DEGENERATE_AT_2
    reference_view = "n_seeds" in part and (part.n <= part.n_seeds - 1).all()
    handles = []
    for k, h in enumerate(hues):
        line = part[part[hue] == h].sort_values(x)
        px = line[x].map(position).to_numpy(dtype=float)
        mean = line["mean"].to_numpy(dtype=float)
        grey = degenerate and hue == "n_classes" and h == 2
        color = "0.7" if grey else plt.get_cmap("tab10")(k % 10)
        label = (f"C = {h}" + (" (ties: artefact)" if grey else "")) if hue == "n_classes" else f"λ = {fmt_l1(h)}"
        handles.append(ax.plot(px, mean, marker="o", markersize=3.5, linewidth=1.0 if grey else 1.4, color=color,
                               label=label)[0])
        if spread == "ci" and not reference_view:
            ax.fill_between(px, line["ci_low"], line["ci_high"], color=color, alpha=0.15, linewidth=0)
        elif spread == "std":
            std = line["std"].fillna(0.0).to_numpy(dtype=float)
            ax.fill_between(px, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
    if degenerate and x == "n_classes" and 2 in position:
        ax.axvspan(position[2] - 0.4, position[2] + 0.4, color="0.92", zorder=0, label="_C = 2: ties")
    for column, (name, style) in NULL_STYLES.items():
        if not chance or column not in part or not part[column].notna().any():
            continue
        null = part.groupby(x)[column].agg(["mean", "min", "max"]).reindex(xs)
        px = np.array([position[v] for v in xs], dtype=float)
        if len(hues) == 1 or (null["max"] - null["min"]).max() < 1e-9:
            handles.append(ax.plot(px, null["mean"], label=name, **style)[0])
        else:  # the null differs between the lines (it depends on the trained pair): one line each
            for k, h in enumerate(hues):
                line = part[part[hue] == h].sort_values(x)
                ax.plot(line[x].map(position), line[column], **{**style, "color": plt.get_cmap("tab10")(k % 10),
                                                                  "alpha": 0.7})
            handles.append(ax.plot([], [], label=f"{name} (per line)", **style)[0])
    if x == "l1":
        ax.set_xticks(range(len(xs)), [fmt_l1(v) for v in xs])
        ax.set_xlabel(AXIS_LABELS[x] + " (categorical axis)")
    else:
        ax.set_xticks(xs)
        ax.set_xlabel(AXIS_LABELS[x])
    ax.set_ylabel(metric_label(metric))
    ax.grid(alpha=0.25, linewidth=0.6)
    if legend:
        ax.legend(handles=handles, frameon=False)
    return handles


@styled
def excess_heatmap(summary: pd.DataFrame, metric: str, target: str = "params", *, null: str = "null",
                   title: str | None = None):
    """The metric's excess over a null (``null``: "null" untrained or "null_structured") for every lambda
    (rows) and C (columns): colour = mean - null, text = the excess and the half-width of its seed-level
    interval (``excess_text``, at ``CELL_TEXT`` points; none where the cells are too small for it, the colour
    bar then gives the values); cells whose interval includes the null are hatched. C = 2 is greyed for the
    second-layer metrics (ties). Returns the Figure."""
    summary = _summary(summary)
    part = summary[(summary.metric == metric) & (summary.target == target)]
    if part.empty or null not in part or part[null].isna().all():
        raise UnderspecError(f"no {shown(metric)} of {shown(target)} with a {shown(null)} column in the summary: "
                             "compare with that null, then summarize")
    l1s, classes = sorted(part.l1.unique()), sorted(part.n_classes.unique())
    excess = part.pivot_table(index="l1", columns="n_classes", values="mean").reindex(index=l1s, columns=classes) \
        - part.pivot_table(index="l1", columns="n_classes", values=null).reindex(index=l1s, columns=classes)
    low = part.pivot_table(index="l1", columns="n_classes", values="ci_low").reindex(index=l1s, columns=classes)
    high = part.pivot_table(index="l1", columns="n_classes", values="ci_high").reindex(index=l1s, columns=classes)
    nulls = part.pivot_table(index="l1", columns="n_classes", values=null).reindex(index=l1s, columns=classes)
    limit = max(float(np.nanmax(np.abs(excess.to_numpy()))), 1e-6)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.55 * len(l1s) + 1.9))
    image = ax.imshow(excess.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ties = metric in DEGENERATE_AT_2 and 2 in classes
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(l1s)), [fmt_l1(v) for v in l1s])
    ax.set(xlabel=AXIS_LABELS["n_classes"], ylabel=AXIS_LABELS["l1"])
    fig.colorbar(image, ax=ax, label=f"{metric_label(metric)} minus the {NULL_STYLES[null][0]}")
    method = part["method"].iloc[0] if "method" in part else "?"
    head = (title + "\n" if title else "") + \
        f"{metric_label(metric)} above the {NULL_STYLES[null][0]} ({TARGET_LABELS.get(target, target)})\n"
    tail = "hatched: the interval includes the null" + ("; grey: C = 2 (ties)" if ties else "")
    heading = fig.suptitle(fit_title(head + f"± half-width of the {method} interval over seeds; " + tail,
                                     fontsize=10), fontsize=10)
    halves = (high - low) / 2
    texts = [excess_text(excess.loc[lam, c], halves.loc[lam, c]) for lam in l1s for c in classes]
    written = cell_text(fig, ax, excess.shape, texts + ["ties"])  # else the colour bar gives the values
    if not written:
        heading.set_text(fit_title(head + tail, fontsize=10))
    for i, lam in enumerate(l1s):
        for j, c in enumerate(classes):
            if ties and c == 2:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="0.85"))
                if written:
                    ax.text(j, i, "ties", ha="center", va="center", fontsize=CELL_TEXT, color="0.3")
                continue
            undecided = low.loc[lam, c] <= nulls.loc[lam, c] <= high.loc[lam, c]
            if undecided:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", color="0.6",
                                           linewidth=0))
            value = excess.loc[lam, c]  # white on the darkest colours, black elsewhere
            if written:
                ax.text(j, i, excess_text(value, halves.loc[lam, c]), ha="center", va="center", fontsize=CELL_TEXT,
                        color="white" if abs(value) > 0.6 * limit else "black")
    return fig


def excess_text(value: float, half: float) -> str:
    """A cell of ``excess_heatmap``: the excess over the null and the half-width of its interval, two decimals,
    a value that rounds to zero without a minus sign ("+0.00\n±0.03", never "-0.00")."""
    return f"{formatted(value, '+.2f')}\n±{formatted(half, '.2f')}"


@styled
def figure_3_1(summary: pd.DataFrame, *, x: str = "l1", metrics=PANEL_METRICS, targets=PANEL_TARGETS,
               spread: str | None = "ci", chance: bool = True, title: str | None = None):
    """The paper's Figure 3.1 with spread and chance levels: a panel per target ("params", "grads") and metric
    ("pe", "apc1", "apc2"), each against ``x`` ("l1" or "n_classes") with one line per value of the other.
    ``summary``: a ``summarize`` table. ``title``: what was run (``style.describe``), shown under the figure's
    name. Returns the matplotlib Figure.

    The paper's rows (targets) are the columns here and its columns (metrics) the rows, so that the panels
    keep their width on the page (two a row, at ``PAGE_WIDTH``); ``fig.axes`` is in the paper's reading order
    (every metric of the first target, then of the second), the legend under the panels.
    """
    _check(x, spread)
    summary = _summary(summary)
    metrics, targets = list(metrics), [t for t in targets if t in set(summary.target)]
    if not targets:
        raise UnderspecError(f"the table has none of the targets {list(PANEL_TARGETS)}: compare with targets=...")
    width = PAGE_WIDTH if len(targets) > 1 else 4.4
    fig = plt.figure(figsize=(width, 2.45 * len(metrics) + 1.6))
    grid = fig.add_gridspec(len(metrics), len(targets))
    handles, first = [], None
    for i, target in enumerate(targets):
        for j, metric in enumerate(metrics):
            ax = fig.add_subplot(grid[j, i], sharex=first)
            first = first or ax
            handles = plot_metric(ax, summary, metric, target, x=x, spread=spread, chance=chance)
            ax.set_title(f"{metric_label(metric)}: {TARGET_LABELS.get(target, target)}")
            if i:
                ax.set_ylabel("")  # the title names the metric; the left column's label says it once
            if j < len(metrics) - 1:
                ax.set_xlabel("")  # every panel keeps its tick labels: a row is read on its own
    method = summary["method"].iloc[0] if "method" in summary else "bootstrap"
    band = {"ci": f"bands: 95% interval, seeds resampled ({method})", "std": "bands: ± 1 std over seed pairs",
            None: "no bands"}[spread]
    versus = "λ" if x == "l1" else "C"
    heading = f"Figure 3.1, against {versus}, with chance levels (dashed)\n{band}"
    fig.suptitle(fit_title(heading + (f"\n{title}" if title else "")))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4 if len(targets) > 1 else 2),
               frameon=False)
    return fig


@styled
def save_figure_3_1(summary: pd.DataFrame, folder: str | os.PathLike, *, caption: str | None = None,
                    stem: str = "figure-3-1", spread: str | None = "ci",
                    formats=("png", "svg")) -> dict[str, Path]:
    """Write Figure 3.1 against lambda (``<stem>-lambda``) and against C (``<stem>-classes``) in ``formats``
    into ``folder``; each file atomically. Returns {file name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for x, name in (("l1", "lambda"), ("n_classes", "classes")):
        fig = figure_3_1(summary, x=x, spread=spread, title=caption)
        try:
            for fmt in formats:
                path = atomic_write(folder / f"{stem}-{name}.{fmt}",
                                    lambda tmp: fig.savefig(tmp, format=fmt, dpi=150 if fmt == "png" else None))
                paths[path.name] = path
        finally:
            plt.close(fig)
    return paths


def table_3_1(summary: pd.DataFrame, *, metrics=PANEL_METRICS, targets=PANEL_TARGETS) -> pd.DataFrame:
    """The numbers behind Figure 3.1, wide: rows (target, l1, n_classes), columns (metric, statistic) with
    statistics ``mean``, ``ci_low``, ``ci_high``, ``null`` (chance level) and ``n`` (pairs)."""
    part = _summary(summary)
    part = part[part.metric.isin(metrics) & summary.target.isin(targets)]
    wide = part.pivot_table(index=["target", "l1", "n_classes"], columns="metric",
                            values=["mean", "ci_low", "ci_high", "null", "n"], sort=False)
    wide = wide.swaplevel(0, 1, axis=1)
    order = [(m, s) for m in metrics for s in ("mean", "ci_low", "ci_high", "null", "n") if (m, s) in wide.columns]
    return wide[order]


@styled
def metric_strip(table: pd.DataFrame, metrics, *, title: str, panel: str | None = None, panel_label=None,
                 ylabel: str = "value over seed pairs", ylim=(0, 1.05)):
    """Several metrics of a ``compare`` table side by side: every seed pair as a dot, the mean as a bar,
    the chance level (mean of ``<metric>_null``) as a dashed grey segment over each bar. ``panel``: a
    column (e.g. ``"l1"``) whose values get one panel each, as many a row as fit the page's width."""
    metrics = list(metrics)
    values = [None] if panel is None else sorted(table[panel].unique())
    labels = [metric_label(m, short=True) for m in metrics]
    longest = max(len(line) for label in labels for line in label.split("\n"))
    upright = len(metrics) <= 4 and longest <= 7  # else the tick labels stand vertical
    panel_width = (0.5 if upright else 0.4) * len(metrics) + 0.8
    ncols = columns_that_fit(len(values), panel_width)  # panels wrap onto more rows at the page's width
    nrows = math.ceil(len(values) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(PAGE_WIDTH, panel_width * ncols + 0.4),
                                                    (3.0 if upright else 3.4) * nrows + 0.6),
                             squeeze=False, sharey=True)
    for ax in axes.flat[len(values):]:
        ax.axis("off")
    rng = np.random.default_rng(0)
    for ax, value in zip(axes.flat, values):
        part = table if panel is None else table[table[panel] == value]
        for i, m in enumerate(metrics):
            v = part[m].to_numpy(float)
            ax.bar(i, np.nanmean(v), width=0.62, color=f"C{i % 10}", alpha=0.35)
            ax.plot(i + rng.uniform(-0.18, 0.18, len(v)), v, "o", color=f"C{i % 10}", markersize=2.5)
            if f"{m}_null" in part:
                ax.hlines(part[f"{m}_null"].mean(), i - 0.36, i + 0.36, **CHANCE_STYLE,
                          label="chance level" if i == 0 else None)
        ax.set_xticks(range(len(metrics)), labels, fontsize=BASE_TEXT, rotation=0 if upright else 90)
        ax.set(ylim=ylim)
        ax.grid(axis="y", alpha=0.25, linewidth=0.6)
        if panel is not None:
            ax.set_title(panel_label(value) if panel_label else f"{panel} = {value}")
    for row in axes:
        row[0].set_ylabel(ylabel)
    axes[0, 0].legend(loc="upper left")
    fig.suptitle(fit_title(title))
    return fig


@styled
def metric_panels(summary: pd.DataFrame, metrics, *, target: str = "params", x: str = "n_classes", title: str,
                  spread: str | None = "ci", titles=None):
    """One panel per metric of a ``summarize`` table against ``x`` (one line per value of the other grid
    axis, bands over seed pairs, chance level dashed), each drawn by ``plot_metric``: as many a row as fit the
    page's width, the legend under them."""
    metrics = list(metrics)
    ncols = columns_that_fit(len(metrics), 3.4)  # two a row at the page's width, the legend under them
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(PAGE_WIDTH, 3.65 * ncols), 2.9 * nrows + 1.5),
                             squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    handles = []
    for k, (ax, metric) in enumerate(zip(axes.flat, metrics)):
        handles = plot_metric(ax, summary, metric, target, x=x, spread=spread)
        ax.set_title(titles[k] if titles else metric_label(metric))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    fig.suptitle(fit_title(title))
    return fig


def _check(x, spread):
    if x not in AXES:
        raise UnderspecError(f"x must be one of {', '.join(AXES)}, got {shown(x)}")
    if spread not in SPREADS:
        raise UnderspecError(f"spread must be 'ci', 'std' or None, got {shown(spread)}")

"""The paper's Figure 3.1 from a comparison table: PE, APC-1 and APC-2, for the parameters and the gradients,
against lambda and against C, each with its spread over seed pairs and its chance level.

Input is what ``underspec.compare.compare`` returns (one row per configuration, seed pair and target), or
what ``underspec.compare.summarize`` makes of it (one row per target, configuration and metric with ``mean``,
``std``, ``ci_low``, ``ci_high``, ``null``); these functions summarise a compare table with ``summarize`` and
compute nothing else. Used by ``underspec report`` (a sweep's results), by the sweep notebook (one shard) and
by the book's study chapter.

- ``plot_metric(ax, summary, metric, target, x=...)``: one panel, one line per value of the other axis.
- ``figure_3_1(table, x="l1" | "n_classes")``: the grid of panels (rows: targets, columns: metrics).
- ``save_figure_3_1(table, folder)``: both versions (against lambda and against C) as PNG and SVG.
- ``table_3_1(table)``: the numbers behind the figure, one row per (target, lambda, C).
- ``describe(sweep_config)`` / ``describe_run(run)``: the one-line "what was run" for titles.

Reading the panels: the dashed grey line is the chance level (the ``<metric>_null`` columns: what unrelated
networks score), so a metric means something only as its distance above that line. At C = 2 every entry of the
second-layer correlation is +-1, so APC-2 is 1 and PE is arbitrary there (PROTOCOL section 3).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .errors import UnderspecError
from .figures import CHANCE_STYLE, fmt_l1

PANEL_METRICS = ("pe", "apc1", "apc2")
PANEL_TARGETS = ("params", "grads")
AXES = ("l1", "n_classes")
SPREADS = ("ci", "std", None)
METRIC_LABELS = {"pe": "PE (same permutation)", "apc1": "APC-1 (first layer)", "apc2": "APC-2 (second layer)",
                 "apc1_data": "APC-1, pixels with data", "apc1_signed": "APC-1, signed matching",
                 "apc2_signed": "APC-2, signed matching", "pe_signed": "PE, signed matching",
                 "apc2_w1perm": "APC-2 under the W1 matching", "apc_act": "APC of activations",
                 "apc_act_signed": "APC of activations, signed", "pe_act": "PE, activations vs W1"}
TARGET_LABELS = {"params": "parameters", "grads": "gradients (summed)", "displacement": "displacement (final - init)"}
AXIS_LABELS = {"l1": "L1 strength λ", "n_classes": "number of classes C"}


def summary_of(table: pd.DataFrame) -> pd.DataFrame:
    """A ``summarize`` table: ``table`` itself if it is one, else ``summarize(table)`` of a compare table."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise UnderspecError("need a non-empty table from underspec.compare.compare (or its summarize)")
    if {"metric", "mean", "ci_low", "ci_high"} <= set(table.columns):
        return table
    from .compare import summarize

    return summarize(table)


def plot_metric(ax, summary: pd.DataFrame, metric: str, target: str = "params", *, x: str = "l1",
                spread: str | None = "ci", chance: bool = True, cmap: str = "viridis", legend: bool = False):
    """Draw one panel: ``metric`` of ``target`` against ``x`` ("l1" or "n_classes"), one line per value of
    the other axis (colour), the mean with a band (``spread``: "ci" the bootstrap interval of ``summarize``,
    "std" mean +- one std over pairs, None no band) and the chance level (dashed grey) when ``chance``.

    lambda is drawn on evenly spaced categorical positions (its values span 0 and several decades).
    Returns the list of line handles (for a legend). ``summary``: a ``summarize`` table (or a compare table).
    """
    _check(x, spread)
    summary = summary_of(summary)
    part = summary[(summary.metric == metric) & (summary.target == target)]
    if part.empty:
        raise UnderspecError(f"no rows for metric {metric!r} and target {target!r}: the table has metrics "
                             f"{sorted(summary.metric.unique())} and targets {sorted(summary.target.unique())}")
    hue = "n_classes" if x == "l1" else "l1"
    xs = sorted(part[x].unique())
    position = {v: i for i, v in enumerate(xs)} if x == "l1" else {v: v for v in xs}
    hues = sorted(part[hue].unique())
    colors = plt.get_cmap(cmap)(np.linspace(0.0, 0.9, len(hues))) if len(hues) > 1 else ["C0"]
    handles = []
    for color, h in zip(colors, hues):
        line = part[part[hue] == h].sort_values(x)
        px = line[x].map(position).to_numpy(dtype=float)
        mean = line["mean"].to_numpy(dtype=float)
        label = f"C = {h}" if hue == "n_classes" else f"λ = {fmt_l1(h)}"
        handles.append(ax.plot(px, mean, marker="o", markersize=3.5, linewidth=1.4, color=color, label=label)[0])
        if spread == "ci":
            ax.fill_between(px, line["ci_low"], line["ci_high"], color=color, alpha=0.15, linewidth=0)
        elif spread == "std":
            std = line["std"].fillna(0.0).to_numpy(dtype=float)
            ax.fill_between(px, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
    if chance and "null" in part and part["null"].notna().any():
        null = part.groupby(x)["null"].agg(["mean", "min", "max"]).reindex(xs)
        spread_null = (null["max"] - null["min"]).max()
        px = np.array([position[v] for v in xs], dtype=float)
        if len(hues) == 1 or not np.isfinite(spread_null) or spread_null < 1e-9:
            handles.append(ax.plot(px, null["mean"], label="chance level", **CHANCE_STYLE)[0])
        else:  # the chance level differs between the lines (a "shuffle" null): one dashed line each
            for color, h in zip(colors, hues):
                line = part[part[hue] == h].sort_values(x)
                ax.plot(line[x].map(position), line["null"], color=color, linestyle="--", linewidth=0.9, alpha=0.8)
            handles.append(ax.plot([], [], label="chance level (per line)", **CHANCE_STYLE)[0])
    if x == "l1":
        ax.set_xticks(range(len(xs)), [fmt_l1(v) for v in xs])
    else:
        ax.set_xticks(xs)
    ax.set_xlabel(AXIS_LABELS[x])
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.25, linewidth=0.6)
    if legend:
        ax.legend(handles=handles, frameon=False)
    return handles


def figure_3_1(table: pd.DataFrame, *, x: str = "l1", metrics=PANEL_METRICS, targets=PANEL_TARGETS,
               spread: str | None = "ci", chance: bool = True, title: str | None = None):
    """The paper's Figure 3.1 with spread and chance levels: rows ``targets`` ("params", "grads"), columns
    ``metrics`` ("pe", "apc1", "apc2"), each against ``x`` ("l1" or "n_classes") with one line per value of
    the other. ``table``: a compare table or its ``summarize``. ``title``: what was run (data set, grid,
    seeds; see ``describe``), shown under the figure's name. Returns the matplotlib Figure.
    """
    _check(x, spread)
    summary = summary_of(table)
    metrics, targets = list(metrics), [t for t in targets if t in set(summary.target)]
    if not targets:
        raise UnderspecError(f"the table has none of the targets {list(PANEL_TARGETS)}: compare with targets=...")
    fig, axes = plt.subplots(len(targets), len(metrics), figsize=(3.9 * len(metrics), 2.9 * len(targets) + 0.6),
                             squeeze=False, sharex=True)
    handles = []
    for i, target in enumerate(targets):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            handles = plot_metric(ax, summary, metric, target, x=x, spread=spread, chance=chance)
            ax.set_title(f"{METRIC_LABELS.get(metric, metric)}: {TARGET_LABELS.get(target, target)}")
            if i < len(targets) - 1:
                ax.set_xlabel("")
    band = {"ci": "bands: 95% bootstrap interval over seed pairs", "std": "bands: ± 1 std over seed pairs",
            None: "no bands"}[spread]
    versus = "λ" if x == "l1" else "C"
    heading = f"Figure 3.1, against {versus}, with chance levels (dashed) · {band}"
    fig.suptitle(heading + (f"\n{title}" if title else ""))
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    return fig


def save_figure_3_1(table: pd.DataFrame, folder: str | os.PathLike, *, summary: pd.DataFrame | None = None,
                    caption: str | None = None, stem: str = "figure-3-1", spread: str | None = "ci",
                    formats=("png", "svg")) -> dict[str, Path]:
    """Write Figure 3.1 against lambda (``<stem>-lambda``) and against C (``<stem>-classes``) in ``formats``
    into ``folder``; each file atomically. Returns {file name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summary if summary is not None else summary_of(table)
    paths = {}
    for x, name in (("l1", "lambda"), ("n_classes", "classes")):
        fig = figure_3_1(summary, x=x, spread=spread, title=caption)
        try:
            for fmt in formats:
                path = folder / f"{stem}-{name}.{fmt}"
                tmp = folder / f".{path.name}.tmp-{os.getpid()}.{fmt}"
                try:
                    fig.savefig(tmp, format=fmt, dpi=150 if fmt == "png" else None)
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
                paths[path.name] = path
        finally:
            plt.close(fig)
    return paths


def table_3_1(table: pd.DataFrame, *, metrics=PANEL_METRICS, targets=PANEL_TARGETS) -> pd.DataFrame:
    """The numbers behind Figure 3.1, wide: rows (target, l1, n_classes), columns (metric, statistic) with
    statistics ``mean``, ``ci_low``, ``ci_high``, ``null`` (chance level) and ``n`` (pairs).
    ``table``: a compare table or its ``summarize``."""
    summary = summary_of(table)
    part = summary[summary.metric.isin(metrics) & summary.target.isin(targets)]
    wide = part.pivot_table(index=["target", "l1", "n_classes"], columns="metric",
                            values=["mean", "ci_low", "ci_high", "null", "n"], sort=False)
    wide = wide.swaplevel(0, 1, axis=1)
    order = [(m, s) for m in metrics for s in ("mean", "ci_low", "ci_high", "null", "n") if (m, s) in wide.columns]
    return wide[order]


def describe(config, missing=()) -> str:
    """One line saying what a sweep (a ``SweepConfig``) trained, for the figures' titles."""
    n = f" first {config.n_train:,} training images," if config.n_train else ""
    text = (f"{config.dataset}:{n} {len(config.seeds)} seeds ({config.pairs} pairs) x {len(config.l1)} λ x "
            f"{len(config.n_classes)} C, hidden {config.hidden}, {config.epochs} epochs, {config.optimizer} "
            f"lr {config.lr:g}, batch {config.batch_size}, class mode {config.class_mode}")
    if missing:
        text += f" · INCOMPLETE: {len(missing)} shards missing"
    return text


def describe_run(run) -> str:
    """One line saying what a Run trained, for the figures' titles."""
    g = run.grid
    return (f"{run.data_name}: {len(g.seeds)} seeds x {len(g.l1)} λ x {len(g.n_classes)} C, hidden {g.hidden}, "
            f"{g.epochs} epochs, {g.optimizer} lr {g.lr:g}, batch {g.batch_size}, class mode {g.class_mode}")


def _check(x, spread):
    if x not in AXES:
        raise UnderspecError(f"x must be one of {', '.join(AXES)}, got {x!r}")
    if spread not in SPREADS:
        raise UnderspecError(f"spread must be 'ci', 'std' or None, got {spread!r}")

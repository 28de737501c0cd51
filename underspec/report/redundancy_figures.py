"""The figures of "Redundancy and width": panels of estimates against width (log2 axis), knock-out level,
rank, number of clusters or epoch, each series with its seed-level interval and the nulls in grey. Draws what
it is given (tables of estimates from ``studies.redundancy_evidence``); computes no metric."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import CHANCE_STYLE, PAGE_WIDTH, columns_that_fit, fit_title, styled

NULL_STYLES = ("--", ":", "-.")


@styled
def panels_figure(table: pd.DataFrame, *, x: str, title: str, xlabel: str, ylabels: dict | None = None,
                  log2x: bool = False, log2y=(), panel_width: float = 3.6, reference: dict | None = None):
    """One panel per value of ``table.panel`` (in order): for each ``series`` the ``value`` against ``x`` with
    error bars from ``low`` to ``high``; rows whose ``null`` is True are drawn grey and dashed (a null or a
    baseline). ``ylabels``: {panel: y label}; ``log2x``: a log2 axis ticked at the values (``log2y``: the panels
    whose y axis is log2 too); ``reference``:
    {panel: (label, (x values, y values))}, a grey dotted line (e.g. y = width)."""
    if table.empty:
        return note_figure(f"{title}: nothing to draw (no network in this regime)")
    panels = list(dict.fromkeys(table.panel))
    ncols = columns_that_fit(len(panels), panel_width)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 2.6 * nrows + 0.7), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        part = table[table.panel == panel]
        n_null = 0
        for series in dict.fromkeys(part.series):
            s = part[part.series == series].sort_values(x)
            null = bool(s.null.iloc[0]) if "null" in s else False
            xs, v = s[x].to_numpy(float), s.value.to_numpy(float)
            err = np.vstack([v - s.low.to_numpy(float), s.high.to_numpy(float) - v])
            err = np.where(np.isfinite(err), np.maximum(err, 0), 0)
            if null:
                style = {**CHANCE_STYLE, "linestyle": NULL_STYLES[n_null % len(NULL_STYLES)]}
                n_null += 1
                ax.errorbar(xs, v, yerr=err, capsize=2, marker=".", label=series, **style)
            else:
                ax.errorbar(xs, v, yerr=err, capsize=2, marker="o", markersize=3.5, linewidth=1.3, label=series)
        if reference and panel in reference:
            label, (rx, ry) = reference[panel]
            ax.plot(rx, ry, color="0.6", linestyle=":", linewidth=1, label=label)
        if log2x:
            ax.set_xscale("log", base=2)
            ticks = sorted(set(part[x].astype(float)))
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks], rotation=45 if len(ticks) > 6 else 0)
            ax.minorticks_off()
        if panel in log2y:
            ax.set_yscale("log", base=2)
        ax.set_title(fit_title(panel, fontsize=10, width=PAGE_WIDTH / ncols))
        ax.set_xlabel(xlabel)
        if ylabels and panel in ylabels:
            ax.set_ylabel(ylabels[panel])
        ax.legend(fontsize=8, frameon=False, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(fit_title(title))
    return fig


@styled
def ticket_figure(table: pd.DataFrame, *, title: str, original: tuple[float, float, float] | None = None):
    """Test accuracy of every ticket variant: one panel per kept width ``k`` (``table.k``), a point with its
    interval per ``series`` (``value``, ``low``, ``high``); ``original``: the width-H networks' mean and interval,
    a grey band."""
    ks = sorted(set(table.k))
    fig, axes = plt.subplots(1, len(ks), figsize=(PAGE_WIDTH, 3.4), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], ks):
        part = table[table.k == k]
        labels = list(dict.fromkeys(part.series))
        y = np.arange(len(labels))
        v = part.set_index("series").loc[labels]
        err = np.vstack([v.value - v.low, v.high - v.value])
        ax.errorbar(v.value, y, xerr=np.where(np.isfinite(err), err, 0), fmt="o", capsize=2)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        if original is not None:
            ax.axvspan(original[1], original[2], color="0.85", zorder=0)
            ax.axvline(original[0], **CHANCE_STYLE, label="the original network")
            ax.legend(fontsize=8, frameon=False, loc="lower left")
        ax.set_title(f"keep k = {k} units")
        ax.set_xlabel("test accuracy")
    fig.suptitle(fit_title(title))
    return fig


@styled
def note_figure(text: str):
    """A figure that only says ``text`` (a study that has not been run)."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.8))
    ax.axis("off")
    ax.text(0.5, 0.5, fit_title(text), ha="center", va="center", fontsize=10)
    return fig

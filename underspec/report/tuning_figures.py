"""The figures of the chapter "Tuning when seeds disagree": the seed study's scores and the best-of-k
inflation, the shapes at an equal parameter count, the test error against width at each label-noise level,
and the tuners' best value against networks trained. Each draws the tables it is given
(``underspec.studies.tuning`` and ``tuning_verdicts`` compute them) and returns a Figure; ``tables`` is a
dict {label: tables} (this build, the committed study), one colour each.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..metrics.seed_similarity import METRIC_NAMES
from ..studies.tuning_verdicts import inflation, overparam_curve, picks, score_matrix, tuner_curves
from .style import CHANCE_STYLE, PAGE_WIDTH, fit_title, styled

TUNER_NAMES = {"grid": "grid search", "random": "random search", "tpe": "TPE"}
SHAPE_METRICS = ("accuracy", "disagreement", "cka", "barrier")


def _log2_axis(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))


@styled
def seed_scores(tables: dict[str, dict], *, title: str):
    """Left: every configuration of the seed study (x: its rank by the mean over all seeds) with each seed's
    validation accuracy (dots) and the mean; one panel per study. Right: what keeping the best of k reruns
    adds (``tuning_verdicts.inflation``), to the validation accuracy (solid) and to the test accuracy of the
    seed chosen by validation (dashed)."""
    n = len(tables)
    fig, axes = plt.subplots(1, n + 1, figsize=(PAGE_WIDTH, 3.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, color, (label, t) in zip(axes[0], colors, tables.items()):
        _, v = score_matrix(t["scores"])
        order = np.argsort(-v.mean(1))
        x = np.arange(1, len(v) + 1)
        for s in range(v.shape[1]):
            ax.scatter(x, v[order, s], s=6, color=color, alpha=0.45, linewidths=0)
        ax.plot(x, v[order].mean(1), "-", color="0.2", linewidth=1.2, label="mean over seeds")
        ax.set(xlabel="configuration (rank)", ylabel="validation accuracy", title=label)
        ax.legend(loc="lower left")
    ax = axes[0, -1]
    for color, (label, t) in zip(colors, tables.items()):
        inf = inflation(t["scores"])
        ax.plot(inf.k, inf.validation, "o-", color=color, markersize=3, label=f"{label}: validation")
        ax.plot(inf.k, inf.test, "s--", color=color, markersize=3, label=f"{label}: test of that seed")
    ax.axhline(0, **CHANCE_STYLE)
    ax.set(xlabel="reruns k (seeds)", ylabel="best of k - mean", title="best of k reruns")
    ax.legend(fontsize=8)
    fig.suptitle(fit_title(title))
    return fig


@styled
def shapes_figure(tables: dict[str, dict], *, title: str):
    """Accuracy, disagreement, CKA of the first hidden layer and the loss barrier after alignment of every
    shape, with their 95% intervals (seeds resampled; seeds and test images for accuracy and disagreement);
    grey dashes: each metric's null (``seed_similarity``)."""
    fig, axes = plt.subplots(1, len(SHAPE_METRICS), figsize=(PAGE_WIDTH, 3.0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / len(tables)
    for j, (color, (label, t)) in enumerate(zip(colors, tables.items())):
        shapes = list(dict.fromkeys(t["shapes"].widths))
        for ax, metric in zip(axes, SHAPE_METRICS):
            part = t["shapes"][t["shapes"].metric == metric].set_index("widths").loc[shapes]
            x = np.arange(len(shapes)) + (j - (len(tables) - 1) / 2) * width
            v = part.value.to_numpy(float)
            err = np.vstack([v - part.low.to_numpy(float), part.high.to_numpy(float) - v])
            ax.errorbar(x, v, yerr=np.nan_to_num(err), fmt="o", color=color, markersize=4, capsize=3,
                        label=label if metric == SHAPE_METRICS[0] else None)
            if metric != "accuracy":
                ax.scatter(x, part.null.to_numpy(float), marker="_", s=80, color="0.35")
            ax.set_xticks(np.arange(len(shapes)), [s.replace("157-157-157-157", "157x4") for s in shapes],
                          rotation=30, ha="right")
            ax.set_title(METRIC_NAMES[metric].replace(", units aligned", ",\nunits aligned")
                         .replace(", first hidden layer", ",\nfirst hidden layer"), fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle(fit_title(title))
    return fig


@styled
def learning_curves(curves: pd.DataFrame, *, title: str):
    """Loss (left) and accuracy (right) against the epoch, one colour per width (``TuningStudy.curves``): on the
    training images (solid: the running mean over the epoch's batches, as the paper's loop records them) and on
    the validation split after the epoch (dashed), the mean over seeds with the seeds' range as a band."""
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 2.9))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, measure in zip(axes, ("loss", "acc")):
        for color, (hidden, part) in zip(colors, curves.groupby("hidden")):
            for split, style in (("train", "-"), ("val", "--")):
                stats = part.groupby("epoch")[f"{split}_{measure}"].agg(["mean", "min", "max"])
                ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15, linewidth=0)
                ax.plot(stats.index, stats["mean"], style, color=color, linewidth=1.3,
                        label=f"{hidden} units, {'training images' if split == 'train' else 'validation'}")
        ax.set(xlabel="epoch", ylabel="cross-entropy loss" if measure == "loss" else "accuracy")
    axes[0].legend(fontsize=8)
    fig.suptitle(fit_title(title))
    return fig


@styled
def overparam_figure(tables: dict[str, dict], *, title: str):
    """Test error against width (log2 axis), one panel per study, one line per label-noise level: the seeds'
    mean with its 95% interval (t over the seeds) and the seeds' range as a band; dotted: the train error on
    the (noisy) training labels."""
    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(PAGE_WIDTH, 3.1), squeeze=False, sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (label, t) in zip(axes[0], tables.items()):
        curve = overparam_curve(t["overparam"])
        spread = t["overparam"].groupby(["label_noise", "hidden"]).test_error.agg(["min", "max"]).reset_index()
        for color, (noise, part) in zip(colors, curve.groupby("label_noise")):
            band = spread[spread.label_noise == noise]
            ax.fill_between(band.hidden, band["min"], band["max"], color=color, alpha=0.15, linewidth=0)
            v = part.test_error.to_numpy(float)
            err = np.nan_to_num(np.vstack([v - part.low.to_numpy(float), part.high.to_numpy(float) - v]))
            ax.errorbar(part.hidden, v, yerr=err, fmt="o-", color=color, markersize=3, capsize=2,
                        label=f"noise {noise:.0%}")
            ax.plot(part.hidden, part.train_error, ":", color=color, linewidth=1)
        _log2_axis(ax)
        ax.set(xlabel="hidden units", title=label)
    axes[0, 0].set_ylabel("error (solid: test, dotted: train)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(fit_title(title))
    return fig


@styled
def tuners_figure(tables: dict[str, dict], *, title: str):
    """The best validation accuracy found against the networks trained, one panel per study, one line per
    tuner: the mean over its repeats (sampler seeds), the band their smallest and largest."""
    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(PAGE_WIDTH, 3.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (label, t) in zip(axes[0], tables.items()):
        curves = tuner_curves(t["tuners"])
        for color, tuner in zip(colors, TUNER_NAMES):
            part = curves[curves.tuner == tuner]
            ax.fill_between(part.networks, part.low, part.high, color=color, alpha=0.15, linewidth=0, step="post")
            ax.step(part.networks, part.value, where="post", color=color, label=TUNER_NAMES[tuner])
        ax.set(xlabel="networks trained", ylabel="best validation accuracy so far", title=label)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(fit_title(title))
    return fig


def picks_table(tables: dict[str, dict]) -> pd.DataFrame:
    """What each tuner picked, per study and repeat (its test accuracy read once, after choosing)."""
    rows = [picks(t["tuners"]).assign(study=label) for label, t in tables.items()]
    table = pd.concat(rows, ignore_index=True)
    table["tuner"] = table.tuner.map(TUNER_NAMES)
    return table[["study", "tuner", "repeat", "lr", "hidden", "validation", "test"]].rename(
        columns={"repeat": "sampler seed", "lr": "learning rate", "hidden": "hidden units",
                 "validation": "validation accuracy",
                 "test": "test accuracy (read once)"})

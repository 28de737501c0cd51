"""Figure 3.1 and its table: drawn from what compare/summarize give, with spread and chance levels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from underspec import UnderspecError  # noqa: E402
from underspec.report import metric_plots as study  # noqa: E402
from underspec.report.style import describe  # noqa: E402
from underspec import summarize  # noqa: E402

L1, CLASSES, PAIRS = (0.0, 0.001, 0.01), (2, 5, 10), [(0, 42), (0, 7), (42, 7)]


@pytest.fixture(scope="module")
def table():
    """A compare-shaped table with known values: metric = base + l1 * 10 + C / 100 + pair jitter."""
    rng = np.random.default_rng(0)
    rows = []
    for l1 in L1:
        for c in CLASSES:
            for a, b in PAIRS:
                for target in ("params", "grads", "displacement"):
                    row = {"l1": l1, "n_classes": c, "seed_a": a, "seed_b": b, "target": target}
                    for base, metric in ((0.1, "pe"), (0.2, "apc1"), (0.5, "apc2")):
                        row[metric] = base + l1 * 10 + c / 100 + rng.normal(0, 0.01)
                        row[f"{metric}_null"] = base / 2 + c / 1000  # depends on C only, as the init null
                    rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("x", ["l1", "n_classes"])
def test_figure_3_1_draws_the_summarized_means_with_bands_and_chance(table, x):
    summary = summarize(table)
    fig = study.figure_3_1(summarize(table), x=x, title="test grid")
    axes = fig.axes
    assert len(axes) == 6  # rows: params, grads; columns: PE, APC-1, APC-2
    assert [ax.get_title() for ax in axes[:3]] == [
        "PE (same permutation): parameters", "APC-1 (first layer): parameters", "APC-2 (second layer): parameters"]
    assert "gradients" in axes[3].get_title()
    hue = "n_classes" if x == "l1" else "l1"
    ax = axes[4]  # APC-1 of the gradients
    part = summary[(summary.metric == "apc1") & (summary.target == "grads")]
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert len(solid) == 3
    for line, h in zip(solid, sorted(part[hue].unique())):
        expected = part[part[hue] == h].sort_values(x)["mean"].to_numpy()
        np.testing.assert_allclose(line.get_ydata(), expected)
    assert len(ax.collections) == 3  # one band per line
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert dashed, "no chance level drawn"
    nulls = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in dashed])
    np.testing.assert_allclose(np.unique(nulls.round(6)), np.unique(part["null"].round(6)))
    assert "test grid" in fig._suptitle.get_text()
    plt.close(fig)


def test_lambda_is_categorical_and_spread_options(table):
    fig = study.figure_3_1(summarize(table), x="l1", spread=None, chance=False)
    ax = fig.axes[3]  # bottom row: the shared x axis is labelled there
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.001", "0.01"]
    assert len(ax.collections) == 0 and all(line.get_linestyle() == "-" for line in ax.get_lines())
    plt.close(fig)
    fig = study.figure_3_1(summarize(table), x="n_classes", spread="std", metrics=("apc2",), targets=("params",))
    assert len(fig.axes) == 1 and list(fig.axes[0].get_xticks()) == list(CLASSES)
    plt.close(fig)


def test_save_writes_png_and_svg_for_both_axes(table, tmp_path):
    paths = study.save_figure_3_1(summarize(table), tmp_path / "fig", caption="a caption")
    assert sorted(paths) == ["figure-3-1-classes.png", "figure-3-1-classes.svg", "figure-3-1-lambda.png",
                             "figure-3-1-lambda.svg"]
    for name, path in paths.items():
        head = path.read_bytes()[:2000]
        assert head.startswith(b"\x89PNG") if name.endswith("png") else b"<svg" in head
    assert not list((tmp_path / "fig").glob(".*"))  # no temporary files left


def test_table_3_1_holds_the_summary_numbers(table):
    summary = summarize(table)
    wide = study.table_3_1(summarize(table))
    assert list(wide.columns.get_level_values(0).unique()) == ["pe", "apc1", "apc2"]
    assert len(wide) == 2 * len(L1) * len(CLASSES)  # params and grads
    row = summary[(summary.target == "grads") & (summary.l1 == 0.01) & (summary.n_classes == 5)
                  & (summary.metric == "apc2")].iloc[0]
    got = wide.loc[("grads", 0.01, 5)]
    assert got[("apc2", "mean")] == pytest.approx(row["mean"])
    assert got[("apc2", "null")] == pytest.approx(row["null"])
    assert got[("apc2", "n")] == 3


def test_clear_errors(table):
    with pytest.raises(UnderspecError, match="x must be one of"):
        study.figure_3_1(summarize(table), x="seed")
    with pytest.raises(UnderspecError, match="spread must be"):
        study.figure_3_1(summarize(table), spread="iqr")
    with pytest.raises(UnderspecError, match="none of the targets"):
        study.figure_3_1(summarize(table[table.target == "displacement"]))
    with pytest.raises(UnderspecError, match="non-empty table"):
        study.figure_3_1(table.iloc[:0])
    fig, ax = plt.subplots()
    with pytest.raises(UnderspecError, match="no rows for metric 'cka'"):
        study.plot_metric(ax, summarize(table), "cka")
    plt.close(fig)


def test_describe_says_what_was_run():
    from underspec.sweeps.config import SweepConfig

    config = SweepConfig(seeds=(0, 42, 7), l1=(0.0, 0.01), n_classes=(10,), epochs=3, n_train=500)
    text = describe(config.grid(), config.dataset, n_train=config.n_train, missing=["shard-001"])
    assert "mnist-5k" in text and "3 seeds" in text and "2 λ" in text and "3 epochs" in text
    assert "first 500 training images" in text and "INCOMPLETE" in text


def test_the_excess_heatmap_shows_excess_and_interval_and_hatches_undecided_cells(table):
    summary = summarize(table)
    fig = study.excess_heatmap(summary, "apc1", "params")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    row = summary[(summary.metric == "apc1") & (summary.target == "params") & (summary.l1 == 0.01)
                  & (summary.n_classes == 10)].iloc[0]
    assert f"{row['mean'] - row['null']:+.2f}\n±{(row.ci_high - row.ci_low) / 2:.2f}" in texts
    fig_pe = study.excess_heatmap(summary, "pe", "params")
    assert sum(t.get_text() == "ties" for t in fig_pe.axes[0].texts) == len(L1)  # C = 2 greyed for PE
    plt.close(fig)
    plt.close(fig_pe)
    with pytest.raises(UnderspecError, match="null_structured"):
        study.excess_heatmap(summary, "apc1", "params", null="null_structured")

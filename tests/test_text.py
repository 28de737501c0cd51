"""Numbers as the page writes them (never "-0.000") and figures as wide as the page's text column, their text no
smaller than the book's base size."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from underspec import summarize  # noqa: E402
from underspec.report import curves, metric_plots, study_figures  # noqa: E402
from underspec.report.style import BASE_TEXT, CELL_TEXT, PAGE_WIDTH  # noqa: E402
from underspec.text import cell, formatted, number  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def bookrun():
    spec = importlib.util.spec_from_file_location("bookrun", ROOT / "book" / "bookrun.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_value_that_rounds_to_zero_is_written_without_a_minus_sign():
    assert number(-0.0004, sign=False) == "0.000" and number(-0.0004) == "+0.000"
    assert cell(np.float64(-0.0004)) == "0.000" and cell(np.float32(-0.25)) == "-0.250"
    assert cell(3) == "3" and cell(np.int64(4)) == "4" and cell("λ = 0") == "λ = 0" and cell(float("nan")) == "—"
    assert formatted(-0.0004, ".3f") == "0.000" and formatted(-0.004, ".3f") == "-0.004"
    assert formatted(-0.001, "{:+.2f}") == "+0.00" and formatted(-0.2, "+.2f") == "-0.20"
    assert formatted(-0.0004, "{:.1%}") == "0.0%" and formatted(-1e-9, ".1e") == "-1.0e-09"


def test_a_page_table_writes_minus_zero_as_zero():
    """``bookrun.show``: every float to three decimals, -0.0004 as "0.000"; integers and text as they are."""
    table = pd.DataFrame({"null": [-0.0004, 0.12345], "pairs": [21, 3], "λ": ["0", "0.01"]})
    html = bookrun().show(table).to_html()
    assert ">0.000<" in html and ">0.123<" in html and ">21<" in html and ">0.01<" in html
    assert "-0.000" not in html


def _summary(excess_at_corner: float) -> pd.DataFrame:
    """A summarize table of APC-1 whose mean minus null is ``excess_at_corner`` at (λ = 0.01, C = 10)."""
    rows = []
    for l1 in (0.0, 0.01):
        for c in (2, 5, 10):
            for a, b in ((0, 1), (0, 2), (1, 2)):
                excess = excess_at_corner if (l1, c) == (0.01, 10) else 0.1
                for target in ("params", "grads"):
                    for metric in ("pe", "apc1", "apc2"):
                        rows.append({"l1": l1, "n_classes": c, "seed_a": a, "seed_b": b, "target": target,
                                     metric: 0.3 + excess + 0.001 * a, f"{metric}_null": 0.3})
    table = pd.DataFrame(rows).groupby(["l1", "n_classes", "seed_a", "seed_b", "target"], as_index=False).first()
    return summarize(table)


def test_a_heat_map_cell_writes_minus_zero_as_zero_at_a_readable_size():
    assert metric_plots.excess_text(-0.0004, 0.0302) == "+0.00\n±0.03"
    assert metric_plots.excess_text(-0.2, 0.01) == "-0.20\n±0.01"
    fig = metric_plots.excess_heatmap(_summary(-0.0015), "apc1", "params")
    texts = fig.axes[0].texts
    assert texts and not any("-0.00" in t.get_text() for t in texts)
    assert any(t.get_text().startswith("+0.00\n") for t in texts)
    assert all(t.get_fontsize() >= CELL_TEXT >= 9 for t in texts)
    assert fig.get_size_inches()[0] <= PAGE_WIDTH
    plt.close(fig)


def _text_sizes(fig) -> list[float]:
    fig.draw_without_rendering()
    return [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text() and t.get_visible()]


def test_small_multiples_wrap_to_the_page_width_and_keep_their_text_size():
    """Figure 3.1, the metric strips and Figure 3.1 by regime: at most ``PAGE_WIDTH`` wide (the page shows them at
    their own size), no text under the base size, more panels on more rows."""
    summary = _summary(0.05)
    compare = pd.DataFrame({"l1": np.repeat([0.0, 0.001, 0.0025, 0.005, 0.01, 0.05], 3), "apc1": 0.2, "apc2": 0.6,
                            "pe": 0.3, "apc1_signed": 0.1, "apc1_data": 0.2, "apc2_w1perm": 0.4, "pe_signed": 0.2,
                            "apc1_null": 0.07, "apc2_null": 0.6, "pe_null": 0.06})
    figures = {
        "figure_3_1": metric_plots.figure_3_1(summary, title="a long description of what was run " * 4),
        "strip of 3": metric_plots.metric_strip(compare, ["apc1", "apc2", "pe"], panel="l1", title="t"),
        "strip of 7": metric_plots.metric_strip(compare, ["apc1", "apc1_signed", "apc1_data", "apc2", "apc2_w1perm",
                                                          "pe", "pe_signed"], panel="l1", title="t"),
        "panels": metric_plots.metric_panels(summary, ["apc2", "pe"], title="t"),
        "regimes": study_figures.regime_figure({"(a) one": summary, "(b) two": summary, "(c) three": summary},
                                               title="t"),
        "disagreement": curves.disagreement_matrix(np.full((20, 20), 0.03), list(range(20)), title="t"),
    }
    for name, fig in figures.items():
        width = fig.get_size_inches()[0]
        assert width <= PAGE_WIDTH + 1e-9, (name, width)
        assert min(_text_sizes(fig)) >= BASE_TEXT, name
    assert len(figures["figure_3_1"].axes) == 6
    rows = {round(ax.get_position().y0, 3) for ax in figures["figure_3_1"].axes}
    assert len(rows) == 3  # a row per metric, the two targets side by side
    strip = [ax for ax in figures["strip of 3"].axes if ax.axison]
    assert len(strip) == 6 and len({round(ax.get_position().y0, 3) for ax in strip}) == 2
    assert not figures["disagreement"].axes[0].texts  # 20 x 20 cells at the page's width: the colour bar says
    for fig in figures.values():
        plt.close(fig)


@pytest.mark.parametrize("n", [3, 7])
def test_a_small_disagreement_matrix_writes_its_values_at_a_readable_size(n):
    fig = curves.disagreement_matrix(np.full((n, n), -0.0001) + np.eye(n) * 0.0001, list(range(n)), title="t")
    texts = fig.axes[0].texts
    assert len(texts) == n * (n - 1) and {t.get_text() for t in texts} == {"0.000"}
    assert all(t.get_fontsize() >= CELL_TEXT for t in texts)
    plt.close(fig)

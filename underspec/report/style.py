"""The book's conventions in one home: matplotlib settings, labels, number formats, the chance-line style,
and the one-line descriptions of what was run.

Nothing here changes global state: ``styled`` applies the settings to each figure as it is drawn (inside
``plt.rc_context``), so importing the package leaves ``plt.rcParams`` alone.
"""

from __future__ import annotations

import dataclasses
import string
import textwrap
import functools
import io

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

from ..text import fmt_l1
from ..training.grid import Grid

RC = {
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
}
CHANCE_STYLE = dict(color="0.35", linestyle="--", linewidth=1.2)  # every chance level / null line
# The page's text column is about 7.3 inches at the figures' 100 dpi: a figure this wide is shown at its own
# size, so its 8-10 pt text reads as the page's own; a wider one is scaled down, its text with it.
PAGE_WIDTH = 7.3
BASE_TEXT = 8  # points: the smallest text a figure writes (tick labels, legends), as the page shows it
CELL_TEXT = 9  # points: the numbers written in a heat map's cells; cells too small for them get none (cell_text)
DIVERGING = "RdBu_r"
DIGIT_CMAP = "tab10"

# metric -> (long label for axes and titles, short label for crowded tick labels)
METRIC_LABELS = {
    "pe": ("PE (same permutation)", "PE"),
    "apc1": ("APC-1 (first layer)", "APC-1"),
    "apc2": ("APC-2 (second layer)", "APC-2"),
    "apc1_data": ("APC-1, pixels with data", "APC-1\ndata pixels"),
    "apc1_signed": ("APC-1, signed matching", "APC-1\nsigned"),
    "apc2_signed": ("APC-2, signed matching", "APC-2\nsigned"),
    "pe_signed": ("PE, signed matching", "PE\nsigned"),
    "apc2_w1perm": ("APC-2 under the W1 matching", "APC-2 under\nW1 matching"),
    "apc_act": ("APC of activations", "APC\nactivations"),
    "apc_act_signed": ("APC of activations, signed", "APC activ.\nsigned"),
    "pe_act": ("PE, activations vs W1", "PE activ.\nvs W1"),
}
TARGET_LABELS = {"params": "parameters", "grads": "gradients (summed)", "displacement": "displacement (final - init)"}
AXIS_LABELS = {"l1": "L1 strength λ", "n_classes": "number of classes C"}


def styled(draw):
    """Decorator for a figure function: it draws under the book's settings (``RC``), without touching the
    global ``plt.rcParams``."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context(RC):
            result = draw(*args, **kwargs)
            # a first figure may set up the backend (Jupyter's inline one turns interactive mode on): that is
            # the session's state, not a style, and must outlive the context, or later figures go undisplayed
            interactive = matplotlib.is_interactive()
        matplotlib.interactive(interactive)
        return result
    return wrapper


def columns_that_fit(n: int, panel_width: float, *, beside: float = 0.0) -> int:
    """How many panels ``panel_width`` inches wide fit in one row of the page (``PAGE_WIDTH``, less ``beside``
    inches for a legend or a colour bar): small multiples wrap onto more rows rather than shrink. At least 1,
    at most ``n``."""
    return max(1, min(n, int((PAGE_WIDTH - beside) // panel_width)))


def fit_title(text: str, *, fontsize: float = RC["figure.titlesize"], width: float = PAGE_WIDTH) -> str:
    """``text`` with every line longer than ``width`` inches at ``fontsize`` points wrapped at spaces: a title
    as wide as the page, never wider (so that the figure is not widened past the page to hold it)."""
    chars = max(20, int(width * 72 / (0.6 * fontsize)))  # DejaVu Sans: about 0.6 em a character
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) if line else line
                     for line in text.split("\n"))


def cell_text(fig, ax, shape, texts, *, fontsize: float = CELL_TEXT) -> bool:
    """Whether ``texts`` (the longest decides; several lines allowed) fit the cells of the ``shape`` = (rows,
    columns) heat map on ``ax`` at ``fontsize`` points, measured after the figure's layout at the size the page
    shows it. Where they do not, a heat map writes no numbers and its colour bar gives the values."""
    fig.draw_without_rendering()  # places the axes (constrained layout), so the cells have their final size
    box = ax.get_window_extent()
    points = 72 / fig.dpi
    cell_w, cell_h = box.width / shape[1] * points, box.height / shape[0] * points
    lines = [line for text in texts for line in str(text).split("\n")]
    rows = max((str(text).count("\n") + 1 for text in texts), default=1)
    width = 0.62 * fontsize * max((len(line) for line in lines), default=0)  # a digit is about 0.6 em wide
    return width <= 0.9 * cell_w and 1.25 * fontsize * rows <= 0.9 * cell_h


def as_numpy(x) -> np.ndarray:
    """A tensor (any device, any float type) or array-like as a float64 numpy array, for drawing."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def metric_label(metric: str, *, short: bool = False) -> str:
    long, brief = METRIC_LABELS.get(metric, (metric, metric))
    return brief if short else long


def describe(grid: Grid, data_name: str, *, n_train: int | None = None, pairs: str | None = None,
             missing=()) -> str:
    """One line saying what a run or a sweep trained, from the grid's knobs: the list knobs as counts, the
    others as values (``n_train``: only the first images were used; ``pairs``: which seed pairs were
    compared; ``missing``: shards of a sweep that are not complete)."""
    counts, values = [], []
    for f in dataclasses.fields(grid):
        value, label = getattr(grid, f.name), f.metadata["label"]
        if f.metadata["list"]:
            counts.append(f"{len(value)} {label}")
        elif isinstance(value, tuple):  # an axis of a mixed grid: every value
            values.append(_show_axis(label, value))
        elif value is not None and grid.is_set(f):
            values.append(label.format(value))
    head = data_name + (f" (first {n_train:,} training images)" if n_train else "")
    text = f"{head}: {' x '.join(counts)}" + (f" ({pairs} pairs)" if pairs else "") + ", " + ", ".join(values)
    if missing:
        text += f" · INCOMPLETE: {len(missing)} shards missing"
    return text


def _show_axis(label: str, values: tuple) -> str:
    """A knob's label with every value of an axis in braces: ``"lr {:g}"`` -> ``"lr {0.01, 0.0003}"``."""
    return "".join(text + ("{" + ", ".join(format(v, spec) for v in values) + "}" if name is not None else "")
                   for text, name, spec, _ in string.Formatter().parse(label))


def subtitle(data_name: str, *, seeds=None, l1=None, n_classes=None, epochs=None, extra: str = "") -> str:
    """The standard figure subtitle for a slice of a grid: data set, number of seeds, λ and C shown, epochs."""
    parts = [str(data_name)]
    if seeds is not None:
        n = seeds if isinstance(seeds, int) else len(list(seeds))
        parts.append(f"{n} seed{'s' if n != 1 else ''}")
    for name, value, fmt in (("λ", l1, fmt_l1), ("C", n_classes, str)):
        if value is None:
            continue
        if isinstance(value, (list, tuple)) or hasattr(value, "__len__"):
            shown = [fmt(v) for v in value]
            parts.append(f"{name} ∈ {{{', '.join(shown)}}}" if len(shown) > 1 else f"{name} = {shown[0]}")
        else:
            parts.append(f"{name} = {fmt(value)}")
    if epochs is not None:
        parts.append(f"{epochs} epochs")
    if extra:
        parts.append(extra)
    return " · ".join(parts)


def seed_colors(seeds) -> dict[int, tuple]:
    """One colour per seed, in the order given (the reference seed first), the same throughout the book."""
    cmap = plt.get_cmap("tab10")
    return {int(s): cmap(i % 10) for i, s in enumerate(seeds)}


def png_bytes(fig) -> bytes:
    """A figure rendered to PNG bytes (the figure is closed)."""
    buf = io.BytesIO()
    with plt.rc_context(RC):
        fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()

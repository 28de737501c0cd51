"""What only the book needs: every chapter's papermill parameters cell, its "What was run" banner and the
helpers that put tables and sentences on a page. Everything a chapter computes comes from the package
(``underspec.studies``: the book's study, its cached tables, regimes and verdicts).

``PARAMETERS`` is the source text of every chapter's parameters cell (a chapter may add lines of its own after
it: ``EXTRA_PARAMETERS``); ``tests/test_book.py`` holds each chapter's cell equal to
``parameters_cell(chapter)``, so the chapters cannot drift apart.
"""

from __future__ import annotations

import pandas as pd
from IPython.display import Markdown

from underspec.text import cell

# The parameters cell of every chapter (papermill injects new values after it). Explanations stand on their
# own comment lines: papermill reads a trailing comment as help text and cannot parse one that holds "=".
PARAMETERS = '''\
# Parameters (papermill): the defaults are the paper's protocol on the offline MNIST sample.
# dataset: "mnist-5k" (offline sample of real MNIST digits), "mnist" for full MNIST (downloaded once), or
# "fashion-mnist" (full size; offline where Debian's dataset-fashion-mnist is installed)
dataset = "mnist-5k"
# seeds, l1, classes: None means the paper's values (its seven seeds, its six L1 strengths, C from 2 to 10);
# a list, or a string such as "[0, 42]", "0-6" or "0 0.01"
seeds = None
l1 = None
classes = None
epochs = 50
# steps: None trains for epochs; a number of SGD steps (the paper made 46900) sets the epochs instead
steps = None
# n_train, n_test: None uses every image; a number keeps the first n images (quick runs)
n_train = None
n_test = None
# device: "cpu", "cuda" or "auto"
device = "auto"
# results_dir: where trained runs are cached, shared by all chapters
results_dir = "../runs/cache"'''

# Parameters that only one chapter has, appended to its cell after PARAMETERS.
EXTRA_PARAMETERS = {
    "study": '''\
# sweep_dir: a results folder of `underspec sweep` whose metrics this chapter reads instead of training here
sweep_dir = None
# studies_dir: the committed studies (scripts/results.py), shown beside this build when their tables exist
studies_dir = "../results"''',
}


def parameters_cell(chapter: str) -> str:
    """The exact source of ``chapter``'s parameters cell: ``PARAMETERS`` plus the chapter's own lines."""
    extra = EXTRA_PARAMETERS.get(chapter)
    return PARAMETERS + (f"\n{extra}" if extra else "")


def what_was_run(study) -> Markdown:
    """The banner at the top of every chapter: an admonition that says what was run (``study.summary()``, or
    a sentence given as text, e.g. for a sweep's results). Show it with ``display``."""
    text = study if isinstance(study, str) else study.summary()
    return Markdown(f"```{{admonition}} What was run for this page\n{text}\n```")


def show(table: pd.DataFrame, index: bool = False):
    """A table for the page: text left-aligned and wrapped, the index hidden unless ``index``; every float to
    three decimals by ``underspec.text.cell`` (a value that rounds to zero is "0.000", never "-0.000")."""
    styler = table.style.set_properties(**{"text-align": "left", "white-space": "normal"}).format(cell)
    return styler if index else styler.hide(axis="index")


def glue_md(name: str, text) -> None:
    """Glue a computed sentence as Markdown, for ``{glue:md}`name``` in the prose: it reads as ordinary text
    (``{glue:text}`` sets a value in bold, which suits a number, not a sentence)."""
    from myst_nb import glue

    glue(name, Markdown(str(text)), display=False)

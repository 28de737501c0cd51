"""The book's shared runs and the two things every chapter shows the same way: its parameters cell and its
"What was run" banner.

Every chapter calls ``book_runs`` with its parameters, so all chapters train the same grids once and reuse
them from the cache (``underspec.load_or_train``). Two grids, both on the same data set and seeds:

- ``paper``: the paper's grid (seeds x lambdas x C), final parameters and learning curves only;
- ``detail``: the same seeds and lambdas for a few class counts, with every epoch's parameters and the
  first-layer outputs on probe images (for the chapters that follow training over time).

``PARAMETERS`` is the source text of every chapter's papermill parameters cell (a chapter may add lines of
its own after it: ``EXTRA_PARAMETERS``); ``tests/test_book.py`` holds each chapter's cell equal to
``parameters_cell(chapter)``, so the chapters cannot drift apart. ``what_was_run`` is the banner.

This file is configuration, not an algorithm: it only chooses grids and calls the package.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from IPython.display import Markdown

import underspec
from underspec.training.grid import PAPER_CLASSES, PAPER_L1, PAPER_SEEDS

DETAIL_CLASSES = (2, 5, 10)  # the class counts that get per-epoch records
PROBE_SIZE = 500  # test images whose first-layer outputs are recorded every epoch

# The parameters cell of every chapter (papermill injects new values after it). Explanations stand on their
# own comment lines: papermill reads a trailing comment as help text and cannot parse one that holds "=".
PARAMETERS = '''\
# Parameters (papermill): the defaults are the paper's protocol on the offline MNIST sample.
# dataset: "mnist-5k" (offline sample of real MNIST digits), or "mnist" for full MNIST (downloaded once)
dataset = "mnist-5k"
# seeds, l1, classes: None means the paper's values (its seven seeds, its six L1 strengths, C from 2 to 10);
# a list, or a string such as "[0, 42]", "0-6" or "0 0.01"
seeds = None
l1 = None
classes = None
epochs = 50
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
sweep_dir = None''',
}


def parameters_cell(chapter: str) -> str:
    """The exact source of ``chapter``'s parameters cell: ``PARAMETERS`` plus the chapter's own lines."""
    extra = EXTRA_PARAMETERS.get(chapter)
    return PARAMETERS + (f"\n{extra}" if extra else "")


@dataclass
class BookRuns:
    data: underspec.Dataset
    paper: underspec.Run
    detail: underspec.Run

    def summary(self) -> str:
        """One sentence that says what was run (shown on every page)."""
        p, d = self.paper.grid, self.detail.grid
        return (f"Data set **{self.data.name}** ({len(self.data.y_train):,} training / {len(self.data.y_test):,} "
                f"test images). Paper grid: {len(p.seeds)} seeds x {len(p.l1)} lambdas x {len(p.n_classes)} "
                f"class counts = {len(p)} networks, {p.epochs} epochs. Per-epoch records: C in "
                f"{list(d.n_classes)}, {len(d)} networks, {len(self.detail.probe_index)} probe images.")


def what_was_run(runs: BookRuns | str) -> Markdown:
    """The banner at the top of every chapter: an admonition that says what was run (``runs.summary()``, or
    a sentence given as text, e.g. for a sweep's results). Show it with ``display``."""
    text = runs if isinstance(runs, str) else runs.summary()
    return Markdown(f"```{{admonition}} What was run for this page\n{text}\n```")


def book_runs(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50,
              n_train: int | None = None, n_test: int | None = None, device: str = "auto",
              results_dir: str | None = "../runs/cache", progress: bool = False) -> BookRuns:
    """Load (or train once and cache) the book's two runs for these parameters.

    ``None`` means the paper's value (seeds, lambdas, class counts). The values go to ``underspec.Grid`` as
    given, so the strings papermill passes (``"[0, 42]"``, ``"0-6"``, ``"0 0.01"``) read as lists.
    ``n_train`` / ``n_test`` take the first images of the data set (quick runs). ``results_dir``: where runs
    are cached (shared by all chapters).
    """
    data = underspec.load_dataset(dataset).take(n_train, n_test)
    grid = underspec.Grid(PAPER_SEEDS if seeds is None else seeds, PAPER_L1 if l1 is None else l1,
                          PAPER_CLASSES if classes is None else classes, epochs=epochs)
    detail_classes = tuple(c for c in grid.n_classes if c in DETAIL_CLASSES) or (max(grid.n_classes),)
    cache = Path(results_dir).resolve() if results_dir else None
    paper = underspec.load_or_train(grid, data, cache_dir=cache, device=device, progress=progress)
    detail = underspec.load_or_train(dataclasses.replace(grid, n_classes=detail_classes), data, cache_dir=cache,
                                     device=device, progress=progress, snapshots=True, embeddings=True,
                                     probe_size=PROBE_SIZE)
    return BookRuns(data, paper, detail)

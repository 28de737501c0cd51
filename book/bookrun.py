"""The book's shared runs: every chapter calls ``book_runs`` with its parameters, so all chapters train the
same grids once and reuse them from the cache (``underspec.load_or_train``).

Two grids, both on the same data set and seeds:

- ``paper``: the paper's grid (seeds x lambdas x C), final parameters and learning curves only;
- ``detail``: the same seeds and lambdas for a few class counts, with every epoch's parameters and the
  first-layer outputs on probe images (for the chapters that follow training over time).

This file is configuration, not an algorithm: it only chooses grids and calls the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import underspec
from underspec.grid import PAPER_CLASSES, PAPER_L1, PAPER_SEEDS

DETAIL_CLASSES = (2, 5, 10)  # the class counts that get per-epoch records
PROBE_SIZE = 500  # test images whose first-layer outputs are recorded every epoch


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


def book_runs(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs: int = 50,
              n_train: int | None = None, n_test: int | None = None, device: str = "auto",
              results_dir: str | None = "../runs/cache", progress: bool = False) -> BookRuns:
    """Load (or train once and cache) the book's two runs for these parameters.

    ``None`` means the paper's value (seeds, lambdas, class counts). ``n_train`` / ``n_test`` take the first
    images of the data set (quick runs). ``results_dir``: where runs are cached (shared by all chapters).
    """
    data = underspec.load_dataset(dataset).take(n_train, n_test)
    seeds = tuple(PAPER_SEEDS if seeds is None else seeds)
    l1 = tuple(PAPER_L1 if l1 is None else l1)
    classes = tuple(PAPER_CLASSES if classes is None else classes)
    detail_classes = tuple(c for c in classes if c in DETAIL_CLASSES) or (max(classes),)
    cache = Path(results_dir).resolve() if results_dir else None
    paper = underspec.load_or_train(underspec.Grid(seeds, l1, classes, epochs=epochs), data, cache_dir=cache,
                                    device=device, progress=progress)
    detail = underspec.load_or_train(underspec.Grid(seeds, l1, detail_classes, epochs=epochs), data,
                                     cache_dir=cache, device=device, progress=progress, snapshots=True,
                                     embeddings=True, probe_size=PROBE_SIZE)
    return BookRuns(data, paper, detail)

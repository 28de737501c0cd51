"""Train the book's runs before the book is built, in one announced step with progress bars, so that no chapter
sits silent while it trains (``make book`` runs this first; Binder's postBuild too).

Every run a chapter reads with its default parameters: the book's study (``underspec.studies.book_study``:
the paper grid, its per-epoch records, balanced classes), the first look's grids
(``underspec.studies.first_look_study``) and the seed chapter's (``underspec.studies.seeds_study``: one
configuration with 40 seeds, one source of randomness at a time) and the redundancy chapter's
(``underspec.studies.redundancy_study``: widths 4 to 1024, its unit-level tickets) and the tuning chapter's
(``underspec.studies.tuning_study``: its runs and its tuners' journals), each trained only if the cache lacks it.
Chapters then load them from the same cache.

    python scripts/book_runs.py [--results-dir runs/cache] [--dataset mnist-5k]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def book_studies(dataset: str, results_dir: str | Path) -> dict:
    """The studies whose runs the chapters read with their default parameters, cached under ``results_dir``."""
    from underspec.studies import BookStudy, book_grid, first_look_study, redundancy_study, seeds_study
    from underspec.studies.tuning import tuning_study
    from underspec.training.data import load_dataset

    data = load_dataset(dataset).take(None, None)  # as the chapters take it
    return {"the book's study": BookStudy(data, book_grid(), results_dir, progress=True),
            "the first look": first_look_study(dataset, results_dir=results_dir, progress=True),
            "how many seeds": seeds_study(dataset, results_dir=results_dir, progress=True),
            "redundancy and width": redundancy_study(dataset, results_dir=results_dir, progress=True),
            "tuning when seeds disagree": tuning_study(dataset, results_dir=results_dir, progress=True)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default=str(ROOT / "runs" / "cache"),
                        help="the run cache the chapters read (book/_config.yml runs them from book/: ../runs/cache)")
    parser.add_argument("--dataset", default="mnist-5k", help="the chapters' data set (their default: mnist-5k)")
    args = parser.parse_args(argv)

    from underspec.errors import UnderspecError

    started = time.perf_counter()
    try:
        for name, study in book_studies(args.dataset, args.results_dir).items():
            cached = sum(study.trained(run) for run in study.specs)
            print(f"{name}: {cached} of {len(study.specs)} runs cached in {study.cache}", file=sys.stderr, flush=True)
            study.ensure(say=True)
    except UnderspecError as exc:
        print(f"book_runs: error: {exc}", file=sys.stderr)
        return 2
    print(f"the book's runs are ready ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train once, reuse: Runs cached on disk, keyed by grid, data set and recording options."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .data import Dataset
from .engine import train
from .grid import Grid
from .run import Run, load_run

RUNS_ENV = "UNDERSPEC_RUNS"
PACKAGE = Path(__file__).resolve().parent.parent
# What decides a Run's contents, relative to the package: the whole training layer and the modules below it.
TRAINING_CODE = tuple(sorted([str(p.relative_to(PACKAGE)) for p in (PACKAGE / "training").glob("*.py")]
                             + ["errors.py", "files.py", "progress.py"]))


def _training_code_hash() -> str:
    """A hash of the package's training code: a cached Run from older code is never served."""
    return hashlib.sha256(b"".join((PACKAGE / name).read_bytes() for name in TRAINING_CODE)).hexdigest()[:12]


def run_key(grid: Grid, data: Dataset, **train_kwargs) -> str:
    """A short stable name for the training of ``grid`` on ``data`` with these recording options (and this
    version of the training code)."""
    options = {k: str(v) for k, v in sorted(train_kwargs.items()) if k not in ("device", "progress")}
    blob = json.dumps({"grid": grid.to_dict(science_only=True), "data": data.name, "n_train": len(data.y_train),
                       "n_test": len(data.y_test), "options": options, "code": _training_code_hash()},
                      sort_keys=True)
    return f"{data.name.split('[')[0]}-{len(grid)}nets-{grid.epochs}ep-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def load_or_train(grid: Grid, data: Dataset, *, cache_dir: str | os.PathLike | None = None,
                  device: str | torch.device = "auto", progress: bool = True, **train_kwargs) -> Run:
    """The cached Run of ``grid`` on ``data`` if one exists under ``cache_dir``; otherwise train and cache it.

    ``cache_dir`` defaults to $UNDERSPEC_RUNS, else ``runs/cache`` in the current directory.
    """
    root = Path(cache_dir or os.environ.get(RUNS_ENV) or "runs/cache")
    directory = root / run_key(grid, data, **train_kwargs)
    if directory.is_dir():
        return load_run(directory)
    run = train(grid, data, device=device, progress=progress, **train_kwargs)
    run.save(directory)
    return run

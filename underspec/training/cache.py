"""Train once, reuse: Runs cached on disk, keyed by grid, data set and recording options."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import torch

from ..errors import UnderspecError
from ..files import check_writable
from .code import training_code_hash
from .data import Dataset
from .engine import train
from .grid import Grid, values_of
from .run import Run, load_run

RUNS_ENV = "UNDERSPEC_RUNS"
def run_key(grid: Grid, data: Dataset, **train_kwargs) -> str:
    """A short stable name for the training of ``grid`` on ``data`` with these recording options (and this
    version of the training code)."""
    options = {k: str(v) for k, v in sorted(train_kwargs.items()) if k not in ("device", "progress", "threads")}
    blob = json.dumps({"grid": grid.to_dict(science_only=True), "data": data.name, "n_train": len(data.y_train),
                       "n_test": len(data.y_test), "options": options, "code": training_code_hash()},
                      sort_keys=True)
    epochs = "-".join(map(str, values_of(grid.epochs)))
    return f"{data.name.split('[')[0]}-{len(grid)}nets-{epochs}ep-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def load_or_train(grid: Grid, data: Dataset, *, cache_dir: str | os.PathLike | None = None,
                  device: str | torch.device = "auto", progress: bool = True, mmap: bool = False,
                  **train_kwargs) -> Run:
    """The cached Run of ``grid`` on ``data`` if one exists under ``cache_dir``; otherwise train and cache it.

    ``cache_dir`` defaults to $UNDERSPEC_RUNS, else ``runs/cache`` in the current directory. An entry is
    served only when it loads cleanly (checksums, shapes) and holds this grid on this data; a damaged entry
    is replaced. When another process saves the same entry first, its run is served (a hit) and ours dropped.
    ``mmap``: a cached run is mapped from disk (``load_run(mmap=True)``), not read into memory.
    """
    if not isinstance(grid, Grid):
        raise UnderspecError(f"load_or_train needs a Grid, got {type(grid).__name__}")
    if not isinstance(data, Dataset):
        raise UnderspecError(f"load_or_train needs a Dataset, got {type(data).__name__}")
    root = Path(cache_dir or os.environ.get(RUNS_ENV) or "runs/cache").expanduser()
    directory = root / run_key(grid, data, **train_kwargs)
    cached = _cached(directory, grid, data, mmap)
    if cached is not None:
        return cached
    if directory.exists():  # damaged or foreign: the entry is derived data, so replace it
        shutil.rmtree(directory, ignore_errors=True)
    try:
        check_writable(root, "the run cache")
        writable = True
    except UnderspecError as exc:  # said before the work, and the trained run is still returned
        warnings.warn(f"{exc}: the run will be trained but not cached", stacklevel=2)
        writable = False
    run = train(grid, data, device=device, progress=progress, **train_kwargs)
    if not writable:
        return run
    try:
        run.save(directory)
    except UnderspecError as exc:
        theirs = _cached(directory, grid, data, mmap)
        if theirs is not None:
            return theirs  # another process filled the entry while we trained
        warnings.warn(f"{exc}: the trained run is returned but not cached", stacklevel=2)  # nothing trained is lost
    return run


def _cached(directory: Path, grid: Grid, data: Dataset, mmap: bool = False) -> Run | None:
    if not directory.is_dir():
        return None
    try:
        run = load_run(directory, mmap=mmap)
    except UnderspecError:
        return None
    return run if run.grid == grid.for_data(len(data.y_train)) and run.data_name == data.name else None

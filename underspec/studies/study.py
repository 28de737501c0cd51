"""A study declared as data: a data set and named runs (a grid and what to record while it trains), each
trained once and served from the run cache, with its derived tables cached beside the runs.

    study = Study(data, {"paper": RunSpec(Grid.paper())}, cache="runs/cache")
    study.ensure()                      # trains what the cache lacks, with a progress bar
    run = study.run("paper")            # mapped from the cache on first use
    table = study.table("compare", lambda: compare(run, "all"), runs=("paper",))   # cached beside the run
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import UnderspecError
from ..training.cache import load_or_train, run_key
from ..training.data import Dataset
from ..training.engine import train
from ..training.grid import Grid
from ..training.run import MixedRun, Run
from .tables import cached


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: its grid and what the engine records while it trains (see ``underspec.train``)."""

    grid: Grid
    snapshots: bool = False
    embeddings: bool = False
    probe_size: int = 1000

    def options(self) -> dict:
        return {"snapshots": self.snapshots, "embeddings": self.embeddings, "probe_size": self.probe_size}


class Study:
    """A data set and its named runs (``specs``: name -> ``RunSpec``), trained or loaded through the run cache
    under ``cache`` (None: trained in memory, nothing kept) on ``device``.

    ``run(name)`` trains or loads a run once per Study (a cached run is memory-mapped, so a process holds only
    the records it reads); ``ensure()`` trains every run the cache lacks; ``table(...)`` caches a derived table
    beside the runs, keyed by their cache keys and by the version of the code that computes tables.
    """

    def __init__(self, data: Dataset, specs: dict[str, RunSpec], cache: str | Path | None = None, *,
                 device: str = "auto", progress: bool = False, threads: int | None = None):
        if not isinstance(data, Dataset):
            raise UnderspecError(f"a study needs a Dataset, got {type(data).__name__}: use underspec.load_dataset")
        if not specs or not all(isinstance(s, RunSpec) for s in specs.values()):
            raise UnderspecError("a study needs at least one run, each declared as a RunSpec(grid, ...)")
        self.data, self.specs = data, dict(specs)
        self.cache = Path(cache).expanduser().resolve() if cache else None
        self.device, self.progress, self.threads = device, progress, threads
        self._runs: dict[str, Run | MixedRun] = {}

    def _spec(self, name: str) -> RunSpec:
        if name not in self.specs:
            raise UnderspecError(f"this study has no run {name!r}: it has {', '.join(self.specs)}")
        return self.specs[name]

    def key(self, name: str) -> str:
        """The cache key of run ``name`` (its folder under the cache), known without loading it."""
        spec = self._spec(name)
        return run_key(spec.grid, self.data, **spec.options())

    def trained(self, name: str) -> bool:
        """Whether the cache already holds run ``name`` (not checked: ``run`` retrains a damaged entry)."""
        return self.cache is not None and (self.cache / self.key(name)).is_dir()

    def run(self, name: str) -> Run | MixedRun:
        """Run ``name``: from this Study's memory, from the cache (memory-mapped), or trained and cached."""
        if name not in self._runs:
            self._runs[name] = self._load_or_train(name, self.progress)
        return self._runs[name]

    def release(self, name: str) -> None:
        """Drop run ``name`` from this Study's memory (it stays in the cache; ``run`` maps it again)."""
        self._runs.pop(name, None)

    def _load_or_train(self, name: str, progress: bool) -> Run | MixedRun:
        spec = self._spec(name)
        if self.cache is None:
            return train(spec.grid, self.data, device=self.device, progress=progress, threads=self.threads,
                         **spec.options())
        return load_or_train(spec.grid, self.data, cache_dir=self.cache, device=self.device, progress=progress,
                             mmap=True, threads=self.threads, **spec.options())

    def ensure(self, progress: bool | None = None, *, say: bool = False) -> list[str]:
        """Train and cache every run the cache lacks, without keeping it in memory (``run`` maps it from disk
        when first used); the names trained. ``say``: one line on stderr before each training."""
        if self.cache is None:
            return []
        done = []
        for name, spec in self.specs.items():
            if self.trained(name):
                continue
            if say:
                print(f"training {name}: {len(spec.grid)} networks on {self.data.name} "
                      f"({len(self.data.y_train):,} images) into {self.cache / self.key(name)}", file=sys.stderr,
                      flush=True)
            self._load_or_train(name, self.progress if progress is None else progress)
            done.append(name)
        return done

    def table(self, name: str, compute, *, runs: tuple[str, ...]) -> pd.DataFrame:
        """``compute()``, a table derived from the runs ``runs``, cached beside them (always computed without a
        cache); stored as ``<cache>/tables/<key of the first run>[-<the others' hashes>]-<name>-<code>.parquet``."""
        return cached(self.cache, self.table_stem(name, runs), compute)

    def table_stem(self, name: str, runs: tuple[str, ...]) -> str:
        """The file name (without extension) under which ``table(name, ..., runs=runs)`` is cached."""
        return "-".join([self.key(runs[0]), *(self.key(r)[-12:] for r in runs[1:]), name])

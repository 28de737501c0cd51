"""A trained grid: every member's parameters and records, stacked along a leading member axis.

Stacked tensors (``Run.init``, ``Run.final``, ``Run.grad_sum``): ``w1`` (N, H, 784), ``b1`` (N, H),
``w2`` (N, Cmax, H), ``b2`` (N, Cmax), where N = len(grid) in ``grid.members()`` order and rows of ``w2`` /
``b2`` beyond a member's own C are zero padding. ``Run.member(...)`` returns one network, unpadded.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..errors import UnderspecError
from .grid import Grid

FORMAT = "underspec-run"
FORMAT_VERSION = 1
TENSOR_FILE, META_FILE, HISTORY_FILE = "tensors.pt", "run.json", "history.parquet"
RECORDS = ("init", "final", "grad_sum")


@dataclass(eq=False)
class Member:
    """One trained network. Parameter dicts hold ``w1`` (H, 784), ``b1`` (H,), ``w2`` (C, H), ``b2`` (C,).

    ``snapshots``: the same names with a leading epoch axis (E+1, ...), entry 0 = init (or None).
    ``embeddings``: ``{"pre": (E+1, P, H), "post": (E+1, P, H)}`` first-layer outputs on the probe images
    before and after ReLU, entry 0 = init (or None). ``history``: one row per epoch.
    """

    seed: int
    l1: float
    n_classes: int
    init: dict[str, torch.Tensor]
    final: dict[str, torch.Tensor]
    grad_sum: dict[str, torch.Tensor]
    history: pd.DataFrame
    snapshots: dict[str, torch.Tensor] | None = None
    embeddings: dict[str, torch.Tensor] | None = None


@dataclass(eq=False)
class Run:
    """The result of ``underspec.train``: records of every member of ``grid``, trained on data ``data_name``.

    ``snapshots``: dict of (N, E+1, ...) parameter tensors per epoch (entry 0 = init), or None.
    ``embeddings``: (N, E+1, P, H) first-layer pre-activations on the probe images ``x_test[probe_index]``,
    or None. ``history``: DataFrame (seed, l1, n_classes, epoch, train_loss, train_acc, test_loss, test_acc,
    grad_norm).
    """

    grid: Grid
    data_name: str
    init: dict[str, torch.Tensor]
    final: dict[str, torch.Tensor]
    grad_sum: dict[str, torch.Tensor]
    history: pd.DataFrame
    probe_index: torch.Tensor
    snapshots: dict[str, torch.Tensor] | None = None
    embeddings: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def members(self) -> pd.DataFrame:
        """One row per member (index = member number): seed, l1, n_classes."""
        return pd.DataFrame(self.grid.members(), columns=["seed", "l1", "n_classes"])

    def index(self, seed: int, l1: float, n_classes: int) -> int:
        """The member number of (seed, l1, n_classes); a clear error if the grid lacks it."""
        try:
            return self.grid.members().index((int(seed), float(l1), int(n_classes)))
        except ValueError:
            g = self.grid
            raise UnderspecError(f"no member seed={seed}, l1={l1}, n_classes={n_classes} in this run: it has "
                                 f"seeds {list(g.seeds)}, l1 {list(g.l1)}, n_classes {list(g.n_classes)}") from None

    def params(self, which: str = "final") -> dict[str, torch.Tensor]:
        """Stacked parameters ``which`` in {"init", "final", "grad_sum"} (padded, see the module doc)."""
        if which not in RECORDS:
            raise UnderspecError(f"unknown record {which!r}: use one of {', '.join(RECORDS)}")
        return getattr(self, which)

    def member(self, seed: int, l1: float, n_classes: int) -> Member:
        """One network, with its records and ``w2`` / ``b2`` cut to its own C rows."""
        i = self.index(seed, l1, n_classes)
        c = int(n_classes)

        def cut(params, lead=()):
            return {k: v[(i, *lead, slice(None, c))] if k in ("w2", "b2") else v[(i, *lead)] for k, v in params.items()}

        embeddings = None
        if self.embeddings is not None:
            embeddings = {"pre": self.embeddings[i], "post": torch.relu(self.embeddings[i])}
        history = self.history[(self.history.seed == seed) & (self.history.l1 == l1)
                               & (self.history.n_classes == n_classes)].reset_index(drop=True)
        return Member(int(seed), float(l1), c, cut(self.init), cut(self.final), cut(self.grad_sum), history,
                      cut(self.snapshots, (slice(None),)) if self.snapshots is not None else None, embeddings)

    def stack(self, l1: float, n_classes: int, record: str = "final", *, seeds=None):
        """The seeds of one configuration stacked along a leading seed axis (S = len(seeds), grid order by
        default), ``w2`` / ``b2`` cut to the configuration's C.

        ``record``: ``"init"``, ``"final"`` or ``"grad_sum"`` -> {``w1`` (S, H, D), ``b1`` (S, H), ``w2``
        (S, C, H), ``b2`` (S, C)}; ``"snapshots"`` -> the same with an epoch axis (S, E+1, ...);
        ``"embeddings"`` -> the probe embeddings before ReLU, a (S, E+1, P, H) tensor.
        """
        seeds = self.grid.seeds if seeds is None else tuple(seeds)
        index = torch.tensor([self.index(s, l1, n_classes) for s in seeds])
        c = int(n_classes)
        if record == "embeddings":
            if self.embeddings is None:
                raise UnderspecError("this run has no embeddings: train with embeddings=True")
            return self.embeddings[index]
        if record == "snapshots":
            if self.snapshots is None:
                raise UnderspecError("this run has no per-epoch snapshots: train with snapshots=True")
            return {k: v[index, :, :c] if k in ("w2", "b2") else v[index] for k, v in self.snapshots.items()}
        return {k: v[index, :c] if k in ("w2", "b2") else v[index] for k, v in self.params(record).items()}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the run to ``directory`` (created; must not hold anything else), atomically."""
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            raise UnderspecError(f"{directory} is not empty: choose a new folder or remove it first")
        tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            tensors = {name: getattr(self, name) for name in RECORDS}
            tensors.update(snapshots=self.snapshots, embeddings=self.embeddings, probe_index=self.probe_index)
            torch.save({k: _to_cpu(v) for k, v in tensors.items()}, tmp / TENSOR_FILE)
            self.history.to_parquet(tmp / HISTORY_FILE, index=False)
            meta = {"format": FORMAT, "version": FORMAT_VERSION, "grid": self.grid.to_dict(),
                    "data": self.data_name, "meta": self.meta}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
            if directory.exists():
                directory.rmdir()
            os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory


def read_run_header(directory: str | os.PathLike) -> dict:
    """The metadata of a saved run (grid, data set), checked; cheap, it loads no tensors."""
    directory = Path(directory)
    path = directory / META_FILE
    if not path.is_file():
        raise UnderspecError(f"{directory} holds no underspec run (no {META_FILE}): pass the folder given to --out")
    try:
        header = json.loads(path.read_text())
        ok = header.get("format") == FORMAT
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        raise UnderspecError(f"{path} is not an underspec run file: it is corrupt or from another program")
    if header.get("version") != FORMAT_VERSION:
        raise UnderspecError(f"{path} has format version {header.get('version')}, this underspec reads "
                             f"{FORMAT_VERSION}: retrain the run")
    return header


def load_run(directory: str | os.PathLike) -> Run:
    """Load a run written by ``Run.save``; a clear error for a missing, corrupt or foreign folder."""
    directory = Path(directory)
    header = read_run_header(directory)
    try:
        grid = Grid.from_dict(header["grid"])
        tensors = torch.load(directory / TENSOR_FILE, map_location="cpu", weights_only=True)
        history = pd.read_parquet(directory / HISTORY_FILE)
        run = Run(grid, header["data"], *(tensors[k] for k in RECORDS), history, tensors["probe_index"],
                  tensors["snapshots"], tensors["embeddings"], header.get("meta", {}))
    except UnderspecError:
        raise
    except Exception as exc:
        raise UnderspecError(f"cannot read the run in {directory} ({type(exc).__name__}: {exc}); "
                             "it is corrupt: train it again") from None
    if run.final["w1"].shape[0] != len(grid) or len(history) != len(grid) * grid.epochs:
        raise UnderspecError(f"the run in {directory} is inconsistent with its grid: it is corrupt; train it again")
    return run


def _to_cpu(value):
    if isinstance(value, dict):
        return {k: v.detach().cpu() for k, v in value.items()}
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value

"""A trained grid: every member's parameters and records, stacked along a leading member axis.

Stacked tensors (``Run.init``, ``Run.final``, ``Run.grad_sum``): ``w1`` (N, H, 784), ``b1`` (N, H),
``w2`` (N, Cmax, H), ``b2`` (N, Cmax), where N = len(grid) in ``grid.members()`` order and rows of ``w2`` /
``b2`` beyond a member's own C are zero padding. A grid of depth L > 1 adds ``w2`` ... ``wL`` (N, H, H) and
their biases, and its output layer is ``w<L+1>`` (N, Cmax, H), ``b<L+1>`` (N, Cmax) (``model.param_names``).
``Run.member(...)`` returns one network, unpadded.
"""

from __future__ import annotations

import json
import numbers
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..errors import UnderspecError, shown
from ..files import remove_stale_temporaries, sha256, write_error
from .grid import Grid
from .model import output_names, param_names

FORMAT = "underspec-run"
FORMAT_VERSION = 2  # 2: checksums of every file
TENSOR_FILE, META_FILE, HISTORY_FILE = "tensors.pt", "run.json", "history.parquet"
RECORDS = ("init", "final", "grad_sum")
HISTORY_COLUMNS = ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm")


@dataclass(eq=False)
class Member:
    """One trained network. Parameter dicts hold ``w1`` (H, 784), ``b1`` (H,), ``w2`` (C, H), ``b2`` (C,).

    ``snapshots``: the same names with a leading epoch axis (E+1, ...), entry 0 = init (or None).
    ``embeddings``: ``{"pre": (E+1, P, H), "post": (E+1, P, H)}`` first-layer outputs on the probe images
    before and after ReLU, entry 0 = init (or None). ``history``: one row per epoch. ``stopped``: the epoch
    after which the stopping rule (``Grid.stop_loss``) froze it, or None.
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
    stopped: int | None = None


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
        """One row per member (index = member number): seed, l1, n_classes; with a stopping rule
        (``Grid.stop_loss``) also ``stopped``, the epoch after which the member stopped updating (NA: never)."""
        table = pd.DataFrame(self.grid.members(), columns=["seed", "l1", "n_classes"])
        if "stopped" in self.meta:
            table["stopped"] = pd.array(self.meta["stopped"], dtype="Int64")
        return table

    def index(self, seed: int | None = None, l1: float | None = None, n_classes: int | None = None) -> int:
        """The member number of (seed, l1, n_classes). An axis left out (None) may be any value, as long as
        the given ones leave one member (``run.index(seed=42)`` in a grid of one lambda and one C). A clear
        error if none or several are left, or a value has the wrong type (a seed of 0.7 or a C of 2.9 is never
        rounded to a member)."""
        g = self.grid
        given = {"seed": None if seed is None else _exact_int(seed, "seed"),
                 "l1": None if l1 is None else _exact_float(l1, "l1"),
                 "n_classes": None if n_classes is None else _exact_int(n_classes, "n_classes")}
        asked = ", ".join(f"{k}={shown(v)}" for k, v in given.items() if v is not None) or "no settings"
        members = g.members()
        found = [i for i, member in enumerate(members)
                 if all(v is None or v == m for v, m in zip(given.values(), member))]
        if len(found) == 1:
            return found[0]
        if not found:
            raise UnderspecError(f"no member {asked} in this run: it has seeds {shown(list(g.seeds))}, l1 "
                                 f"{shown(list(g.l1))}, n_classes {shown(list(g.n_classes))}")
        named = "; ".join(f"seed={s}, l1={shown(v)}, n_classes={c}" for s, v, c in (members[i] for i in found[:6]))
        raise UnderspecError(f"{len(found)} members have {asked}: give more of seed, l1, n_classes to pick one "
                             f"(for example {named}{', ...' if len(found) > 6 else ''})")

    def lambdas(self, l1=None) -> tuple[float, ...]:
        """The L1 strengths asked for: None = every lambda of the grid, or one value, or several."""
        if l1 is None:
            return self.grid.l1
        return (float(l1),) if isinstance(l1, numbers.Real) else tuple(float(v) for v in l1)

    def params(self, which: str = "final") -> dict[str, torch.Tensor]:
        """Stacked parameters ``which`` in {"init", "final", "grad_sum"} (padded, see the module doc)."""
        if which not in RECORDS:
            raise UnderspecError(f"unknown record {shown(which)}: use one of {', '.join(RECORDS)}")
        return getattr(self, which)

    def member(self, seed: int | None = None, l1: float | None = None, n_classes: int | None = None) -> Member:
        """One network, with its records and its output layer cut to its own C rows; addressed as ``index``
        addresses it (an axis of one value may be left out)."""
        i = self.index(seed, l1, n_classes)
        seed, l1, c = self.grid.members()[i]

        out = output_names(self.grid.depth)

        def cut(params, lead=()):
            return {k: v[(i, *lead, slice(None, c))] if k in out else v[(i, *lead)] for k, v in params.items()}

        embeddings = None
        if self.embeddings is not None:
            embeddings = {"pre": self.embeddings[i], "post": torch.relu(self.embeddings[i])}
        history = self.history[(self.history.seed == seed) & (self.history.l1 == l1)
                               & (self.history.n_classes == c)].reset_index(drop=True)
        return Member(int(seed), float(l1), c, cut(self.init), cut(self.final), cut(self.grad_sum), history,
                      cut(self.snapshots, (slice(None),)) if self.snapshots is not None else None, embeddings,
                      self.meta.get("stopped", [None] * len(self.grid))[i])

    def stack(self, l1: float, n_classes: int, record: str = "final", *, seeds=None):
        """The seeds of one configuration stacked along a leading seed axis (S = len(seeds), grid order by
        default), ``w2`` / ``b2`` cut to the configuration's C.

        ``record``: ``"init"``, ``"final"`` or ``"grad_sum"`` -> {``w1`` (S, H, D), ``b1`` (S, H), ``w2``
        (S, C, H), ``b2`` (S, C)}; ``"snapshots"`` -> the same with an epoch axis (S, E+1, ...);
        ``"embeddings"`` -> the probe embeddings before ReLU, a (S, E+1, P, H) tensor.
        """
        seeds = self.grid.seeds if seeds is None else tuple(seeds)
        index = torch.tensor([self.index(s, l1, n_classes) for s in seeds])
        c, out = int(n_classes), output_names(self.grid.depth)
        if record == "embeddings":
            if self.embeddings is None:
                raise UnderspecError("this run has no embeddings: train with embeddings=True")
            return self.embeddings[index]
        if record == "snapshots":
            if self.snapshots is None:
                raise UnderspecError("this run has no per-epoch snapshots: train with snapshots=True")
            return {k: v[index, :, :c] if k in out else v[index] for k, v in self.snapshots.items()}
        return {k: v[index, :c] if k in out else v[index] for k, v in self.params(record).items()}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the run to ``directory`` (created; must not hold anything else), atomically, with the SHA-256
        of every file recorded in ``run.json`` (``load_run`` checks them). A failure (full or read-only disk, a
        kill) leaves nothing behind; temporaries of saves killed earlier are removed first."""
        directory = Path(directory).expanduser()
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise UnderspecError(f"{directory} is not empty: choose a new folder or remove it first")
        tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
        try:
            directory.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(directory.parent, f".{directory.name}.tmp-*")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            tensors = {name: getattr(self, name) for name in RECORDS}
            tensors.update(snapshots=self.snapshots, embeddings=self.embeddings, probe_index=self.probe_index)
            torch.save({k: _to_cpu(v) for k, v in tensors.items()}, tmp / TENSOR_FILE)
            self.history.to_parquet(tmp / HISTORY_FILE, index=False)
            meta = {"format": FORMAT, "version": FORMAT_VERSION, "grid": self.grid.to_dict(),
                    "data": self.data_name, "meta": self.meta,
                    "sha256": {name: sha256(tmp / name) for name in (TENSOR_FILE, HISTORY_FILE)}}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
            if directory.exists():
                directory.rmdir()
            os.replace(tmp, directory)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise write_error(directory, exc) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory


def check_run(run, what: str) -> "Run":
    """``run`` if it is a Run, else the one-line error naming the function ``what`` that needed one."""
    if not isinstance(run, Run):
        raise UnderspecError(f"{what} needs a Run, got {type(run).__name__}: train one with underspec.train or "
                             "load one with underspec.load_run")
    return run


def read_run_header(directory: str | os.PathLike) -> dict:
    """The metadata of a saved run (grid, data set, checksums), checked; cheap, it loads no tensors."""
    directory = Path(directory)
    path = directory / META_FILE
    if not path.is_file():
        raise UnderspecError(f"{directory} holds no underspec run (no {META_FILE}): pass the folder given to --out")
    try:
        header = json.loads(path.read_text())
        ok = isinstance(header, dict) and header.get("format") == FORMAT
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise UnderspecError(f"{path} is not an underspec run file: it is corrupt or from another program")
    if header.get("version") != FORMAT_VERSION:
        raise UnderspecError(f"{path} has format version {shown(header.get('version'))}, this underspec reads "
                             f"{FORMAT_VERSION}: retrain the run")
    missing = [k for k in ("grid", "data", "sha256") if k not in header]
    if missing or not isinstance(header["sha256"], dict) or not isinstance(header["data"], str):
        raise UnderspecError(f"{path} lacks {', '.join(missing) or 'valid checksums'}: it is corrupt: train it again")
    return header


def load_run(directory: str | os.PathLike) -> Run:
    """Load a run written by ``Run.save``; a clear error for a missing, corrupt, altered or foreign folder.

    Every file must match the checksum recorded at save time, and every tensor and the history must have the
    shapes and members that the recorded grid implies.
    """
    directory = Path(directory).expanduser()
    header = read_run_header(directory)
    grid = Grid.from_dict(header["grid"])
    for name in (TENSOR_FILE, HISTORY_FILE):
        try:
            ok = sha256(directory / name) == header["sha256"].get(name)
        except OSError:
            ok = False
        if not ok:
            raise UnderspecError(f"{directory / name} does not match the checksum in {META_FILE} (altered or "
                                 "damaged): the run is corrupt: train it again")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles on stderr: the error below says it
            warnings.simplefilter("ignore")
            tensors = torch.load(directory / TENSOR_FILE, map_location="cpu", weights_only=True)
        history = pd.read_parquet(directory / HISTORY_FILE)
        run = Run(grid, header["data"], *(tensors[k] for k in RECORDS), history, tensors["probe_index"],
                  tensors["snapshots"], tensors["embeddings"], header.get("meta", {}))
    except Exception as exc:  # never relay torch's advice on weights_only: it would run a payload
        raise UnderspecError(f"cannot read the run in {directory} ({type(exc).__name__}; not a plain tensor "
                             "file): it is corrupt: train it again") from None
    problem = _inconsistency(run)
    if problem:
        raise UnderspecError(f"the run in {directory} does not match its grid ({problem}): it is corrupt: train it "
                             "again")
    return run


def _inconsistency(run: Run) -> str | None:
    """What in ``run`` contradicts its grid (shapes, members, history), or None."""
    g = run.grid
    n, h, k, e = len(g), g.hidden, max(g.n_classes), g.epochs

    def shape(name):  # leading dimensions each parameter must have (w1's pixels are the data's)
        rows = k if int(name[1:]) == g.depth + 1 else h
        return (n, rows) if name[0] == "b" or name == "w1" else (n, rows, h)

    expected = {name: shape(name) for name in param_names(g.depth)}
    for record in RECORDS:
        params = getattr(run, record)
        if not isinstance(params, dict) or set(params) != set(expected):
            return f"{record} holds {shown(sorted(params) if isinstance(params, dict) else type(params).__name__)}"
        for name, shape in expected.items():
            if not isinstance(params[name], torch.Tensor) or tuple(params[name].shape[:len(shape)]) != shape:
                return f"{record}.{name} has shape {tuple(getattr(params[name], 'shape', ()))}, the grid says {shape}"
    if run.snapshots is not None and any(v.shape[:2] != (n, e + 1) for v in run.snapshots.values()):
        return "the snapshots do not cover every member and epoch"
    if run.embeddings is not None and (run.embeddings.shape[:2] != (n, e + 1) or run.embeddings.shape[3] != h
                                       or run.embeddings.shape[2] != len(run.probe_index)):
        return f"embeddings of shape {tuple(run.embeddings.shape)}"
    columns = ["seed", "l1", "n_classes", "epoch", *HISTORY_COLUMNS]
    if list(run.history.columns) != columns or len(run.history) != n * e:
        return "its history has other columns or rows"
    members = [(*m, ep) for m in g.members() for ep in range(1, e + 1)]
    if list(run.history[["seed", "l1", "n_classes", "epoch"]].itertuples(index=False, name=None)) != members:
        return "its history is of other members"
    return None


def _exact_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UnderspecError(f"{what} must be an integer, got {shown(value)}")
    return int(value)


def _exact_float(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UnderspecError(f"{what} must be a number, got {shown(value)}")
    return float(value)


def _to_cpu(value):
    if isinstance(value, dict):
        return {k: v.detach().cpu() for k, v in value.items()}
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value

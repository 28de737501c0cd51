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
from ..files import is_write_failure, read_text, remove_stale_temporaries, sha256, write_error
from .grid import Grid
from .members import exact_value, find_member
from .model import output_names, param_names

FORMAT = "underspec-run"
FORMAT_VERSION = 3  # 2: checksums of every file; 3: mixed grids (a folder per part)
TENSOR_FILE, META_FILE, HISTORY_FILE = "tensors.pt", "run.json", "history.parquet"
RECORDS = ("init", "final", "grad_sum")
HISTORY_COLUMNS = ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm")
VALIDATION_COLUMNS = ("val_loss", "val_acc")  # after HISTORY_COLUMNS, in a run of a grid with a validation split


def history_columns(grid: Grid) -> tuple[str, ...]:
    """The columns of a run's history after its member and epoch: ``HISTORY_COLUMNS``, and with a validation
    split (``Grid.validation``) ``VALIDATION_COLUMNS``."""
    return HISTORY_COLUMNS + (VALIDATION_COLUMNS if grid.validation is not None else ())


@dataclass(eq=False)
class Member:
    """One trained network. Parameter dicts hold ``w1`` (H, 784), ``b1`` (H,), ``w2`` (C, H), ``b2`` (C,).

    ``snapshots``: the same names with a leading epoch axis (E+1, ...), entry 0 = init (or None).
    ``embeddings``: ``{"pre": (E+1, P, H), "post": (E+1, P, H)}`` first-layer outputs on the probe images
    before and after ReLU, entry 0 = init (or None); at depth L > 1 also ``"layers"`` (E+1, L, P, H), every
    hidden layer's pre-activations (per-layer widths that differ: a list of (E+1, P, H_l)). ``history``: one
    row per epoch (with a validation split also ``val_loss``, ``val_acc``). ``stopped``: the epoch
    after which the stopping rule (``Grid.stop_loss``) froze it, or None. ``settings``: in a mixed grid, its
    values of the grid's other axes (``{"hidden": 64, "optimizer": "adam"}``).
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
    settings: dict = field(default_factory=dict)


@dataclass(eq=False)
class Run:
    """The result of ``underspec.train``: records of every member of ``grid``, trained on data ``data_name``.

    ``snapshots``: dict of (N, E+1, ...) parameter tensors per epoch (entry 0 = init), or None.
    ``embeddings``: (N, E+1, P, H) first-layer pre-activations on the probe images ``x_test[probe_index]``,
    or None; ``deeper_embeddings``: at depth L > 1, those of hidden layers 2..L, (N, E+1, L-1, P, H), or a list of
    (N, E+1, P, H_l) where the layers' widths differ (``layer_embeddings`` gives any layer's). ``history``: DataFrame (seed, l1, n_classes, epoch, train_loss, train_acc, test_loss, test_acc,
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
    deeper_embeddings: torch.Tensor | None = None

    @property
    def members(self) -> pd.DataFrame:
        """One row per member (index = member number), its settings by name: ``member_columns(grid)`` (a
        uniform run has no axes: seed, l1, n_classes), and with a stopping rule (``Grid.stop_loss``) ``stopped``,
        the epoch after which the member stopped updating (NA: never). A ``MixedRun`` lists the same columns."""
        table = pd.DataFrame(self.grid.members(), columns=list(self.grid.member_names()))[member_columns(self.grid)]
        if "stopped" in self.meta:
            table["stopped"] = pd.array(self.meta["stopped"], dtype="Int64")
        return table

    def index(self, seed: int | None = None, l1: float | None = None, n_classes: int | None = None,
              **settings) -> int:
        """The member number of (seed, l1, n_classes). An axis left out (None) may be any value, as long as
        the given ones leave one member (``run.index(seed=42)`` in a grid of one lambda and one C). A clear
        error if none or several are left, or a value has the wrong type (a seed of 0.7 or a C of 2.9 is never
        rounded to a member). ``settings``: the run's other knobs, as a ``MixedRun`` takes them
        (``run.index(seed=0, order_seed=5, hidden=64)``): the run's one value is accepted, another refused."""
        given = {"seed": seed, "l1": l1, "n_classes": n_classes}
        return find_member(self.grid, {**{k: v for k, v in given.items() if v is not None}, **settings})

    @property
    def parts(self) -> list["Run"]:
        """The run as its uniform parts, as a ``MixedRun`` has them: itself."""
        return [self]

    def settings(self, part: int) -> dict:
        """A uniform run's part has no axes of its own."""
        return {}

    def tables(self, table_of) -> pd.DataFrame:
        """``table_of(self)``: a uniform run is its only part (``MixedRun.tables`` adds the axes as columns)."""
        return table_of(self)

    def layer_embeddings(self, layer: int = 1) -> torch.Tensor:
        """Hidden layer ``layer``'s (1 = the first) pre-activations on the probe images: (N, E+1, P, H)."""
        if self.embeddings is None:
            raise UnderspecError("this run has no embeddings: train with embeddings=True")
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= self.grid.depth:
            raise UnderspecError(f"layer must be a hidden layer 1..{self.grid.depth} of this run, got {shown(layer)}")
        if layer == 1:
            return self.embeddings
        deeper = self.deeper_embeddings
        return deeper[layer - 2] if isinstance(deeper, list) else deeper[:, :, layer - 2]

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

    def member(self, seed: int | None = None, l1: float | None = None, n_classes: int | None = None,
               **settings) -> Member:
        """One network, with its records and its output layer cut to its own C rows; addressed as ``index``
        addresses it (an axis of one value may be left out; the run's other knobs may be given)."""
        i = self.index(seed, l1, n_classes, **settings)
        seed, l1, c = self.grid.members()[i]

        out = output_names(self.grid.depth)

        def cut(params, lead=()):
            return {k: v[(i, *lead, slice(None, c))] if k in out else v[(i, *lead)] for k, v in params.items()}

        embeddings = None
        if self.embeddings is not None:
            embeddings = {"pre": self.embeddings[i], "post": torch.relu(self.embeddings[i])}
            if isinstance(self.deeper_embeddings, list):  # per-layer widths that differ: a list of layers
                embeddings["layers"] = [self.embeddings[i]] + [layer[i] for layer in self.deeper_embeddings]
            elif self.deeper_embeddings is not None:
                embeddings["layers"] = torch.cat([self.embeddings[i][:, None], self.deeper_embeddings[i]], 1)
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
        def write(tmp: Path) -> dict:
            tensors = {name: getattr(self, name) for name in RECORDS}
            tensors.update(snapshots=self.snapshots, embeddings=self.embeddings, probe_index=self.probe_index,
                           deeper_embeddings=self.deeper_embeddings)
            torch.save({k: _to_cpu(v) for k, v in tensors.items()}, tmp / TENSOR_FILE)
            self.history.to_parquet(tmp / HISTORY_FILE, index=False)
            return {"sha256": {name: sha256(tmp / name) for name in (TENSOR_FILE, HISTORY_FILE)}}

        return _save(directory, self, write)


def member_columns(grid: Grid) -> list[str]:
    """The columns of ``run.members`` for a run of ``grid``, uniform or mixed: every name of
    ``grid.member_names()``, the axes first (as ``MixedRun.tables`` puts them), then seed, l1, n_classes."""
    return [*grid.axes(), *(name for name in grid.member_names() if name not in grid.axes())]


RUN_FIELDS = ("init", "final", "grad_sum", "history", "probe_index", "snapshots", "embeddings", "deeper_embeddings")


@dataclass(eq=False)
class MixedRun:
    """The run of a mixed grid (one whose ``axes()`` vary width, depth, optimizer, learning rate, ...): one
    uniform ``Run`` per part, in ``grid.parts()`` order. Members are numbered part after part, as
    ``grid.members()`` lists them; every metric takes a part (``run.part(hidden=64)``), and
    ``seed_similarity``, ``compare`` and ``member_table`` take the whole run, with the axes as columns."""

    grid: Grid
    parts: list[Run]
    meta: dict = field(default_factory=dict)

    @property
    def data_name(self) -> str:
        return self.parts[0].data_name

    def __getattr__(self, name: str):
        """A uniform Run's records and methods (``final``, ``stack``, ``params``, ...) belong to one part: the
        one-line error says how to take it."""
        if name.startswith("_") or not hasattr(Run, name) and name not in RUN_FIELDS:
            raise AttributeError(name)
        example = ", ".join(f"{k}={getattr(self.grid.parts()[0], k)!r}" for k in self.grid.axes())
        raise UnderspecError(f"a mixed run has no {name} of its own: it holds one Run per setting of "
                             f"{', '.join(self.grid.axes())}; take one with run.part({example})")

    def settings(self, part: int) -> dict:
        """Part ``part``'s values of the grid's axes, e.g. ``{"hidden": 64, "optimizer": "adam"}``."""
        return {name: getattr(self.parts[part].grid, name) for name in self.grid.axes()}

    def tables(self, table_of) -> pd.DataFrame:
        """``table_of(part)`` for every part (a Run), concatenated, with the part's axis values as the first
        columns (the parts are the outer loop)."""
        tables = []
        for i, part in enumerate(self.parts):
            table = table_of(part).copy()
            for j, (name, value) in enumerate(self.settings(i).items()):
                table.insert(j, name, value)
            tables.append(table)
        return pd.concat(tables, ignore_index=True)

    @property
    def members(self) -> pd.DataFrame:
        """One row per member (index = member number), as ``Run.members`` lists them: ``member_columns(grid)``
        (the axes first, as in every table of a mixed run, then seed, l1, n_classes), and ``stopped`` with a
        stopping rule."""
        table = self.tables(lambda part: part.members)
        columns = member_columns(self.grid)
        return table[columns + [c for c in table.columns if c not in columns]]

    @property
    def history(self) -> pd.DataFrame:
        """Every part's history, with the axes as columns."""
        return self.tables(lambda part: part.history)

    def index(self, seed: int | None = None, l1: float | None = None, n_classes: int | None = None,
              **settings) -> int:
        """The member number of the one member with these settings (any of ``grid.member_names()``, seed, l1
        and n_classes also by position, as ``Run.index`` takes them)."""
        given = {"seed": seed, "l1": l1, "n_classes": n_classes}
        return find_member(self.grid, {**{k: v for k, v in given.items() if v is not None}, **settings})

    def part(self, **axes) -> Run:
        """The uniform part with these values of the grid's axes (those of one value may be left out)."""
        unknown = [k for k in axes if k not in self.grid.axes()]
        if unknown:
            raise UnderspecError(f"{shown(unknown[0])} is not an axis of this mixed run: pick a part by "
                                 f"{', '.join(self.grid.axes())}")
        members, names = self.grid.members(), self.grid.member_names()
        axes = {k: exact_value(v, k, members, names.index(k)) for k, v in axes.items()}
        found = [run for i, run in enumerate(self.parts) if all(self.settings(i)[k] == v for k, v in axes.items())]
        if len(found) != 1:
            choices = "; ".join(", ".join(f"{k}={v!r}" for k, v in self.settings(i).items())
                                for i in range(len(self.parts)))
            raise UnderspecError(f"{len(found) or 'no'} parts have {shown(axes)}: the parts are {choices}")
        return found[0]

    def member(self, seed: int | None = None, l1: float | None = None, n_classes: int | None = None,
               **settings) -> Member:
        """One network, addressed by any of ``grid.member_names()`` that leave one member (as ``index``)."""
        i = self.index(seed, l1, n_classes, **settings)
        size = len(self.parts[0].grid)
        part, (seed, l1, c) = self.parts[i // size], self.grid.members()[i][:3]
        member = part.member(seed, l1, c)
        member.settings = self.settings(i // size)
        return member

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the run to ``directory`` as ``Run.save`` does, one folder per part, atomically."""
        def write(tmp: Path) -> dict:
            names = [f"part-{i:03d}" for i in range(len(self.parts))]
            for name, part in zip(names, self.parts):
                part.save(tmp / name)
            return {"parts": names, "sha256": {f"{name}/{META_FILE}": sha256(tmp / name / META_FILE) for name in names}}

        return _save(directory, self, write)


def _save(directory: str | os.PathLike, run: "Run | MixedRun", write) -> Path:
    """Save ``run`` into the new folder ``directory`` atomically: ``write(tmp)`` writes its files into a
    temporary folder beside it and returns what ``run.json`` records of them (checksums, parts); then the folder
    is moved into place. A failure leaves nothing behind; temporaries of saves killed earlier are removed."""
    directory = Path(directory).expanduser()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UnderspecError(f"{directory} is not empty: choose a new folder or remove it first")
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(directory.parent, f".{directory.name}.tmp-*")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "grid": run.grid.to_dict(), "data": run.data_name,
                "meta": run.meta, **write(tmp)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        if directory.exists():
            directory.rmdir()
        os.replace(tmp, directory)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_write_failure(exc):  # a full disk, a read-only folder (torch's writer raises a RuntimeError)
            raise write_error(directory, exc) from None
        raise
    return directory


def check_run(run, what: str) -> "Run":
    """``run`` if it is a Run, else the one-line error naming the function ``what`` that needed one (for a
    mixed run: how to take one of its uniform parts)."""
    if isinstance(run, MixedRun):
        raise UnderspecError(f"{what} takes a run of one width, depth and optimizer setting; this one varies "
                             f"{', '.join(run.grid.axes())}: take one part, e.g. run.part("
                             f"{', '.join(f'{k}={getattr(run.grid.parts()[0], k)!r}' for k in run.grid.axes())})")
    if not isinstance(run, Run):
        raise UnderspecError(f"{what} needs a Run, got {type(run).__name__}: train one with underspec.train or "
                             "load one with underspec.load_run")
    return run


def check_probe(run: "Run", data, probe_size, what: str) -> None:
    """That ``data`` is the data set ``run`` was trained on and ``probe_size`` a whole number >= 1: the one-line
    error of a metric ``what`` otherwise."""
    if getattr(data, "name", None) != run.data_name:
        raise UnderspecError(f"{what}: data is {shown(getattr(data, 'name', data))} but the run was trained on "
                             f"{run.data_name!r}: pass the data set the run was trained on")
    if isinstance(probe_size, bool) or not isinstance(probe_size, numbers.Integral) or probe_size < 1:
        raise UnderspecError(f"{what}: probe_size must be a whole number of test images >= 1, got {shown(probe_size)}")


def read_run_header(directory: str | os.PathLike) -> dict:
    """The metadata of a saved run (grid, data set, checksums), checked; cheap, it loads no tensors."""
    directory = Path(directory)
    path = directory / META_FILE
    if not path.is_file():
        raise UnderspecError(f"{directory} holds no underspec run (no {META_FILE}): pass the folder given to --out")
    try:
        header = json.loads(read_text(path))
        ok = isinstance(header, dict) and header.get("format") == FORMAT
    except (OSError, ValueError, RecursionError, UnderspecError):  # unreadable, a link, not JSON, nested 10^5 deep
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


def load_run(directory: str | os.PathLike, *, mmap: bool = False) -> "Run | MixedRun":
    """Load a run written by ``Run.save``; a clear error for a missing, corrupt, altered or foreign folder.

    Every file must match the checksum recorded at save time, and every tensor and the history must have the
    shapes and members that the recorded grid implies. ``mmap``: map the tensors from disk instead of reading
    them (``torch.load(mmap=True)``): the process then holds in memory only the records it touches.
    """
    if not isinstance(directory, (str, os.PathLike)):
        raise UnderspecError(f"load_run needs the folder of a saved run, got {shown(directory)}")
    directory = Path(directory).expanduser()
    header = read_run_header(directory)
    grid = Grid.from_dict(header["grid"])
    if "parts" in header:
        return _load_mixed(directory, header, grid, mmap)
    for name in (TENSOR_FILE, HISTORY_FILE):
        if not _checksum_ok(directory / name, header["sha256"].get(name)):  # missing, a link, a FIFO, a device
            raise UnderspecError(f"{directory / name} does not match the checksum in {META_FILE} (altered or "
                                 "damaged): the run is corrupt: train it again")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles on stderr: the error below says it
            warnings.simplefilter("ignore")
            tensors = torch.load(directory / TENSOR_FILE, map_location="cpu", weights_only=True, mmap=bool(mmap))
        history = pd.read_parquet(directory / HISTORY_FILE)
        run = Run(grid, header["data"], *(tensors[k] for k in RECORDS), history, tensors["probe_index"],
                  tensors["snapshots"], tensors["embeddings"], header.get("meta", {}), tensors["deeper_embeddings"])
    except Exception as exc:  # never relay torch's advice on weights_only: it would run a payload
        raise UnderspecError(f"cannot read the run in {directory} ({type(exc).__name__}; not a plain tensor "
                             "file): it is corrupt: train it again") from None
    problem = _inconsistency(run)
    if problem:
        raise UnderspecError(f"the run in {directory} does not match its grid ({problem}): it is corrupt: train it "
                             "again")
    return run


def _checksum_ok(path: Path, expected) -> bool:
    """Whether the regular file ``path`` (never a link or a special file) has the SHA-256 ``expected``."""
    try:
        return sha256(path) == expected
    except (OSError, UnderspecError):
        return False


def _load_mixed(directory: Path, header: dict, grid: Grid, mmap: bool) -> MixedRun:
    """A mixed run: every part folder checked against its checksum and loaded, each the grid's part."""
    names, parts = header["parts"], grid.parts()
    if not isinstance(names, list) or len(names) != len(parts) or not grid.axes():
        raise UnderspecError(f"the run in {directory} does not match its grid (its parts): it is corrupt: train it "
                             "again")
    runs = []
    for name, part in zip(names, parts):
        file = f"{name}/{META_FILE}"
        if not isinstance(name, str) or "/" in name or name.startswith(".") or (directory / name).is_symlink() \
                or not _checksum_ok(directory / file, header["sha256"].get(file)):
            raise UnderspecError(f"{directory / str(name)} does not match the checksum in {META_FILE} (altered, "
                                 "damaged or missing): the run is corrupt: train it again")
        run = load_run(directory / name, mmap=mmap)
        if not isinstance(run, Run) or run.grid != part:
            raise UnderspecError(f"{directory / name} is not the part of the grid in {directory / META_FILE}: the "
                                 "run is corrupt: train it again")
        runs.append(run)
    return MixedRun(grid, runs, header.get("meta", {}))


def _inconsistency(run: Run) -> str | None:
    """What in ``run`` contradicts its grid (shapes, members, history), or None."""
    g = run.grid
    n, h, k, e = len(g), g.hidden, max(g.n_classes), g.epochs
    widths = g.layer_widths()

    def shape(name):  # leading dimensions each parameter must have (w1's pixels are the data's)
        layer = int(name[1:])
        rows = k if layer == g.depth + 1 else widths[layer - 1]
        return (n, rows) if name[0] == "b" or name == "w1" else (n, rows, widths[layer - 2])

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
    p = len(run.probe_index)
    deeper = (None if run.embeddings is None or g.depth == 1 else (n, e + 1, g.depth - 1, p, h)
              if len(set(widths)) == 1 else [(n, e + 1, p, w) for w in widths[1:]])
    found = run.deeper_embeddings
    found = (None if found is None else [tuple(t.shape) for t in found] if isinstance(found, list)
             else tuple(found.shape))
    if found != deeper:
        return "the deeper layers' embeddings do not match its depth"
    columns = ["seed", "l1", "n_classes", "epoch", *history_columns(g)]
    if list(run.history.columns) != columns or len(run.history) != n * e:
        return "its history has other columns or rows"
    members = [(*m, ep) for m in g.members() for ep in range(1, e + 1)]
    if list(run.history[["seed", "l1", "n_classes", "epoch"]].itertuples(index=False, name=None)) != members:
        return "its history is of other members"
    return None


def _to_cpu(value):
    if isinstance(value, dict):
        return {k: v.detach().cpu() for k, v in value.items()}
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value

"""A sweep's configuration and its shard plan.

A sweep is a ``SweepConfig``: a ``Grid`` (every training knob, declared once in ``training/grid.py``; keys
left out take the paper's values) plus the sweep's own keys below. Its (lambda, C) configurations are split
into *shards*, each a sub-grid that holds ALL seeds of its configurations (the metrics compare seeds within
a configuration). A YAML config (or the flags of ``underspec sweep``)::

    dataset: mnist            # full MNIST (torchvision files in data_root or $UNDERSPEC_DATA)
    seeds: 0-19               # 20 seeds; the first is the reference
    l1: [0, 0.001, 0.0025, 0.005, 0.01, 0.05]
    n_classes: 2-10
    epochs: 50
    shard_size: 6             # configurations per shard: here one class count each
    out: results/mnist-20-seeds
    executor: slurm
    partition: gpu
    gpus: 1
    time: "02:00:00"
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..errors import UnderspecError, check_choice, shown
from ..files import read_text
from ..training.choices import DATASETS
from ..training.grid import Grid

EXECUTORS = ("local", "slurm")
PAIRS = ("all", "reference")
DEFAULT_NOTEBOOK = Path(__file__).resolve().parent.parent.parent / "book" / "sweeps" / "train_grid.md"
DEFAULT_SLURM_MINUTES = 120
MAX_CONFIG_BYTES = 1 << 20  # a sweep config is a few lines; a larger file is not one
# names people write for a key, for the "did you mean" of an unknown key
ALIASES = {"classes": "n_classes", "c": "n_classes", "lambda": "l1", "lambdas": "l1", "seed": "seeds",
           "width": "hidden", "data": "dataset", "out_dir": "out", "output": "out", "gpu": "gpus"}


def _key(default, help: str, *, science: bool = False, flag: str | None = None, type=str):
    """A sweep key: its default, help text, whether it decides the results, and how a flag spells it."""
    return field(default=default, metadata={"help": help, "science": science, "flag": flag, "type": type})


@dataclass(frozen=True)
class SweepSettings:
    """The sweep's own keys (the training knobs live in the ``Grid``). Science keys decide the results (a
    rerun into the same ``out`` must agree on them); the others only say how and where to run."""

    dataset: str = _key("mnist-5k", f"one of {', '.join(DATASETS)}", science=True)
    n_train: int | None = _key(None, "use only the first N training images", science=True, type=int)
    n_test: int | None = _key(None, "use only the first N test images", science=True, type=int)
    pairs: str = _key("all", "seed pairs compared: all or reference", science=True)
    shards: int | None = _key(None, "number of shards (default: one per class count)", science=True, type=int)
    shard_size: int | None = _key(None, "(lambda, C) configurations per shard", science=True, type=int)
    out: str | None = _key(None, "results folder (created; a rerun must describe the same sweep)")
    device: str = _key("auto", "auto, cpu or cuda")
    data_root: str | None = _key(None, "where data sets are cached")
    executor: str = _key("local", "local or slurm (submitit)")
    jobs: int = _key(1, "local: shards at once", type=int)
    threads: int | None = _key(None, "CPU threads per shard (default: the usable cores divided among the jobs)",
                               type=int)
    partition: str | None = _key(None, "slurm: partition")
    time: str | None = _key(None, "slurm: time limit per shard, minutes or [D-]HH:MM:SS (default 120 min)")
    gpus: int = _key(0, "slurm: GPUs per shard", type=int)
    cpus: int | None = _key(None, "slurm: CPUs per shard", type=int)
    mem: float | None = _key(None, "slurm: memory per shard in GB", type=float)
    records: bool | str = _key(False, "keep per-epoch snapshots and embeddings: true, false or auto",
                               type="records")
    kernel: str = _key("python3", "Jupyter kernel for the notebook")
    notebook: str | None = _key(None, "the Jupytext notebook to execute (book/sweeps/train_grid.md)")

    def __post_init__(self):
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        check_choice(self.dataset, DATASETS, "data set")
        for key in ("n_train", "n_test", "shards", "shard_size", "cpus", "threads"):
            s(key, _positive_int_or_none(getattr(self, key), key))
        s("jobs", _positive_int_or_none(self.jobs, "jobs"))
        if self.jobs is None:
            raise UnderspecError("jobs must be a positive integer, e.g. --jobs 2")
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            raise UnderspecError(f"gpus must be a whole number >= 0, got {shown(self.gpus)}")
        if self.records not in (True, False, "auto"):
            raise UnderspecError(f"records must be true, false or auto, got {shown(self.records)}")
        check_choice(self.pairs, PAIRS, "pairs")
        check_choice(self.executor, EXECUTORS, "executor")
        if self.shards is not None and self.shard_size is not None:
            raise UnderspecError("give either shards (how many) or shard_size (configurations per shard), not both")
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise UnderspecError(f"unknown device {shown(self.device)}: use auto, cpu, cuda or cuda:N")
        if self.time is not None:
            s("time", str(self.time))
            slurm_minutes(self.time)
        if self.mem is not None and (not isinstance(self.mem, (int, float)) or isinstance(self.mem, bool)
                                     or not math.isfinite(self.mem) or self.mem <= 0):
            raise UnderspecError(f"mem must be a positive number of GB, got {shown(self.mem)}")
        for key in ("out", "data_root", "partition", "notebook", "kernel"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise UnderspecError(f"{key} must be a string, got {shown(value)}")
            if value is not None:
                s(key, os.fspath(value))


class SweepConfig:
    """One sweep: a ``Grid`` (the paper's values where a knob is left out), the data, the shard plan, and how
    to run it. Every key of ``Grid`` and of ``SweepSettings`` is an attribute: ``config.seeds``,
    ``config.out``. Lists accept ranges (``n_classes: 2-10``). Everything is checked on construction.
    """

    def __init__(self, **values):
        knobs = {f.name for f in dataclasses.fields(Grid)}
        try:
            grid = Grid.paper(**{k: v for k, v in values.items() if k in knobs})
            settings = SweepSettings(**{k: v for k, v in values.items() if k not in knobs})
        except TypeError as exc:  # an unknown keyword: from_dict names it; here, say what is allowed
            raise UnderspecError(f"{exc}: allowed keys are {', '.join(self.keys())}") from None
        object.__setattr__(self, "_grid", grid)
        object.__setattr__(self, "_settings", settings)
        if len(grid.seeds) < 2:
            raise UnderspecError(f"a sweep compares seeds: give at least 2, got {shown(list(grid.seeds))}")
        if grid.axes():  # its shards, tables and Figure 3.1 are per (lambda, C): one setting of everything else
            raise UnderspecError(f"a sweep takes one value of {', '.join(grid.axes())} (it shards lambda and C "
                                 f"and draws Figure 3.1 over them): run one sweep per value, or train the mixed "
                                 "grid with `underspec train` or underspec.train")
        n_configs = len(grid.l1) * len(grid.n_classes)
        if settings.shards is not None and settings.shards > n_configs:
            raise UnderspecError(f"shards = {settings.shards} but the grid has only {n_configs} (lambda, C) "
                                 "configurations: ask for at most that many shards")

    @staticmethod
    def keys() -> list[str]:
        """Every key a config may hold: the grid's knobs, then the sweep's own."""
        return [f.name for f in dataclasses.fields(Grid)] + [f.name for f in dataclasses.fields(SweepSettings)]

    @staticmethod
    def science_keys() -> list[str]:
        """The keys whose values decide the results (a rerun into the same folder must agree on them)."""
        return [f.name for cls in (Grid, SweepSettings) for f in dataclasses.fields(cls) if f.metadata["science"]]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        for part in (self._settings, self._grid):
            if name in {f.name for f in dataclasses.fields(part)}:
                return getattr(part, name)
        raise AttributeError(f"SweepConfig has no key {name!r}")

    def __setattr__(self, name, value):
        raise AttributeError("a SweepConfig is frozen: use config.replace(key=value)")

    def __eq__(self, other) -> bool:
        return isinstance(other, SweepConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"SweepConfig({self.to_dict()})"

    def __reduce__(self):  # picklable (__getattr__ would otherwise confuse copy and pickle)
        return _from_kwargs, (self.to_dict(),)

    # --- construction
    @classmethod
    def from_dict(cls, d: dict, *, source: str = "the config") -> "SweepConfig":
        """Build from plain values; an unknown key is an error that names the closest known one."""
        if not isinstance(d, dict):
            raise UnderspecError(f"{source} must be a mapping of keys to values (YAML 'key: value' lines)")
        known = cls.keys()
        for key in d:
            if key not in known:
                close = ALIASES.get(str(key).lower()) or next(iter(difflib.get_close_matches(str(key), known, n=1)), None)
                hint = f" (did you mean {close!r}?)" if close else ""
                raise UnderspecError(f"unknown key {shown(key)} in {source}{hint}: allowed keys are {', '.join(known)}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> "SweepConfig":
        """Read a YAML config; ``overrides`` (e.g. from command-line flags) replace its values."""
        path = Path(path).expanduser()
        try:
            d = load_yaml(read_text(path, MAX_CONFIG_BYTES, "a sweep config is a few lines: give long lists as "
                                                        "ranges (seeds: 0-19)")) or {}
        except FileNotFoundError:
            raise UnderspecError(f"config file {path} does not exist: check the path") from None
        except RecursionError:
            raise UnderspecError(f"the config {path} is nested too deeply to be a sweep config: fix the YAML") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UnderspecError(f"cannot read the config {path} ({yaml_problem(exc)}): fix the YAML") from None
        if not isinstance(d, dict):
            raise UnderspecError(f"{path} must hold 'key: value' lines, not a {type(d).__name__}")
        if d.get("format") == SWEEP_FILE_FORMAT and isinstance(d.get("config"), dict):
            # the sweep.yaml a results folder keeps: rerun exactly that sweep, into that folder (the file may come
            # from someone else: its recorded out is never followed)
            d = {**d["config"], "out": str(path.resolve().parent)}
        return cls.from_dict({**d, **overrides}, source=str(path))

    def replace(self, **changes) -> "SweepConfig":
        return SweepConfig(**{**self.to_dict(), **changes})

    # --- what it means
    def grid(self) -> Grid:
        """The whole sweep as one ``Grid``."""
        return self._grid

    def plan(self) -> list["Shard"]:
        """The shards, in order (see ``plan_shards``)."""
        return plan_shards(self.l1, self.n_classes, shards=self.shards, shard_size=self.shard_size)

    def identity(self) -> dict:
        """What decides the results: data, grid, pairing and shard plan (not how or where it runs)."""
        return {"data": {"dataset": self.dataset, "n_train": self.n_train, "n_test": self.n_test},
                "grid": self._grid.to_dict(science_only=True), "pairs": self.pairs,
                "shards": [[list(sh.l1), list(sh.n_classes)] for sh in self.plan()]}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """Plain values (YAML-ready), every key."""
        return {**self._grid.to_dict(), **dataclasses.asdict(self._settings)}

    def notebook_parameters(self, shard: "Shard", out_dir: str = ".") -> dict:
        """The values papermill injects into the notebook for ``shard``: ``knobs`` (every knob of the shard's
        grid, one dict, so a new knob needs no new notebook parameter) and the keys the notebook reads
        (``NOTEBOOK_PARAMETERS``)."""
        own = {k: getattr(self, k) for k in NOTEBOOK_PARAMETERS if k not in ("knobs", "out_dir")}
        return {"knobs": shard.grid(self).to_dict(), **own, "out_dir": out_dir}

    def notebook_path(self) -> Path:
        return Path(self.notebook) if self.notebook else DEFAULT_NOTEBOOK


SWEEP_FILE_FORMAT = "underspec-sweep"  # the format name of a results folder's sweep.yaml (see store.py)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, stricter: no aliases (a few hundred bytes of nested ``*refs`` expand to gigabytes)
    and no duplicate keys (the second would silently win)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise yaml.constructor.ConstructorError(None, None, "keys must be plain names", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {shown(key)}",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str):
    """Parse a config or a results folder's sweep.yaml: ``yaml.safe_load`` without aliases or duplicate keys."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def yaml_problem(exc: BaseException) -> str:
    """The first line of a YAML error, with where it is (bounded)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem:
        return shown(problem + (f" at line {mark.line + 1}" if mark else ""), 120).strip("'\"")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return shown(first, 120).strip("'\"")


# what the notebook's parameters cell must declare (the grid's knobs travel together, in ``knobs``)
NOTEBOOK_PARAMETERS = ("knobs", "dataset", "n_train", "n_test", "data_root", "pairs", "device", "records", "out_dir")


def _from_kwargs(values: dict) -> SweepConfig:
    return SweepConfig(**values)


def _positive_int_or_none(value, key):
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnderspecError(f"{key} must be a positive integer, got {shown(value)}")
    return value


def slurm_minutes(value: str) -> int:
    """Slurm-style time limit -> minutes: "90" (minutes), "HH:MM:SS", "HH:MM", "D-HH[:MM[:SS]]"."""
    text = str(value).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise UnderspecError(f"cannot read the time limit {shown(value)}: give minutes (90) or [D-]HH:MM:SS "
                             "(1-00:00:00)")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is None and b is None:
        minutes = a  # plain minutes
    else:
        hours, mins, secs = a, b or 0, c or 0
        minutes = (days or 0) * 1440 + hours * 60 + mins + (1 if secs else 0)
    if minutes < 1:
        raise UnderspecError(f"the time limit {shown(value)} is shorter than a minute")
    return minutes


# ----------------------------------------------------------------------------------------------------- shards

@dataclass(frozen=True)
class Shard:
    """A sub-grid of the sweep: all seeds x ``l1`` x ``n_classes``. ``id`` names its folder."""

    index: int
    l1: tuple[float, ...]
    n_classes: tuple[int, ...]

    @property
    def id(self) -> str:
        return f"shard-{self.index:03d}"

    def grid(self, config: SweepConfig) -> Grid:
        return dataclasses.replace(config.grid(), l1=self.l1, n_classes=self.n_classes)

    def __len__(self) -> int:
        return len(self.l1) * len(self.n_classes)


def plan_shards(l1, n_classes, *, shards: int | None = None, shard_size: int | None = None) -> list[Shard]:
    """Split the (lambda, C) configurations into sub-grids (each keeps every seed).

    ``shards=N``: N shards as even as possible: whole class counts per shard while N <= len(n_classes), else
    each class count's lambdas split further. ``shard_size=K``: at most K configurations per shard (whole class
    counts when K >= len(l1)). Neither: one shard per class count. Order: class counts, then lambdas.
    """
    l1, n_classes = tuple(l1), tuple(n_classes)
    n_l, n_c = len(l1), len(n_classes)
    if shards is not None and shard_size is not None:
        raise UnderspecError("give either shards or shard_size, not both")
    if shards is None and shard_size is None:
        shard_size = n_l
    blocks: list[tuple[tuple[float, ...], tuple[int, ...]]] = []
    if shard_size is not None:
        if shard_size < 1:
            raise UnderspecError(f"shard_size must be a positive integer, got {shard_size}")
        if shard_size >= n_l:
            per = min(shard_size // n_l, n_c)
            blocks = [(l1, n_classes[i:i + per]) for i in range(0, n_c, per)]
        else:
            blocks = [(l1[j:j + shard_size], (c,)) for c in n_classes for j in range(0, n_l, shard_size)]
    else:
        if not 1 <= shards <= n_l * n_c:
            raise UnderspecError(f"shards must be between 1 and {n_l * n_c} (the number of (lambda, C) "
                                 f"configurations), got {shards}")
        if shards <= n_c:
            blocks = [(l1, tuple(n_classes[i] for i in part)) for part in np.array_split(np.arange(n_c), shards)]
        else:
            base, extra = divmod(shards, n_c)
            for i, c in enumerate(n_classes):
                parts = np.array_split(np.arange(n_l), base + (i < extra))
                blocks += [(tuple(l1[j] for j in part), (c,)) for part in parts]
    return [Shard(i, tuple(a), tuple(b)) for i, (a, b) in enumerate(blocks)]

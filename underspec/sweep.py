"""Sweeps: a grid too big for one sitting, run as shards of a parameterised notebook, resumably.

A sweep is a ``SweepConfig`` (a YAML file or command-line flags; keys mirror the parameters of the notebook
``book/sweeps/train_grid.md``). Its (lambda, C) configurations are split into *shards*, each a sub-grid that
holds ALL seeds of its configurations (the metrics compare seeds within a configuration). Every shard is one
papermill execution of the notebook; the executed notebook is the readable record of the shard.

The results store (``out``)::

    sweep.yaml                 the sweep's config and shard plan (written once; a rerun must match it)
    shards/shard-000/          one folder per COMPLETE shard, appearing at once (a directory rename):
        parameters.yaml        what papermill injected
        notebook.ipynb         the executed notebook
        run/                   the trained Run (``underspec.load_run``)
        metrics.parquet        ``underspec.compare`` of the shard (one row per configuration, seed pair, target)
        COMPLETE.json          the completion marker, written last (fingerprint, checksums)
    shards/.shard-001.attempt-*/   a shard being computed (or killed while it was): never read, cleared on rerun
    shards/shard-001.failed/       the last failed attempt, kept to read its notebook; cleared on rerun
    slurm/                     submitit's job folders (logs), for ``executor: slurm``
    report/                    ``underspec report``: metrics / summary / history tables, Figure 3.1

A shard counts as done only when its folder holds a marker whose fingerprint is this sweep's and whose
checksums match; running the same sweep again skips those and recomputes the rest. A different sweep (another
grid, data set, size, pairing or shard plan) into the same folder is refused before anything runs. Keys that
only say *how* to run (out, device, executor, jobs, partition, time, gpus, cpus, mem, records, kernel,
notebook, data_root) may change between runs of one sweep.

Python: ``SweepConfig.from_yaml(path, **overrides)``, ``run_sweep(config)``, ``report(results_dir)``,
``load_results(results_dir)``. Command line (``register_cli``): ``underspec sweep [CONFIG.yaml] [--flags]`` and
``underspec report RESULTS_DIR``. A config (keys left out take the paper's values)::

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

Same as ``underspec sweep --dataset mnist --seeds 0-19 --classes 2-10 --shard-size 6 --executor slurm
--partition gpu --gpus 1 --time 02:00:00 --out results/mnist-20-seeds``; then ``underspec report
results/mnist-20-seeds``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import shutil
import socket
import sys
import time as _time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .data import DATASETS
from .errors import UnderspecError
from .grid import OPTIMIZERS, PAPER_CLASSES, PAPER_L1, PAPER_SEEDS, Grid, parse_floats, parse_ints

FORMAT, FORMAT_VERSION = "underspec-sweep", 1
CONFIG_FILE, SHARDS_DIR, REPORT_DIR, SLURM_DIR = "sweep.yaml", "shards", "report", "slurm"
MARKER, METRICS_FILE, RUN_DIR, NOTEBOOK_FILE, PARAMS_FILE = (
    "COMPLETE.json", "metrics.parquet", "run", "notebook.ipynb", "parameters.yaml")
EXECUTORS = ("local", "slurm")
PAIRS = ("all", "reference")
DEFAULT_NOTEBOOK = Path(__file__).resolve().parent.parent / "book" / "sweeps" / "train_grid.md"
DEFAULT_SLURM_MINUTES = 120

# keys whose values decide the results (a rerun into the same folder must agree on them) ...
SCIENCE_KEYS = ("dataset", "n_train", "n_test", "seeds", "l1", "n_classes", "hidden", "epochs", "batch_size",
                "lr", "optimizer", "class_mode", "pairs", "shards", "shard_size")
# ... and keys that only say how and where to run
EXECUTION_KEYS = ("out", "device", "data_root", "executor", "jobs", "partition", "time", "gpus", "cpus", "mem",
                  "records", "kernel", "notebook")
# names people write for a key, for the "did you mean" of an unknown key
ALIASES = {"classes": "n_classes", "c": "n_classes", "lambda": "l1", "lambdas": "l1", "seed": "seeds",
           "width": "hidden", "data": "dataset", "out_dir": "out", "output": "out", "gpu": "gpus"}
# what the notebook's parameters cell must declare (papermill injects these)
NOTEBOOK_PARAMETERS = ("dataset", "n_train", "n_test", "data_root", "seeds", "l1", "n_classes", "hidden",
                       "epochs", "batch_size", "lr", "optimizer", "class_mode", "pairs", "device", "records", "out_dir")


class ShardError(RuntimeError):
    """Some shards of a sweep failed (their notebooks are kept in ``shards/<id>.failed/``); rerun to retry."""


# ----------------------------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class SweepConfig:
    """One sweep: the grid and data (the paper's values where a key is left out), the shard plan, and how to run.

    Science keys (a rerun into the same ``out`` must agree on them): ``dataset``, ``n_train`` / ``n_test`` (use
    only the first N training / test images; None = all), ``seeds``, ``l1``, ``n_classes``, ``hidden``,
    ``epochs``, ``batch_size``, ``lr``, ``optimizer``, ``class_mode``, ``pairs`` (the seed pairs ``compare``
    scores: "all" or "reference"), ``shards`` (how many shards) or ``shard_size`` (configurations per shard;
    neither: one shard per class count).
    Execution keys: ``out`` (the results folder), ``device`` ("auto", "cpu", "cuda"), ``data_root``,
    ``executor`` ("local" or "slurm"), ``jobs`` (local: shards run at once), ``partition``, ``time`` (Slurm
    time limit: minutes or [D-]HH:MM[:SS]), ``gpus`` (per shard), ``cpus`` (per shard), ``mem`` (GB per shard),
    ``records`` (keep per-epoch snapshots and embeddings in each shard's Run: False, True or "auto"; they are
    large), ``kernel`` (Jupyter kernel name), ``notebook`` (the .md notebook to execute).
    Lists accept ranges: ``n_classes: 2-10``, ``seeds: 0-9``. Everything is checked on construction.
    """

    seeds: tuple[int, ...] = PAPER_SEEDS
    l1: tuple[float, ...] = PAPER_L1
    n_classes: tuple[int, ...] = PAPER_CLASSES
    hidden: int = 16
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "sgd"
    class_mode: str = "relabel"
    dataset: str = "mnist-5k"
    n_train: int | None = None
    n_test: int | None = None
    pairs: str = "all"
    shards: int | None = None
    shard_size: int | None = None
    out: str | None = None
    device: str = "auto"
    data_root: str | None = None
    executor: str = "local"
    jobs: int = 1
    partition: str | None = None
    time: str | None = None
    gpus: int = 0
    cpus: int | None = None
    mem: float | None = None
    records: bool | str = False
    kernel: str = "python3"
    notebook: str | None = None

    def __post_init__(self):
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        s("seeds", parse_ints(self.seeds, "seeds"))
        s("n_classes", parse_ints(self.n_classes, "n_classes"))
        s("l1", parse_floats(self.l1, "l1"))
        self.grid()  # the grid checks seeds, l1, C (2..10), hidden, epochs, batch size, lr, optimizer, class mode
        if self.dataset not in DATASETS:
            raise UnderspecError(f"unknown data set {self.dataset!r}: use one of {', '.join(DATASETS)}")
        for key in ("n_train", "n_test", "shards", "shard_size", "cpus"):
            s(key, _positive_int_or_none(getattr(self, key), key))
        s("jobs", _positive_int_or_none(self.jobs, "jobs"))
        if self.jobs is None:
            raise UnderspecError("jobs must be a positive integer, e.g. --jobs 2")
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            raise UnderspecError(f"gpus must be a whole number >= 0, got {self.gpus!r}")
        if self.records not in (True, False, "auto"):
            raise UnderspecError(f"records must be true, false or auto, got {self.records!r}")
        if self.pairs not in PAIRS:
            raise UnderspecError(f"unknown pairs {self.pairs!r}: use one of {', '.join(PAIRS)}")
        if self.executor not in EXECUTORS:
            raise UnderspecError(f"unknown executor {self.executor!r}: use one of {', '.join(EXECUTORS)}")
        if self.shards is not None and self.shard_size is not None:
            raise UnderspecError("give either shards (how many) or shard_size (configurations per shard), not both")
        if self.shards is not None and self.shards > len(self.l1) * len(self.n_classes):
            raise UnderspecError(f"shards = {self.shards} but the grid has only {len(self.l1) * len(self.n_classes)} "
                                 "(lambda, C) configurations: ask for at most that many shards")
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise UnderspecError(f"unknown device {self.device!r}: use auto, cpu, cuda or cuda:N")
        if self.time is not None:
            s("time", str(self.time))
            _minutes(self.time)
        if self.mem is not None and (not isinstance(self.mem, (int, float)) or isinstance(self.mem, bool)
                                     or not math.isfinite(self.mem) or self.mem <= 0):
            raise UnderspecError(f"mem must be a positive number of GB, got {self.mem!r}")
        for key in ("out", "data_root", "partition", "notebook", "kernel"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise UnderspecError(f"{key} must be a string, got {value!r}")
            if value is not None:
                s(key, os.fspath(value))

    # --- construction
    @classmethod
    def from_dict(cls, d: dict, *, source: str = "the config") -> "SweepConfig":
        """Build from plain values; an unknown key is an error that names the closest known one."""
        if not isinstance(d, dict):
            raise UnderspecError(f"{source} must be a mapping of keys to values (YAML 'key: value' lines)")
        known = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in known:
                close = ALIASES.get(str(key).lower()) or next(iter(difflib.get_close_matches(str(key), known, n=1)), None)
                hint = f" (did you mean {close!r}?)" if close else ""
                raise UnderspecError(f"unknown key {key!r} in {source}{hint}: allowed keys are {', '.join(known)}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> "SweepConfig":
        """Read a YAML config; ``overrides`` (e.g. from command-line flags) replace its values."""
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise UnderspecError(f"config file {path} does not exist: check the path") from None
        except (OSError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnderspecError(f"cannot read the config {path} ({first}): fix the YAML") from None
        if not isinstance(d, dict):
            raise UnderspecError(f"{path} must hold 'key: value' lines, not a {type(d).__name__}")
        return cls.from_dict({**d, **overrides}, source=str(path))

    def replace(self, **changes) -> "SweepConfig":
        return dataclasses.replace(self, **changes)

    # --- what it means
    def grid(self) -> Grid:
        """The whole sweep as one ``Grid``."""
        return Grid(seeds=self.seeds, l1=self.l1, n_classes=self.n_classes, hidden=self.hidden,
                    epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
                    class_mode=self.class_mode)

    def plan(self) -> list["Shard"]:
        """The shards, in order (see ``plan_shards``)."""
        return plan_shards(self.l1, self.n_classes, shards=self.shards, shard_size=self.shard_size)

    def identity(self) -> dict:
        """What decides the results: data, grid, pairing and shard plan (not how or where it runs)."""
        return {"data": {"dataset": self.dataset, "n_train": self.n_train, "n_test": self.n_test},
                "grid": self.grid().to_dict(), "pairs": self.pairs,
                "shards": [[list(sh.l1), list(sh.n_classes)] for sh in self.plan()]}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """Plain values (YAML-ready), every key."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    def notebook_parameters(self, shard: "Shard", out_dir: str = ".") -> dict:
        """The values papermill injects into the notebook for ``shard``."""
        return {"dataset": self.dataset, "n_train": self.n_train, "n_test": self.n_test,
                "data_root": self.data_root, "seeds": list(self.seeds), "l1": list(shard.l1),
                "n_classes": list(shard.n_classes), "hidden": self.hidden, "epochs": self.epochs,
                "batch_size": self.batch_size, "lr": self.lr, "optimizer": self.optimizer,
                "class_mode": self.class_mode, "pairs": self.pairs, "device": self.device, "records": self.records,
                "out_dir": out_dir}

    def notebook_path(self) -> Path:
        return Path(self.notebook) if self.notebook else DEFAULT_NOTEBOOK


def _positive_int_or_none(value, key):
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnderspecError(f"{key} must be a positive integer, got {value!r}")
    return value


def _minutes(value: str) -> int:
    """Slurm-style time limit -> minutes: "90" (minutes), "HH:MM:SS", "HH:MM", "D-HH[:MM[:SS]]"."""
    text = str(value).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise UnderspecError(f"cannot read the time limit {value!r}: give minutes (90) or [D-]HH:MM:SS (1-00:00:00)")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is None and b is None:
        minutes = a  # plain minutes
    else:
        hours, mins, secs = a, b or 0, c or 0
        minutes = (days or 0) * 1440 + hours * 60 + mins + (1 if secs else 0)
    if minutes < 1:
        raise UnderspecError(f"the time limit {value!r} is shorter than a minute")
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


# ------------------------------------------------------------------------------------------- the results store

def save_shard(out_dir: str | os.PathLike, run, metrics: pd.DataFrame) -> Path:
    """Write a shard's results into ``out_dir``: the Run (``run/``) and the metrics table, each atomically.

    Called by the sweep notebook. The completion marker is not written here: the sweep writes it after the
    notebook itself has finished, so a notebook that dies later leaves no complete-looking shard.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run.save(out_dir / RUN_DIR)
    _atomic_parquet(metrics, out_dir / METRICS_FILE)
    return out_dir


def shard_status(out: str | os.PathLike, shard: Shard, fingerprint: str) -> str:
    """"complete" (a valid marker), "failed" (a failed attempt kept), or "pending"."""
    folder = Path(out) / SHARDS_DIR / shard.id
    if _marker_ok(folder, shard, fingerprint):
        return "complete"
    if (Path(out) / SHARDS_DIR / f"{shard.id}.failed").exists():
        return "failed"
    return "pending"


def _marker_ok(folder: Path, shard: Shard, fingerprint: str) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
        return (marker.get("format") == FORMAT and marker.get("fingerprint") == fingerprint
                and marker.get("shard") == shard.id and marker.get("l1") == list(shard.l1)
                and marker.get("n_classes") == list(shard.n_classes)
                and (folder / RUN_DIR / "run.json").is_file() and (folder / NOTEBOOK_FILE).is_file()
                and _sha256(folder / METRICS_FILE) == marker.get("metrics_sha256"))
    except (OSError, ValueError, AttributeError):
        return False


@dataclass(frozen=True)
class ShardTask:
    """Everything one shard needs, picklable (it travels to worker processes and Slurm jobs)."""

    out: str
    shard: Shard
    parameters: dict
    notebook: str
    kernel: str
    fingerprint: str
    threads: int | None = None


def run_shard(task: ShardTask) -> dict:
    """Execute one shard's notebook through papermill and publish the shard folder, marker last.

    The work happens in a hidden attempt folder ``shards/.<id>.attempt-<uuid>/``; only when the notebook has
    finished and its outputs check out is the marker written and the folder renamed to ``shards/<id>`` (an
    atomic rename). A failure moves the attempt to ``shards/<id>.failed`` and raises ``ShardError``.
    Returns a small record (shard id, seconds, host).
    """
    import jupytext
    import papermill

    shards = Path(task.out) / SHARDS_DIR
    final = shards / task.shard.id
    if _marker_ok(final, task.shard, task.fingerprint):
        return {"shard": task.shard.id, "skipped": True}
    attempt = shards / f".{task.shard.id}.attempt-{uuid.uuid4().hex[:8]}"
    attempt.mkdir(parents=True)
    started = _time.time()
    if task.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(task.threads)  # the kernel inherits it: N shards at once share the cores
    try:
        (attempt / PARAMS_FILE).write_text(yaml.safe_dump(task.parameters, sort_keys=False))
        nb = jupytext.read(task.notebook)
        partial = attempt / "notebook.partial.ipynb"
        try:
            papermill.execute_notebook(nb, str(partial), parameters=task.parameters, kernel_name=task.kernel,
                                       cwd=str(attempt), progress_bar=False, start_timeout=300,
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no TCP warning
        except Exception as exc:
            raise ShardError(f"{task.shard.id}: {_one_line(exc)}") from None
        os.replace(partial, attempt / NOTEBOOK_FILE)
        from .run import read_run_header

        header = read_run_header(attempt / RUN_DIR)
        if Grid.from_dict(header["grid"]) != _task_grid(task):
            raise ShardError(f"{task.shard.id}: the notebook trained another grid than the shard's")
        pd.read_parquet(attempt / METRICS_FILE)  # readable
        marker = {"format": FORMAT, "version": FORMAT_VERSION, "fingerprint": task.fingerprint,
                  "shard": task.shard.id, "l1": list(task.shard.l1), "n_classes": list(task.shard.n_classes),
                  "metrics_sha256": _sha256(attempt / METRICS_FILE), "data": header.get("data"),
                  "device": header.get("meta", {}).get("device"), "host": socket.gethostname(),
                  "seconds": round(_time.time() - started, 1), "finished": _time.strftime("%Y-%m-%dT%H:%M:%S")}
        _atomic_text(attempt / MARKER, json.dumps(marker, indent=2))
        if final.exists():  # an old, invalid folder (foreign marker): never mistaken for ours, replaced
            shutil.rmtree(final)
        os.replace(attempt, final)
        shutil.rmtree(shards / f"{task.shard.id}.failed", ignore_errors=True)
        return {"shard": task.shard.id, "skipped": False, "seconds": marker["seconds"], "host": marker["host"]}
    except BaseException as exc:
        failed = shards / f"{task.shard.id}.failed"
        with contextlib.suppress(OSError):
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(attempt, failed)
        if isinstance(exc, ShardError) or not isinstance(exc, Exception):
            raise
        raise ShardError(f"{task.shard.id}: {_one_line(exc)}") from None


def _task_grid(task: ShardTask) -> Grid:
    p = task.parameters
    return Grid(seeds=p["seeds"], l1=p["l1"], n_classes=p["n_classes"], hidden=p["hidden"], epochs=p["epochs"],
                batch_size=p["batch_size"], lr=p["lr"], optimizer=p["optimizer"], class_mode=p["class_mode"])


# ------------------------------------------------------------------------------------------------- the driver

@dataclass
class SweepResult:
    """What a sweep did: shard ids ``ran``, ``skipped`` (already complete) and ``failed`` (id -> message)."""

    out: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def prepare(config: SweepConfig, *, write: bool = True) -> tuple[Path, list[Shard]]:
    """Every check a sweep makes before running anything; with ``write``, create the store and its sweep.yaml.

    Refuses (UnderspecError): no ``out``; a notebook that is missing or lacks a parameter; a data set that
    cannot be loaded or is smaller than ``n_train`` / ``n_test``; an ``out`` that is not empty and holds no
    sweep, or holds another sweep; a local sweep on a device this machine lacks.
    """
    if not config.out:
        raise UnderspecError("no results folder: pass --out DIR (or 'out: DIR' in the config)")
    out = Path(config.out).expanduser().resolve()
    plan = config.plan()
    check_notebook(config.notebook_path())
    _check_store(out, config)
    _check_data(config)
    if config.executor == "local":  # shards run here: the device must exist here (Slurm nodes have their own)
        from .engine import resolve_device

        resolve_device(config.device)
    if write:
        out.mkdir(parents=True, exist_ok=True)
        (out / SHARDS_DIR).mkdir(exist_ok=True)
        if not (out / CONFIG_FILE).exists():
            doc = {"format": FORMAT, "version": FORMAT_VERSION, "fingerprint": config.fingerprint(),
                   "config": config.to_dict(), "identity": config.identity()}
            _atomic_text(out / CONFIG_FILE, "# underspec sweep: a rerun into this folder must describe the same "
                                            "sweep (grid, data, pairs, shard plan)\n"
                         + yaml.safe_dump(doc, sort_keys=False))
    return out, plan


def run_sweep(config: SweepConfig, *, progress: bool = True, cluster: str | None = None) -> SweepResult:
    """Run (or resume) a sweep: check everything, then execute every shard that is not complete.

    ``cluster``: for ``executor="slurm"``, submitit's cluster (None = Slurm when present; "local" runs the
    jobs as local processes through the same submitit path, for tests). Raises UnderspecError for bad input
    (before any shard runs) and ShardError, after the others finished, if some shards failed.
    """
    out, plan = prepare(config)
    fingerprint = config.fingerprint()
    result = SweepResult(out)
    with _lock(out):
        _clear_attempts(out)
        todo = []
        for shard in plan:
            if shard_status(out, shard, fingerprint) == "complete":
                result.skipped.append(shard.id)
            else:
                todo.append(shard)
        threads = max(1, (os.cpu_count() or 1) // config.jobs) if config.executor == "local" and config.jobs > 1 else None
        tasks = [ShardTask(str(out), shard, config.notebook_parameters(shard), str(config.notebook_path().resolve()),
                           config.kernel, fingerprint, threads) for shard in todo]
        bar = _bar(len(plan), len(result.skipped), progress)
        try:
            if not tasks:
                pass
            elif config.executor == "slurm":
                _run_submitit(tasks, config, out, cluster, result, bar)
            elif config.jobs > 1:
                _run_processes(tasks, config.jobs, result, bar)
            else:
                for task in tasks:
                    _record(result, task, lambda t=task: run_shard(t), bar)
        finally:
            bar.close()
    if result.failed:
        lines = "; ".join(f"{k}: {v}" for k, v in result.failed.items())
        raise ShardError(f"{len(result.failed)} of {len(plan)} shards failed ({lines}); their notebooks are in "
                         f"{out / SHARDS_DIR}/<shard>.failed/; run the same command again to retry them")
    return result


def _record(result: SweepResult, task: ShardTask, call, bar):
    try:
        info = call()
        (result.skipped if info.get("skipped") else result.ran).append(task.shard.id)
    except ShardError as exc:
        result.failed[task.shard.id] = str(exc).removeprefix(f"{task.shard.id}: ")
    except Exception as exc:  # a worker or job that died: its message, one line
        result.failed[task.shard.id] = _one_line(exc).removeprefix(f"{task.shard.id}: ")
    bar.update(1)


def _run_processes(tasks, jobs, result, bar):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_shard, task): task for task in tasks}
        for future in as_completed(futures):
            _record(result, futures[future], future.result, bar)


def _run_submitit(tasks, config: SweepConfig, out: Path, cluster, result, bar):
    import submitit

    executor = submitit.AutoExecutor(folder=out / SLURM_DIR / "%j", cluster=cluster)
    params = {"name": "underspec-sweep", "timeout_min": _minutes(config.time) if config.time else DEFAULT_SLURM_MINUTES,
              "nodes": 1, "tasks_per_node": 1}
    if config.gpus:
        params["gpus_per_node"] = config.gpus
    if config.cpus:
        params["cpus_per_task"] = config.cpus
    if config.mem:
        params["mem_gb"] = config.mem
    if config.partition:
        params["slurm_partition"] = config.partition
    executor.update_parameters(**params)
    jobs = executor.map_array(run_shard, tasks)
    pending = dict(zip(jobs, tasks))
    while pending:
        done = [job for job in pending if job.done()]
        for job in done:
            _record(result, pending.pop(job), job.result, bar)
        if pending and not done:
            _time.sleep(1.0 if executor.cluster != "slurm" else 15.0)


def check_notebook(path: Path) -> None:
    """The notebook exists, reads as Jupytext, and its ``parameters`` cell declares every injected name."""
    import jupytext

    if not Path(path).is_file():
        raise UnderspecError(f"the sweep notebook {path} does not exist: run from a checkout of underspec "
                             "(pip install -e .) or pass --notebook PATH")
    try:
        nb = jupytext.read(path)
    except Exception as exc:
        raise UnderspecError(f"cannot read the notebook {path} ({_one_line(exc)})") from None
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise UnderspecError(f"{path} needs exactly one code cell tagged 'parameters' (found {len(cells)})")
    declared = {t.id for node in ast.walk(ast.parse(cells[0].source)) if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    missing = [p for p in NOTEBOOK_PARAMETERS if p not in declared]
    if missing:
        raise UnderspecError(f"the parameters cell of {path} lacks {', '.join(missing)}: it must declare "
                             f"{', '.join(NOTEBOOK_PARAMETERS)}")


def _check_store(out: Path, config: SweepConfig) -> None:
    if out.exists() and not out.is_dir():
        raise UnderspecError(f"{out} is a file: --out must name a folder")
    saved = out / CONFIG_FILE
    if not saved.exists():
        if out.exists() and any(out.iterdir()):
            raise UnderspecError(f"{out} is not empty and holds no sweep (no {CONFIG_FILE}): choose a new --out")
        return
    doc = _read_sweep_file(out)
    if doc["identity"] != json.loads(json.dumps(config.identity())):
        diff = _differences(SweepConfig.from_dict(doc["config"]), config)
        raise UnderspecError(f"{out} holds the results of another sweep (it differs in {diff}): choose a new --out, "
                             f"or rerun with the config saved in {saved}")


def _read_sweep_file(out: Path) -> dict:
    try:
        doc = yaml.safe_load((out / CONFIG_FILE).read_text())
        ok = isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("identity"), dict)
    except (OSError, yaml.YAMLError):
        ok = False
    if not ok:
        raise UnderspecError(f"{out / CONFIG_FILE} is not an underspec sweep file: it is corrupt or from another "
                             "program; choose another folder")
    if doc.get("version") != FORMAT_VERSION:
        raise UnderspecError(f"{out / CONFIG_FILE} has format version {doc.get('version')}, this underspec reads "
                             f"{FORMAT_VERSION}: run the sweep again into a new folder")
    return doc


def _differences(saved: SweepConfig, new: SweepConfig) -> str:
    keys = [k for k in SCIENCE_KEYS if getattr(saved, k) != getattr(new, k)]
    if not keys:
        return "its shard plan"
    return ", ".join(f"{k}: {_show(getattr(saved, k))} there, {_show(getattr(new, k))} here" for k in keys)


def _show(value):
    return list(value) if isinstance(value, tuple) else value


def _check_data(config: SweepConfig) -> None:
    from .data import load_dataset

    data = load_dataset(config.dataset, root=config.data_root)  # downloads once here, not in every shard
    for key, have in (("n_train", len(data.y_train)), ("n_test", len(data.y_test))):
        want = getattr(config, key)
        if want is not None and want > have:
            raise UnderspecError(f"{key} = {want} but {config.dataset} has only {have} images there: "
                                 f"lower {key} or leave it out")


def _clear_attempts(out: Path) -> None:
    """Remove the leftovers of attempts that were killed (the caller holds the sweep lock)."""
    for path in (out / SHARDS_DIR).glob(".shard-*.attempt-*"):
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _lock(out: Path):
    """One sweep driver per results folder at a time."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = out / ".lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UnderspecError(f"another `underspec sweep` is writing {out} right now: wait for it to finish, "
                                 "or use another --out") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="shards", unit="shard", disable=not enabled, file=sys.stderr)


# ----------------------------------------------------------------------------------------------------- results

@dataclass
class Results:
    """A sweep's results: ``config``, ``metrics`` (every complete shard's compare table, in grid order),
    ``history`` (one row per member and epoch), and the ids of ``missing`` shards (not complete)."""

    config: SweepConfig
    metrics: pd.DataFrame
    history: pd.DataFrame
    missing: list[str]


def load_results(results_dir: str | os.PathLike, *, allow_missing: bool = True) -> Results:
    """Read a sweep's results folder: the tables of its complete shards (what the study chapter reads).

    Rows come in the order that one run of the whole grid gives (``compare``: configurations l1-major;
    history: members seed-major, then epochs), whatever the shard plan.
    ``allow_missing=False`` makes incomplete shards an error.
    """
    out = Path(results_dir).expanduser()
    if not out.is_dir():
        raise UnderspecError(f"{out} is not a folder: pass the folder given to `underspec sweep --out`")
    if not (out / CONFIG_FILE).exists():
        raise UnderspecError(f"{out} holds no sweep (no {CONFIG_FILE}): pass the folder given to "
                             "`underspec sweep --out`")
    doc = _read_sweep_file(out)
    config = SweepConfig.from_dict(doc["config"])
    fingerprint = doc["fingerprint"]
    metrics, history, missing = [], [], []
    for shard in config.plan():
        folder = out / SHARDS_DIR / shard.id
        if not _marker_ok(folder, shard, fingerprint):
            missing.append(shard.id)
            continue
        metrics.append(pd.read_parquet(folder / METRICS_FILE))
        from .run import HISTORY_FILE

        history.append(pd.read_parquet(folder / RUN_DIR / HISTORY_FILE))
    if missing and (not allow_missing or not metrics):
        raise UnderspecError(f"{len(missing)} of {len(config.plan())} shards of {out} are not complete "
                             f"({', '.join(missing)}): run `underspec sweep` again with the same config to finish them")
    return Results(config, _grid_order(pd.concat(metrics, ignore_index=True), config),
                   _grid_order(pd.concat(history, ignore_index=True), config, members=True), missing)


def _grid_order(table: pd.DataFrame, config: SweepConfig, *, members: bool = False) -> pd.DataFrame:
    """Rows in the order one run of the whole grid would give them, whatever the shard plan: configurations
    l1-major as ``compare`` lists them (``members``: seed-major member order, as ``Run.history``); a stable
    sort, so rows within a configuration (or member) keep their order."""
    ranks = [("l1", config.l1), ("n_classes", config.n_classes)]
    if members:
        ranks.insert(0, ("seed", config.seeds))
    key = np.zeros(len(table), dtype=np.int64)
    for column, values in ranks:
        key = key * len(values) + table[column].map({v: i for i, v in enumerate(values)}).to_numpy()
    return table.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


def report(results_dir: str | os.PathLike, *, out: str | os.PathLike | None = None,
           figures: bool = True, allow_missing: bool = True) -> dict[str, Path]:
    """Aggregate a sweep: tables (Parquet + CSV) and the Figure 3.1 panels (PNG + SVG) into ``out``.

    ``out`` defaults to ``RESULTS_DIR/report``. Writes ``metrics`` (every shard's compare rows), ``summary``
    (``underspec.compare.summarize``: mean, spread and CI per configuration), ``history`` (per member and
    epoch), and ``figure-3-1-lambda`` / ``figure-3-1-classes`` (``underspec.study``). Returns name -> path.
    """
    from .compare import summarize

    results = load_results(results_dir, allow_missing=allow_missing)
    target = Path(out) if out is not None else Path(results_dir) / REPORT_DIR
    target.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    summary = summarize(results.metrics)
    for name, table in (("metrics", results.metrics), ("summary", summary), ("history", results.history)):
        paths[f"{name}.parquet"] = _atomic_parquet(table, target / f"{name}.parquet")
        paths[f"{name}.csv"] = _atomic_csv(table, target / f"{name}.csv")
    if figures:
        from . import study

        paths.update(study.save_figure_3_1(results.metrics, target, summary=summary,
                                           caption=study.describe(results.config, results.missing)))
    return paths


# -------------------------------------------------------------------------------------------------------- CLI

def register_cli(subparsers) -> None:
    """Add ``sweep`` and ``report`` to an argparse subparsers object (each sets ``func``: args -> exit code)."""
    s = subparsers.add_parser(
        "sweep", help="train a grid in shards of a papermill notebook, locally or on Slurm (resumable)",
        description="Expand the grid, split it into shards and execute book/sweeps/train_grid.md once per shard. "
                    "Flags override the config file; keys left out take the paper's values. Running the same "
                    "command again skips complete shards.",
        argument_default=argparse.SUPPRESS)
    s.add_argument("config", nargs="?", help="YAML file with the keys below (flags override it)")
    s.add_argument("--out", metavar="DIR", help="results folder (created; a rerun must describe the same sweep)")
    g = s.add_argument_group("grid and data (decide the results)")
    g.add_argument("--dataset", help=f"one of {', '.join(DATASETS)} (default mnist-5k)")
    g.add_argument("--n-train", dest="n_train", type=int, metavar="N", help="use only the first N training images")
    g.add_argument("--n-test", dest="n_test", type=int, metavar="N", help="use only the first N test images")
    g.add_argument("--seeds", nargs="+", metavar="S", help="seeds, ranges allowed: 0 42 or 0-9 (first = reference)")
    g.add_argument("--l1", nargs="+", metavar="L", help="L1 strengths lambda, e.g. 0 0.001 0.01")
    g.add_argument("--classes", dest="n_classes", nargs="+", metavar="C", help="class counts C in 2..10, e.g. 2-10 or 2 5 10")
    g.add_argument("--hidden", type=int, help="hidden units (16)")
    g.add_argument("--epochs", type=int, help="epochs (50)")
    g.add_argument("--batch-size", dest="batch_size", type=int, help="batch size (64)")
    g.add_argument("--lr", type=float, help="learning rate (0.01)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer (sgd)")
    g.add_argument("--class-mode", dest="class_mode", choices=("relabel", "subset"), help="what C means (relabel)")
    g.add_argument("--pairs", choices=PAIRS, help="seed pairs compared: all (default) or reference")
    g.add_argument("--shards", type=int, metavar="N", help="number of shards (default: one per class count)")
    g.add_argument("--shard-size", dest="shard_size", type=int, metavar="K", help="(lambda, C) configurations per shard")
    e = s.add_argument_group("execution (may change between runs)")
    e.add_argument("--device", help="auto (default), cpu or cuda")
    e.add_argument("--data-root", dest="data_root", help="where data sets are cached")
    e.add_argument("--executor", choices=EXECUTORS, help="local (default) or slurm (submitit)")
    e.add_argument("--jobs", type=int, metavar="N", help="local: shards at once (default 1)")
    e.add_argument("--partition", help="slurm: partition")
    e.add_argument("--time", help="slurm: time limit per shard, minutes or [D-]HH:MM:SS (default 120 min)")
    e.add_argument("--gpus", type=int, help="slurm: GPUs per shard (default 0)")
    e.add_argument("--cpus", type=int, help="slurm: CPUs per shard")
    e.add_argument("--mem", type=float, help="slurm: memory per shard in GB")
    e.add_argument("--records", type=_records_flag, metavar="{true,false,auto}", help="keep per-epoch snapshots and embeddings: true, false "
                   "(default) or auto")
    e.add_argument("--kernel", help="Jupyter kernel for the notebook (python3)")
    e.add_argument("--notebook", help="the Jupytext notebook to execute (book/sweeps/train_grid.md)")
    s.add_argument("--dry-run", dest="dry_run", action="store_true", help="check and print the plan, run nothing")
    s.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
    s.set_defaults(func=sweep_command)

    r = subparsers.add_parser("report", help="aggregate a sweep: tables (Parquet, CSV) and Figure 3.1 (PNG, SVG)",
                              description="Collect every complete shard of RESULTS_DIR into one tidy table, its "
                                          "per-configuration summary, and the Figure 3.1 panels.")
    r.add_argument("results_dir", metavar="RESULTS_DIR", help="the folder given to `underspec sweep --out`")
    r.add_argument("--out", default=None, help="where to write (default RESULTS_DIR/report)")
    r.add_argument("--complete", action="store_true", help="fail if any shard is not complete")
    r.add_argument("--no-figures", dest="no_figures", action="store_true", help="tables only")
    r.set_defaults(func=report_command)


def _records_flag(text: str):
    value = {"true": True, "yes": True, "false": False, "no": False, "auto": "auto"}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"--records takes true, false or auto, not {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The SweepConfig that ``underspec sweep`` flags (over an optional YAML file) describe."""
    given = {k: v for k, v in vars(args).items() if k not in ("config", "func", "command", "dry_run",
                                                              "no_progress") and not k.startswith("_")}
    given = {k: v for k, v in given.items() if k in {f.name for f in dataclasses.fields(SweepConfig)}}
    config = getattr(args, "config", None)
    if config:
        return SweepConfig.from_yaml(config, **given)
    return SweepConfig.from_dict(given, source="the flags")


def sweep_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if getattr(args, "dry_run", False):
        out, plan = prepare(config, write=False)
        fingerprint = config.fingerprint()
        print(f"{len(config.grid())} networks ({len(config.seeds)} seeds x {len(config.l1)} lambdas x "
              f"{len(config.n_classes)} class counts) in {len(plan)} shards -> {out}")
        for shard in plan:
            status = shard_status(out, shard, fingerprint) if out.exists() else "pending"
            print(f"  {shard.id}  {status:8s}  lambda {_show(shard.l1)}  C {_show(shard.n_classes)}")
        return 0
    try:
        result = run_sweep(config, progress=not getattr(args, "no_progress", False))
    except ShardError as exc:
        print(f"underspec sweep: {exc}", file=sys.stderr)
        return 1
    print(f"{len(result.ran)} shards ran, {len(result.skipped)} were already complete; "
          f"results in {result.out} (next: underspec report {result.out})")
    return 0


def report_command(args: argparse.Namespace) -> int:
    results_dir = args.results_dir
    paths = report(results_dir, out=args.out, figures=not args.no_figures, allow_missing=not args.complete)
    missing = load_results(results_dir).missing
    if missing:
        print(f"underspec report: {len(missing)} shards are not complete ({', '.join(missing)}): the report "
              "holds the others; run `underspec sweep` again to finish them", file=sys.stderr)
    folder = Path(next(iter(paths.values()))).parent
    print(f"wrote {len(paths)} files to {folder}: {', '.join(sorted(p.name for p in paths.values()))}")
    return 0


# ----------------------------------------------------------------------------------------------------- helpers

def _atomic_write(path: Path, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place: readers never see
    half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _atomic_text(path: Path, text: str) -> Path:
    return _atomic_write(path, lambda tmp: tmp.write_text(text))


def _atomic_parquet(table: pd.DataFrame, path: Path) -> Path:
    return _atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))


def _atomic_csv(table: pd.DataFrame, path: Path) -> Path:
    return _atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _one_line(exc: BaseException) -> str:
    raw = str(exc)
    if "ShardError: " in raw:  # a job's traceback (submitit's FailedJobError): keep the shard's own message
        raw = raw.rsplit("ShardError: ", 1)[1].splitlines()[0]
    text = " ".join(raw.split())
    if "PapermillExecutionError" in type(exc).__name__ and hasattr(exc, "ename"):
        text = f"notebook cell {exc.exec_count}: {exc.ename}: {' '.join(str(exc.evalue).split())}"
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."

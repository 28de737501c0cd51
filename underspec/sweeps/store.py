"""The results store of a sweep: its layout, the completion markers, the lock, and reading it back.

The store (``out``)::

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
checksums match. A different sweep (another grid, data set, size, pairing or shard plan) into the same folder
is refused before anything runs; keys that only say *how* to run may change between runs of one sweep.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import UnderspecError
from ..files import atomic_text, atomic_write, read_text, sha256, write_error
from ..training.run import HISTORY_FILE, META_FILE, TENSOR_FILE
from .config import SWEEP_FILE_FORMAT, Shard, SweepConfig, load_yaml

FORMAT, FORMAT_VERSION = SWEEP_FILE_FORMAT, 2  # 2: the marker checksums every file of a shard
CONFIG_FILE, SHARDS_DIR, REPORT_DIR, SLURM_DIR = "sweep.yaml", "shards", "report", "slurm"
MARKER, METRICS_FILE, RUN_DIR, NOTEBOOK_FILE, PARAMS_FILE = (
    "COMPLETE.json", "metrics.parquet", "run", "notebook.ipynb", "parameters.yaml")


def save_shard(out_dir: str | os.PathLike, run, tables) -> Path:
    """Write a shard's results into ``out_dir``: the Run (``run/``) and its tables, each atomically.

    tables: {name: DataFrame} with at least ``"metrics"`` (``underspec.compare``), each written as
    ``<name>.parquet`` (``metrics.study_tables`` gives metrics, distance and shifts); a single DataFrame is
    the metrics table. Called by the sweep notebook. The completion marker is not written here: the sweep
    writes it after the notebook itself has finished, so a notebook that dies later leaves no
    complete-looking shard.
    """
    tables = {"metrics": tables} if isinstance(tables, pd.DataFrame) else dict(tables)
    if "metrics" not in tables:
        raise UnderspecError("a shard needs its metrics table: pass {'metrics': compare(run), ...}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run.save(out_dir / RUN_DIR)
    for name, table in tables.items():
        atomic_write(out_dir / f"{name}.parquet", lambda tmp, t=table: t.to_parquet(tmp, index=False))
    return out_dir


def shard_status(out: str | os.PathLike, shard: Shard, fingerprint: str) -> str:
    """"complete" (a valid marker), "failed" (a failed attempt kept), or "pending"."""
    folder = Path(out) / SHARDS_DIR / shard.id
    if marker_ok(folder, shard, fingerprint):
        return "complete"
    if (Path(out) / SHARDS_DIR / f"{shard.id}.failed").exists():
        return "failed"
    return "pending"


def shard_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file a complete shard holds, by path relative to its folder (what the marker records)."""
    tables = sorted(p.name for p in folder.glob("*.parquet"))
    if METRICS_FILE not in tables:
        raise FileNotFoundError(folder / METRICS_FILE)
    names = [*tables, NOTEBOOK_FILE, *(f"{RUN_DIR}/{name}" for name in (META_FILE, TENSOR_FILE, HISTORY_FILE))]
    return {name: sha256(folder / name) for name in names}


def marker_ok(folder: Path, shard: Shard, fingerprint: str) -> bool:
    """The shard's folder holds a marker of this sweep and shard, and every file matches its checksum. A folder
    (or its run folder) that is a link is never followed: a shard counts only where it lies in the sweep."""
    if folder.is_symlink() or (folder / RUN_DIR).is_symlink():
        return False
    try:
        marker = json.loads(read_text(folder / MARKER))
        return (marker.get("format") == FORMAT and marker.get("fingerprint") == fingerprint
                and marker.get("shard") == shard.id and marker.get("l1") == list(shard.l1)
                and marker.get("n_classes") == list(shard.n_classes)
                and marker.get("sha256") == shard_checksums(folder))
    except (OSError, ValueError, AttributeError, RecursionError, UnderspecError):  # a link or a special file too
        return False



def create_store(out: Path, config: SweepConfig) -> None:
    """Create the store's folders and, the first time, its sweep.yaml (the config and its fingerprint)."""
    made = [p for p in (out, out / SHARDS_DIR) if not p.exists()]  # removed again if the store cannot be made
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / SHARDS_DIR).mkdir(exist_ok=True)
        if not (out / CONFIG_FILE).exists():
            doc = {"format": FORMAT, "version": FORMAT_VERSION, "fingerprint": config.fingerprint(),
                   "config": config.to_dict(), "identity": config.identity()}
            atomic_text(out / CONFIG_FILE, "# underspec sweep: a rerun into this folder must describe the same "
                                           "sweep (grid, data, pairs, shard plan)\n"
                        + yaml.safe_dump(doc, sort_keys=False))
    except OSError as exc:
        for path in reversed(made):
            shutil.rmtree(path, ignore_errors=True)
        raise write_error(out / CONFIG_FILE, exc) from None


def check_store(out: Path, config: SweepConfig) -> None:
    if out.exists() and not out.is_dir():
        raise UnderspecError(f"{out} is a file: --out must name a folder")
    for name in (SHARDS_DIR, CONFIG_FILE, REPORT_DIR, ".lock"):  # what the sweep writes into: never through a link
        if (out / name).is_symlink():
            raise UnderspecError(f"{out / name} is a link: a results folder holds its own files; remove the link")
    if (out / SHARDS_DIR).exists() and not (out / SHARDS_DIR).is_dir():
        raise UnderspecError(f"{out / SHARDS_DIR} is a file: remove it (the sweep keeps its shards in that folder)")
    check_shard_folders(out, config)
    saved = out / CONFIG_FILE
    if not saved.exists():
        if out.exists() and any(out.iterdir()):
            raise UnderspecError(f"{out} is not empty and holds no sweep (no {CONFIG_FILE}): choose a new --out")
        return
    doc = read_sweep_file(out)
    if doc["identity"] != json.loads(json.dumps(config.identity())):
        diff = _differences(SweepConfig.from_dict(doc["config"]), config)
        raise UnderspecError(f"{out} holds the results of another sweep (it differs in {diff}): choose a new --out, "
                             f"or rerun with the config saved in {saved}")


def check_shard_folders(out: Path, config: SweepConfig) -> None:
    """No shard's folder (nor its run folder, nor its failed attempt) is a link: a sweep never reads results
    from, nor writes or removes files in, a folder outside it."""
    for shard in config.plan():
        for path in (out / SHARDS_DIR / shard.id, out / SHARDS_DIR / shard.id / RUN_DIR,
                     out / SHARDS_DIR / f"{shard.id}.failed"):
            if path.is_symlink():
                raise UnderspecError(f"{path} is a link: a results folder holds its own shards; remove the link "
                                     "(run the sweep again to compute the shard here)")


def read_sweep_file(out: Path) -> dict:
    """The results folder's sweep.yaml, checked (it may come from someone else: read strictly)."""
    try:
        doc = load_yaml(read_text(out / CONFIG_FILE))
        ok = (isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("identity"), dict)
              and isinstance(doc.get("config"), dict) and isinstance(doc.get("fingerprint"), str))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, UnderspecError):
        ok = False
    if not ok:
        raise UnderspecError(f"{out / CONFIG_FILE} is not an underspec sweep file: it is corrupt or from another "
                             "program; choose another folder")
    if doc.get("version") != FORMAT_VERSION:
        raise UnderspecError(f"{out / CONFIG_FILE} has format version {doc.get('version')}, this underspec reads "
                             f"{FORMAT_VERSION}: run the sweep again into a new folder")
    return doc


def _differences(saved: SweepConfig, new: SweepConfig) -> str:
    keys = [k for k in SweepConfig.science_keys() if getattr(saved, k) != getattr(new, k)]
    if not keys:
        return "its shard plan"
    return ", ".join(f"{k}: {_show(getattr(saved, k))} there, {_show(getattr(new, k))} here" for k in keys)


def _show(value):
    return list(value) if isinstance(value, tuple) else value



def clear_attempts(out: Path) -> None:
    """Remove the leftovers of attempts that were killed (the caller holds the sweep lock)."""
    for path in (out / SHARDS_DIR).glob(".shard-*.attempt-*"):
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def lock(out: Path):
    """One sweep driver per results folder at a time."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = out / ".lock"
    try:  # never through a link: a .lock that points elsewhere would create a file there
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise UnderspecError(f"cannot lock {path} ({exc.strerror or type(exc).__name__}; a link or a special file "
                             "is refused): remove it, or use another --out") from None
    with os.fdopen(fd, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UnderspecError(f"another `underspec sweep` is writing {out} right now: wait for it to finish, "
                                 "or use another --out") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)



# ----------------------------------------------------------------------------------------------------- results

@dataclass
class Results:
    """A sweep's results: ``config``, ``metrics`` (every complete shard's compare table, in grid order),
    ``history`` (one row per member and epoch), the ids of ``missing`` shards (not complete), and the shards'
    other ``tables`` by name (``distance``, ``shifts``, ... when the notebook wrote them), in grid order."""

    config: SweepConfig
    metrics: pd.DataFrame
    history: pd.DataFrame
    missing: list[str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


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
    doc = read_sweep_file(out)
    config = SweepConfig.from_dict(doc["config"])
    check_shard_folders(out, config)
    fingerprint = doc["fingerprint"]
    metrics, history, missing, extra = [], [], [], {}
    for shard in config.plan():
        folder = out / SHARDS_DIR / shard.id
        if not marker_ok(folder, shard, fingerprint):
            missing.append(shard.id)
            continue
        try:
            tables = pd.read_parquet(folder / METRICS_FILE), pd.read_parquet(folder / RUN_DIR / HISTORY_FILE)
            others = {path.stem: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))
                      if path.name != METRICS_FILE}
        except Exception:  # unreadable despite its checksum (written by something else): not ours
            tables = None
        if tables is None or not rows_match(tables, shard, config) or \
                not all({"l1", "n_classes"} <= set(t.columns) for t in others.values()):  # a foreign table
            missing.append(shard.id)
            continue
        metrics.append(tables[0])
        history.append(tables[1])
        for name, table in others.items():
            extra.setdefault(name, []).append(table)
    if missing and (not allow_missing or not metrics):
        raise UnderspecError(f"{len(missing)} of {len(config.plan())} shards of {out} are not complete "
                             f"({', '.join(missing)}): run `underspec sweep` again with the same config to finish them")
    tables = {name: _grid_order(pd.concat(parts, ignore_index=True), config, members="seed" in parts[0])
              for name, parts in extra.items()}
    return Results(config, _grid_order(pd.concat(metrics, ignore_index=True), config),
                   _grid_order(pd.concat(history, ignore_index=True), config, members=True), missing, tables)


def rows_match(tables, shard: Shard, config: SweepConfig) -> bool:
    """The shard's tables hold exactly its configurations and the sweep's seeds (never another grid's rows)."""
    metrics, history = tables
    configs = {(float(a), int(c)) for a in shard.l1 for c in shard.n_classes}
    try:
        return (set(zip(metrics.l1.astype(float), metrics.n_classes.astype(int))) == configs
                and set(metrics.seed_a) | set(metrics.seed_b) <= set(config.seeds)
                and set(zip(history.l1.astype(float), history.n_classes.astype(int))) == configs
                and set(history.seed) == set(config.seeds)
                and (config.steps is not None or history.epoch.max() == config.epochs))  # a budget sets epochs
    except (AttributeError, ValueError, TypeError):
        return False


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


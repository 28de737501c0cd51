"""Executing a sweep: every check before anything runs, then each shard as one papermill execution of the
notebook ``book/sweeps/train_grid.md``, one after another, in local processes, or as Slurm jobs (submitit).

Python: ``run_sweep(config)``; command line: ``underspec sweep [CONFIG.yaml] [--flags]``. Running the same
sweep again skips the complete shards and recomputes the rest.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import socket
import time as _time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import yaml

from ..errors import UnderspecError, shown
from ..files import atomic_text, check_writable
from ..progress import progress_bar
from ..training.data import class_labels, load_dataset
from ..training.code import package_code_hash
from ..training.engine import resolve_device
from ..training.grid import Grid, values_of
from ..training.memory import block_sizes, default_memory_budget, memory_plan
from ..training.run import read_run_header
from ..training.threads import PASSIVE_WAIT, default_threads
from .config import DEFAULT_SLURM_MINUTES, NOTEBOOK_PARAMETERS, Shard, SweepConfig, slurm_minutes
from .store import (FORMAT, FORMAT_VERSION, MARKER, METRICS_FILE, NOTEBOOK_FILE, PARAMS_FILE, RUN_DIR, SHARDS_DIR,
                    SLURM_DIR, check_store, clear_attempts, create_store, load_results, lock, marker_ok, shard_checksums,
                    shard_status)


class ShardError(RuntimeError):
    """Some shards of a sweep failed (their notebooks are kept in ``shards/<id>.failed/``); rerun to retry."""



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
    if marker_ok(final, task.shard, task.fingerprint):
        return {"shard": task.shard.id, "skipped": True}
    attempt = shards / f".{task.shard.id}.attempt-{uuid.uuid4().hex[:8]}"
    attempt.mkdir(parents=True)
    started = _time.time()
    os.environ.update(PASSIVE_WAIT)  # the kernel inherits it: idle threads sleep (training/threads.py)
    if task.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(task.threads)  # the kernel inherits it: N shards at once share the cores
    try:
        flat = {**task.parameters["knobs"], **{k: v for k, v in task.parameters.items() if k != "knobs"}}
        (attempt / PARAMS_FILE).write_text(yaml.safe_dump(flat, sort_keys=False))  # the readable record
        nb = jupytext.read(task.notebook)
        partial = attempt / "notebook.partial.ipynb"
        try:
            papermill.execute_notebook(nb, str(partial), parameters=task.parameters, kernel_name=task.kernel,
                                       cwd=str(attempt), progress_bar=False, start_timeout=300,
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no TCP warning
        except Exception as exc:
            raise ShardError(f"{task.shard.id}: {_one_line(exc)}") from None
        os.replace(partial, attempt / NOTEBOOK_FILE)
        header = read_run_header(attempt / RUN_DIR)
        if Grid.from_dict(header["grid"]) != _task_grid(task).for_data(header.get("meta", {}).get("n_train", 0)):
            raise ShardError(f"{task.shard.id}: the notebook trained another grid than the shard's")
        pd.read_parquet(attempt / METRICS_FILE)  # readable
        marker = {"format": FORMAT, "version": FORMAT_VERSION, "fingerprint": task.fingerprint,
                  "shard": task.shard.id, "l1": list(task.shard.l1), "n_classes": list(task.shard.n_classes),
                  "sha256": shard_checksums(attempt), "data": header.get("data"),
                  "device": header.get("meta", {}).get("device"), "host": socket.gethostname(),
                  "seconds": round(_time.time() - started, 1), "finished": _time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "package_code": package_code_hash()}
        atomic_text(attempt / MARKER, json.dumps(marker, indent=2))
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
    return Grid.from_dict(task.parameters["knobs"])



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

    Refuses (UnderspecError): no ``out``, or one that cannot be written; a notebook that is missing or lacks a
    parameter; a Jupyter kernel that does not exist; a data set that
    cannot be loaded or is smaller than ``n_train`` / ``n_test``; an ``out`` that is not empty and holds no
    sweep, or holds another sweep; a local sweep on a device this machine lacks.
    """
    if not config.out:
        raise UnderspecError("no results folder: pass --out DIR (or 'out: DIR' in the config)")
    out = check_writable(config.out, "--out").resolve()
    plan = config.plan()
    check_notebook(config.notebook_path())
    _check_kernel(config.kernel)
    check_store(out, config)
    if config.data_root is not None:
        check_writable(config.data_root, "--data-root")
    _check_data(config)
    if config.executor == "local":  # shards run here: the device must exist here (Slurm nodes have their own)
        resolve_device(config.device)
    if write:
        create_store(out, config)
    return out, plan


def _check_kernel(name: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise UnderspecError(f"there is no Jupyter kernel {shown(name)}: list them with `jupyter kernelspec list` "
                             "and pass --kernel NAME (the default, python3, is installed by `make`)") from None


def run_sweep(config: SweepConfig, *, progress: bool = True, cluster: str | None = None) -> SweepResult:
    """Run (or resume) a sweep: check everything, then execute every shard that is not complete.

    ``cluster``: for ``executor="slurm"``, submitit's cluster (None = Slurm when present; "local" runs the
    jobs as local processes through the same submitit path, for tests). Raises UnderspecError for bad input
    (before any shard runs) and ShardError, after the others finished, if some shards failed.
    """
    if config.executor == "slurm" and cluster is None and shutil.which("sbatch") is None:
        raise UnderspecError("--executor slurm, but Slurm is not available on this machine (no sbatch): run on "
                             "the cluster's login node, or use --executor local")
    out, plan = prepare(config)
    fingerprint = config.fingerprint()
    result = SweepResult(out)
    with lock(out):
        clear_attempts(out)
        todo = []
        for shard in plan:
            if shard_status(out, shard, fingerprint) == "complete":
                result.skipped.append(shard.id)
            else:
                todo.append(shard)
        # the usable cores divided among the shards that run at once (Slurm gives each job its own cores)
        threads = config.threads or (default_threads(config.jobs) if config.executor == "local" else None)
        tasks = [ShardTask(str(out), shard, config.notebook_parameters(shard), str(config.notebook_path().resolve()),
                           config.kernel, fingerprint, threads) for shard in todo]
        bar = progress_bar(len(plan), "shards", enabled=progress, unit="shard", initial=len(result.skipped))
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
    members = load_results(out).tables.get("members")
    if members is not None and len(members) and bool(members["diverged"].all()):
        raise ShardError(f"every one of the {len(members)} networks diverged (loss or weights not finite), so the "
                         f"results in {out} hold no metric: lower the learning rate (--lr) and run into a new --out")
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
    params = {"name": "underspec-sweep", "timeout_min": slurm_minutes(config.time) if config.time else DEFAULT_SLURM_MINUTES,
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



def _check_data(config: SweepConfig) -> None:
    data = load_dataset(config.dataset, root=config.data_root)  # downloads once here, not in every shard
    for key, have in (("n_train", len(data.y_train)), ("n_test", len(data.y_test))):
        want = getattr(config, key)
        if want is not None and want > have:
            raise UnderspecError(f"{key} = {want} but {config.dataset} has only {have} images there: "
                                 f"lower {key} or leave it out")
    # every network must have images to train and to be tested on, in the part of the data the sweep takes
    # (found here, not in every shard's notebook)
    taken = data.take(config.n_train, config.n_test)
    grid = config.grid()
    for c in grid.n_classes:
        for mode in values_of(grid.class_mode):
            for images, y in (("training", taken.y_train), ("test", taken.y_test)):
                if not bool(class_labels(y, c, mode)[0].any()):
                    raise UnderspecError(f"the first {len(y):,} {images} images of {config.dataset} hold no digit "
                                         f"0..{c - 1} that a network with C = {c} in {mode} mode sees: raise "
                                         f"{'n_train' if images == 'training' else 'n_test'} or choose other C")
    fewest = min(int(class_labels(taken.y_train, c, mode)[0].sum()) for c in grid.n_classes
                 for mode in values_of(grid.class_mode))
    if max(values_of(grid.batch_size)) > fewest:
        raise UnderspecError(f"batch size {max(values_of(grid.batch_size))} is larger than the {fewest:,} training "
                             f"images a network of this sweep sees: lower batch_size to {fewest} or less, or raise "
                             "n_train")
    # every shard must fit in memory where it runs (a local sweep: this machine; Slurm: the --mem asked for)
    budget = (default_memory_budget(resolve_device(config.device)) if config.executor == "local"
              else int(config.mem * 2**30) if config.mem else None)
    n_test = config.n_test or len(data.y_test)
    for shard in config.plan():
        grid = shard.grid(config).for_data(config.n_train or len(data.y_train))
        plan = memory_plan(grid, data.x_train.shape[1], n_test, probe_size=min(1000, n_test),
                           snapshots=config.records is True, embeddings=config.records is True)
        block_sizes(plan, budget, 1, 1, torch.device("cpu"))



def _one_line(exc: BaseException) -> str:
    raw = str(exc)
    if "ShardError: " in raw:  # a job's traceback (submitit's FailedJobError): keep the shard's own message
        raw = raw.rsplit("ShardError: ", 1)[1].splitlines()[0]
    text = " ".join(raw.split())
    if "PapermillExecutionError" in type(exc).__name__ and hasattr(exc, "ename"):
        text = f"notebook cell {exc.exec_count}: {exc.ename}: {' '.join(str(exc.evalue).split())}"
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."

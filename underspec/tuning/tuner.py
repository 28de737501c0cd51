"""The tuner: Optuna's ask-and-tell loop, each batch of trials trained as one grid.

A worker asks the sampler for ``batch`` trials at once, builds each trial's grid (its values, the fixed knobs,
the seeds: ``space.trial_grid``) and trains the batch in one call of the engine (``train_parts``: every member
is exactly the network its own grid gives). A trial's value is its seeds' mean validation metric at the last
epoch; the seeds' values, spread and test accuracies are trial attributes (the test accuracy is never read to
choose: a chapter reads it once, for the configuration it chose). A pruner, when asked for, is fed every epoch's
validation value of every trial (the seeds' mean) and stops the members of a pruned trial through the
engine's stopping masks: they keep the parameters they had.

Storage is Optuna's ``JournalStorage`` with its file backend: an append-only file that several workers (Slurm
jobs, local processes) share without a database server. Every trial carries its worker (host, process) and a
heartbeat; a trial left running by a worker that died (its process gone on this host, or its heartbeat older
than ``stale_after``) is taken over by the next worker, with its number and values, so a killed worker loses
no trial and a rerun resumes the study.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import socket
import threading
import time
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from ..errors import UnderspecError
from ..files import check_writable
from ..progress import progress_bar
from ..sweeps.config import slurm_minutes
from ..training.data import Dataset, load_dataset
from ..training.device import resolve_device
from ..training.engine import train_parts
from ..training.memory import block_sizes, default_memory_budget, memory_plan, n_parameters
from .config import TuneConfig
from .space import optimizer_choice, trial_grid

WORKER, HOST, PID, HEARTBEAT = "worker", "host", "pid", "heartbeat"
IDENTITY = "underspec"  # the study's user attribute holding its config's identity


def distributions(config: TuneConfig) -> dict:
    """The Optuna distribution of every searched knob."""
    out = {}
    for name, p in config.space.items():
        if p.kind == "float":
            out[name] = FloatDistribution(p.low, p.high, log=p.log)
        elif p.kind == "int":
            out[name] = IntDistribution(p.low, p.high, log=p.log)
        else:
            out[name] = CategoricalDistribution(p.choices)
    return out


def make_sampler(config: TuneConfig, seed: int):
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":
        return _GridSampler({n: list(p.grid_values(config.grid_points)) for n, p in config.space.items()}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, config.trials // 2)))


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its own stop: told the trial that exhausts the grid, it calls
    ``study.stop()``, which only an ``optimize`` loop may call (ask-and-tell raises). The tuner stops at its
    budget, which the config holds within the grid's size."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_pruner(config: TuneConfig):
    if config.pruner == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.base().epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


def open_study(config: TuneConfig, *, worker_index: int = 0) -> optuna.Study:
    """The study of ``config`` in its journal (created, or loaded to resume); a journal holding a study of
    another config under this name is refused. The sampler's seed is offset by the trials already in the
    study and by the worker, so a resumed or second worker does not repeat the first one's draws."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = config.journal
    check_writable(path.parent if str(path.parent) else ".", "storage")
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(storage=storage, study_name=config.study_name, direction=config.direction,
                                load_if_exists=True)
    identity = study.user_attrs.get(IDENTITY)
    if identity is None:
        study.set_user_attr(IDENTITY, {"fingerprint": config.fingerprint(), "config": config.identity()})
    elif identity.get("fingerprint") != config.fingerprint():
        raise UnderspecError(f"{path} holds a study {config.study_name!r} of another config (its space, fixed knobs, "
                             "seeds, sampler or metric differ): give another storage or study name")
    seed = config.sampler_seed + 1_000_003 * worker_index + len(study.get_trials(deepcopy=False))
    return optuna.load_study(study_name=config.study_name, storage=storage, sampler=make_sampler(config, seed),
                             pruner=make_pruner(config))


def check_memory(config: TuneConfig, data: Dataset) -> None:
    """Refuse, before any training, a space whose largest setting cannot train a batch of trials within the
    memory budget (at least one member at a time: the engine splits the rest into blocks)."""
    worst = {}
    for name, p in config.space.items():
        if p.kind != "categorical":
            worst[name] = p.high
        elif name == "widths":
            worst[name] = max(p.choices, key=lambda w: n_parameters(trial_grid({name: w}, config.fixed, (0,)), 784))
        elif name == "optimizer":
            worst[name] = max(p.choices, key=lambda o: optimizer_choice(o)[0] != "sgd")
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p.choices):
            worst[name] = max(p.choices)
        else:
            worst[name] = p.choices[0]
    part = trial_grid(worst, config.fixed, config.seeds).for_data(len(data.y_train))
    device = resolve_device(config.device)
    budget = config.memory_budget or default_memory_budget(device)
    plan = memory_plan(part, data.x_train.shape[1], len(data.y_test), probe_size=0, snapshots=False,
                       embeddings=False, n_members=config.batch * len(part))
    try:
        block_sizes(plan, budget, len(part.seeds), config.batch * len(part) // len(part.seeds), device)
    except UnderspecError as exc:
        shown = ", ".join(f"{k} {v}" for k, v in worst.items())
        raise UnderspecError(f"the search space's largest setting ({shown}) in a batch of {config.batch} trials: "
                             f"{exc}; shrink the space, the batch or the seeds") from None


@dataclass
class TuneResult:
    """What a worker leaves: the study, the trials it trained, and the study's table of trials."""

    study: optuna.Study
    trained: list[int]
    table: pd.DataFrame

    @property
    def best(self) -> pd.Series | None:
        done = self.table[self.table.state == "COMPLETE"]
        if done.empty:
            return None
        return done.loc[done.value.idxmax() if self.study.direction.name == "MAXIMIZE" else done.value.idxmin()]


def tune(config: TuneConfig, data: Dataset | None = None, *, progress: bool = True, worker_index: int = 0,
         after_ask=None) -> TuneResult:
    """Run one worker of the study ``config`` until the study holds ``config.trials`` trials (every worker
    together), first taking over the trials of dead workers. ``data``: default the config's data set.
    ``after_ask(trials)``: called with each batch once it is asked (tests kill a worker there)."""
    if data is None:
        data = load_dataset(config.dataset).take(config.n_train, config.n_test)
    check_memory(config, data)
    study = open_study(config, worker_index=worker_index)
    me = Worker()
    dists = distributions(config)
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))
    bar = progress_bar(config.trials, f"tuning {config.study_name}", enabled=progress, unit="trial",
                       initial=min(done, config.trials))
    trained: list[int] = []
    with me.beating(study):
        while True:
            with _claim(config.journal):
                trials = me.adopt(study, config.stale_after)
                if not trials:
                    alive = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL]
                    for _ in range(min(config.batch, config.trials - len(alive))):
                        trials.append(study.ask(dists))
                        me.own(study, trials[-1])
            if not trials:
                break
            if after_ask is not None:
                after_ask(trials)
            _train_batch(study, trials, config, data, bar, me)
            trained += [t.number for t in trials]
    bar.close()
    return TuneResult(study, trained, trials_table(study))


def _train_batch(study, trials, config: TuneConfig, data: Dataset, bar, me: "Worker") -> None:
    """Train ``trials`` as one grid (``train_parts``), feed the pruner every epoch, tell every trial."""
    parts = [trial_grid(t.params, config.fixed, config.seeds) for t in trials]
    pruning = config.pruner != "none"
    column = None
    reported: dict[tuple[int, int], list[float]] = {}
    pruned: dict[int, int] = {}

    def on_epoch(epoch, members, rows):
        nonlocal column
        column = column if column is not None else (5 if config.metric == "val_loss" else 6)
        touched = set()
        for (part, _), row in zip(members, rows):
            if part not in pruned:
                reported.setdefault((part, epoch), []).append(_worst_for(config.metric, row[column]))
                touched.add(part)
        for part in sorted(touched):
            values = reported[(part, epoch)]
            if len(values) == len(parts[part]):  # every member of the trial has this epoch's value
                trials[part].report(float(np.mean(values)), epoch)
                if trials[part].should_prune():
                    pruned[part] = epoch
        return [part in pruned for part, _ in members]

    runs = train_parts(parts, data, device=config.device, progress=False, threads=config.threads, probe_size=0,
                       snapshots=False, embeddings=False, memory_budget=config.memory_budget,
                       on_epoch=on_epoch if pruning else None)
    for i, (trial, run) in enumerate(zip(trials, runs)):
        last = run.history[run.history.epoch == run.grid.epochs]
        values = [_worst_for(config.metric, v) for v in last[config.metric]]
        value = float(np.mean(values))
        attrs = {"seeds": [int(s) for s in last.seed], "seed_values": values,
                 "seed_std": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
                 "test_values": [float(v) for v in last.test_acc], "epochs": int(run.grid.epochs),
                 "diverged": len(run.meta.get("diverged") or [])}
        if i in pruned:
            attrs["pruned_at"] = pruned[i]
        for key, v in attrs.items():
            trial.set_user_attr(key, v)
        if i in pruned:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, value)
        me.release(trial)
        bar.update(1)
        best = _best_value(study)
        if best is not None and hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"best {config.metric} {best:.4f}")


def _worst_for(metric: str, value: float) -> float:
    """A diverged member's value: the worst there is (accuracy 0, loss infinite), never NaN."""
    if math.isfinite(value):
        return float(value)
    return 0.0 if metric == "val_acc" else float("inf")


def _best_value(study) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:  # no complete trial yet
        return None


@contextlib.contextmanager
def _claim(journal) -> None:
    """One worker at a time decides which trials it takes (asked or adopted): a lock file beside the journal."""
    path = journal.with_name(journal.name + ".claim")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Worker:
    """This process as a worker of a study: its name (host, process id, start time), the trials it owns and
    their heartbeat."""

    def __init__(self):
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.name = f"{self.host}:{self.pid}:{time.time():.0f}"
        self.owned: dict[int, object] = {}  # trial number -> its Trial
        self._lock = threading.Lock()

    def own(self, study, trial) -> None:
        for key, value in ((WORKER, self.name), (HOST, self.host), (PID, self.pid), (HEARTBEAT, time.time())):
            trial.set_user_attr(key, value)
        with self._lock:
            self.owned[trial.number] = trial

    def release(self, trial) -> None:
        with self._lock:
            self.owned.pop(trial.number, None)

    def adopt(self, study, stale_after: float) -> list:
        """The running trials of dead workers, taken over (their numbers and values kept)."""
        taken = []
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = frozen.user_attrs
            if attrs.get(WORKER) == self.name or not _dead(attrs, self.host, stale_after):
                continue
            trial = optuna.trial.Trial(study, frozen._trial_id)
            trial.set_user_attr("taken_from", attrs.get(WORKER))
            self.own(study, trial)
            taken.append(trial)
        return taken

    @contextlib.contextmanager
    def beating(self, study, every: float = 30.0):
        """A heartbeat on every owned trial every ``every`` seconds while training (a daemon thread)."""
        stop = threading.Event()

        def beat():
            while not stop.wait(every):
                with self._lock:
                    owned = list(self.owned.values())
                for trial in owned:
                    with contextlib.suppress(Exception):  # a trial finished meanwhile
                        trial.set_user_attr(HEARTBEAT, time.time())

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


def _dead(attrs: dict, host: str, stale_after: float) -> bool:
    """Whether the worker that owns a running trial is gone: its process has ended (on this host), or its
    heartbeat is older than ``stale_after`` seconds (anywhere)."""
    if attrs.get(HOST) == host and isinstance(attrs.get(PID), int):
        try:
            os.kill(attrs[PID], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    return time.time() - float(attrs.get(HEARTBEAT, 0.0)) > stale_after


def trials_table(study) -> pd.DataFrame:
    """One row per trial: ``number``, ``state``, ``value`` (the seeds' mean), ``seed_std``, ``n_seeds``,
    ``pruned_at`` and the searched values (their knob names)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, "seed_std": a.get("seed_std"),
                     "n_seeds": len(a.get("seeds", [])), "pruned_at": a.get("pruned_at"), **t.params})
    return pd.DataFrame(rows)


def seed_table(study) -> pd.DataFrame:
    """One row per (trial, member): ``number``, ``state``, ``seed``, ``value`` (the member's validation metric
    at the last epoch), ``test_acc`` (its test accuracy: read only for a configuration already chosen), and the
    searched values."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        for seed, value, test in zip(a.get("seeds", []), a.get("seed_values", []), a.get("test_values", [])):
            rows.append({"number": t.number, "state": t.state.name, "seed": seed, "value": value, "test_acc": test,
                         **t.params})
    return pd.DataFrame(rows)


def run_workers(config: TuneConfig, *, cluster: str | None = None, progress: bool = True) -> TuneResult:
    """``config.workers`` workers as submitit jobs (Slurm, or ``cluster="local"`` processes), sharing the journal;
    this process shows the study's progress from the journal until they end. Every job's failure is named."""
    import submitit

    folder = config.journal.parent / f"{config.journal.stem}-workers"
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
    params = {"name": "underspec-tune", "timeout_min": slurm_minutes(config.time) if config.time else 120,
              "nodes": 1, "tasks_per_node": 1}
    if config.gpus:
        params["gpus_per_node"] = config.gpus
    if config.partition:
        params["slurm_partition"] = config.partition
    executor.update_parameters(**params)
    jobs = executor.map_array(_worker, [config] * config.workers, list(range(config.workers)))
    study = open_study(config)
    bar = progress_bar(config.trials, f"tuning {config.study_name} ({config.workers} workers)", enabled=progress,
                       unit="trial")
    seen = 0
    while True:
        finished = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
        bar.update(min(finished, config.trials) - seen)
        seen = min(finished, config.trials)
        best = _best_value(study)
        if best is not None and hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"best {config.metric} {best:.4f}")
        if all(job.done() for job in jobs):
            break
        time.sleep(2.0)
    bar.close()
    failed, trained = [], []
    for i, job in enumerate(jobs):
        try:
            trained += job.result()
        except Exception as exc:  # a job's own error, as submitit relays it
            failed.append(f"worker {i}: {str(exc).strip().splitlines()[-1][:200]}")
    if failed:
        raise UnderspecError(f"{len(failed)} of {len(jobs)} workers failed ({'; '.join(failed)}); their logs are in "
                             f"{folder}; run the same command again to resume the study")
    return TuneResult(study, trained, trials_table(study))


def _worker(config: TuneConfig, index: int) -> list[int]:
    """One submitit job: a worker of the study (its sampler seeded apart); the trial numbers it trained."""
    return tune(config, progress=False, worker_index=index).trained

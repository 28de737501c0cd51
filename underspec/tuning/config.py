"""A tuning config: what ``underspec tune CONFIG.yaml`` searches, with which sampler and budget, on which seeds,
into which journal file. Everything is checked on construction, before torch or Optuna is imported::

    dataset: mnist-5k
    space:                         # every knob of the grid may be searched: a range or a list of values
      lr: {low: 0.0001, high: 0.3, log: true}
      hidden: {low: 8, high: 256, log: true}
      optimizer: [sgd, sgd-momentum, adam@3e-4]
      weight_decay: [0, 0.0001, 0.001]
    fixed: {epochs: 10, validation: 0.2}   # the knobs every trial shares (validation: the split trials are scored on)
    seeds: 3                       # seeds per trial (a count, or a list / range of seeds: 0-4)
    sampler: tpe                   # random, tpe or grid
    trials: 64                     # the budget: trials in the study, every worker together
    batch: 8                       # trials asked at once and trained as one grid
    metric: val_acc                # val_acc (maximised) or val_loss (minimised), the seeds' mean at the last epoch
    pruner: none                   # none, successive-halving or hyperband (fed every epoch's validation value)
    storage: tune/study.journal    # Optuna's JournalStorage file: workers share it; a rerun resumes the study
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from ..errors import UnderspecError, check_choice, shown
from ..files import read_text
from ..sweeps.config import EXECUTORS, MAX_CONFIG_BYTES, load_yaml, slurm_minutes, yaml_problem
from ..training.choices import DATASETS
from ..training.grid import Grid, parse_int, parse_ints
from .space import Param, parse_space

SAMPLERS = ("random", "tpe", "grid")
PRUNERS = ("none", "successive-halving", "hyperband")
METRICS = {"val_acc": "maximize", "val_loss": "minimize"}
DEFAULT_VALIDATION = 0.2
MAX_TRIALS = 100_000


def _key(default, help: str, science: bool = True):
    return field(default=default, metadata={"help": help, "science": science})


@dataclass(frozen=True)
class TuneConfig:
    """A tuning study (see the module doc). ``science`` keys decide which trials a study holds: a journal written
    with other values is refused rather than mixed; the others only say how and where to run."""

    space: dict = _key(None, "the search space: knob -> a range {low, high, log} or a list of values")
    fixed: dict = _key(None, "grid knobs every trial shares (epochs, validation, n_classes, ...)")
    dataset: str = _key("mnist-5k", f"one of {', '.join(DATASETS)}")
    n_train: int | None = _key(None, "use only the first N training images")
    n_test: int | None = _key(None, "use only the first N test images")
    seeds: object = _key(3, "seeds per trial: a count (0..n-1) or a list / range of seeds")
    sampler: str = _key("tpe", f"one of {', '.join(SAMPLERS)}")
    sampler_seed: int = _key(0, "the sampler's seed")
    trials: int = _key(32, "the budget: trials in the study, every worker together", science=False)
    batch: int = _key(8, "trials asked at once and trained as one grid")
    metric: str = _key("val_acc", "val_acc (maximised) or val_loss (minimised)")
    pruner: str = _key("none", f"one of {', '.join(PRUNERS)}")
    grid_points: int = _key(3, "values per range for the grid sampler")
    storage: str | None = _key(None, "the journal file (default: tune.journal beside the config)", science=False)
    study: str | None = _key(None, "the study's name (default: the journal file's stem)", science=False)
    memory_budget: int | None = _key(None, "bytes one batch may use (default: the engine's)", science=False)
    device: str = _key("auto", "auto, cpu or cuda", science=False)
    threads: int | None = _key(None, "CPU threads (default: the usable cores)", science=False)
    executor: str = _key("local", "local (this process) or slurm (submitit, one job per worker)", science=False)
    workers: int = _key(1, "workers sharing the study (slurm: jobs; local: processes)", science=False)
    partition: str | None = _key(None, "slurm: partition", science=False)
    time: str | None = _key(None, "slurm: time limit per worker", science=False)
    gpus: int = _key(0, "slurm: GPUs per worker", science=False)
    stale_after: float = _key(900.0, "seconds without a heartbeat after which a running trial is taken over",
                              science=False)

    def __post_init__(self):
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        s("space", parse_space(self.space))
        fixed = {} if self.fixed is None else self.fixed
        if not isinstance(fixed, dict):
            raise UnderspecError(f"fixed: a mapping of grid knobs to values, got {shown(fixed)}")
        both = [k for k in fixed if k in self.space]
        if both:
            raise UnderspecError(f"{both[0]} is both searched (space) and fixed: keep it in one of them")
        if "seeds" in fixed:
            raise UnderspecError("fixed: seeds are the config's own key (seeds: 3 or seeds: 0-4), not a fixed knob")
        fixed = {"validation": DEFAULT_VALIDATION, **fixed}
        try:
            grid = Grid(**fixed)
        except TypeError as exc:
            raise UnderspecError(f"fixed: {exc}: use the knobs of underspec train") from None
        except UnderspecError as exc:
            raise UnderspecError(f"fixed: {exc}") from None
        if grid.validation is None:
            raise UnderspecError("fixed: validation is None: a tuner chooses on a validation split, never the test "
                                 "set: give validation: 0.2")
        if grid.axes():
            raise UnderspecError(f"fixed: {grid.axes()[0]} has several values: search it in space instead")
        s("fixed", fixed)
        check_choice(self.dataset, DATASETS, "data set")
        for key in ("n_train", "n_test", "memory_budget", "threads"):
            value = getattr(self, key)
            if value is not None:
                s(key, parse_int(value, key))
                if getattr(self, key) < 1:
                    raise UnderspecError(f"{key} must be a positive integer or None, got {shown(value)}")
        seeds = self.seeds
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if not 1 <= seeds <= 1000:
                raise UnderspecError(f"seeds: a count of seeds per trial in 1..1000, got {seeds}")
            seeds = tuple(range(seeds))
        s("seeds", Grid(seeds=parse_ints(seeds, "seeds")).seeds)
        check_choice(self.sampler, SAMPLERS, "sampler")
        check_choice(self.pruner, PRUNERS, "pruner")
        check_choice(self.metric, tuple(METRICS), "metric")
        check_choice(self.executor, EXECUTORS, "executor")
        for key, top in (("sampler_seed", 2**32 - 1), ("trials", MAX_TRIALS), ("batch", 10_000), ("grid_points", 100),
                         ("workers", 1000), ("gpus", 64)):
            s(key, parse_int(getattr(self, key), key))
            if not (0 if key in ("sampler_seed", "gpus") else 1) <= getattr(self, key) <= top:
                raise UnderspecError(f"{key} must be a whole number up to {top:,}, got {shown(getattr(self, key))}")
        if self.sampler == "grid":
            size = math.prod(len(p.grid_values(self.grid_points)) for p in self.space.values())
            if self.trials > size:
                raise UnderspecError(f"the grid sampler's grid has {size:,} points ({self.grid_points} per range), "
                                     f"fewer than trials = {self.trials}: ask for at most {size} trials or more "
                                     "grid_points")
        if self.pruner != "none" and grid.epochs < 2:
            raise UnderspecError("a pruner stops trials between epochs: train at least 2 epochs (fixed: epochs)")
        if self.time is not None:
            s("time", str(self.time))
            slurm_minutes(self.time)
        if isinstance(self.stale_after, bool) or not isinstance(self.stale_after, (int, float)) \
                or not self.stale_after > 0:
            raise UnderspecError(f"stale_after must be a number of seconds > 0, got {shown(self.stale_after)}")
        for key in ("storage", "study", "partition"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise UnderspecError(f"{key} must be a string, got {shown(value)}")
            if value is not None:
                s(key, os.fspath(value))
        if self.storage is not None and not self.storage.strip():
            raise UnderspecError("storage is empty: give a journal file, e.g. storage: tune/study.journal")

    # --- reading
    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "the config") -> "TuneConfig":
        if not isinstance(d, dict):
            raise UnderspecError(f"{source} must hold 'key: value' lines, not a {type(d).__name__}")
        unknown = [k for k in d if k not in cls.keys()]
        if unknown:
            raise UnderspecError(f"unknown key {shown(unknown[0])} in {source}: allowed are {', '.join(cls.keys())}")
        if "space" not in d:
            raise UnderspecError(f"{source} has no space: give the knobs to search, e.g. space: {{lr: {{low: 0.001, "
                                 "high: 0.1, log: true}}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> "TuneConfig":
        """Read a YAML config; ``overrides`` (command-line flags) replace its values. The journal defaults to
        ``tune.journal`` beside the config."""
        path = Path(path).expanduser()
        try:
            d = load_yaml(read_text(path, MAX_CONFIG_BYTES, "a tuning config is a few lines")) or {}
        except FileNotFoundError:
            raise UnderspecError(f"config file {path} does not exist: check the path") from None
        except RecursionError:
            raise UnderspecError(f"the config {path} is nested too deeply to be a tuning config: fix the YAML") \
                from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UnderspecError(f"cannot read the config {path} ({yaml_problem(exc)}): fix the YAML") from None
        if not isinstance(d, dict):
            raise UnderspecError(f"{path} must hold 'key: value' lines, not a {type(d).__name__}")
        d = {**d, **overrides}
        if d.get("storage") is None:
            d["storage"] = str(path.parent / f"{path.stem}.journal")
        return cls.from_dict(d, source=str(path))

    # --- what it means
    @property
    def direction(self) -> str:
        return METRICS[self.metric]

    @property
    def journal(self) -> Path:
        return Path(self.storage or "tune.journal").expanduser()

    @property
    def study_name(self) -> str:
        return self.study or self.journal.stem

    def base(self) -> Grid:
        """The grid every trial starts from (the fixed knobs and the seeds)."""
        return Grid(**{**self.fixed, "seeds": self.seeds})

    def params(self) -> dict[str, Param]:
        return self.space

    def identity(self) -> dict:
        """What decides the study's trials (the data, the space, the fixed knobs, the seeds, the sampler, the
        metric): a journal holds the study of one identity."""
        space = {name: {"kind": p.kind, "low": p.low, "high": p.high, "log": p.log,
                        "choices": list(p.choices) if p.choices else None} for name, p in self.space.items()}
        keep = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["science"]
                and f.name not in ("space", "fixed", "seeds")}
        return {**keep, "space": space, "fixed": self.base().to_dict(science_only=True)}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()[:16]

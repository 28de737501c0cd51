"""Which networks to train: a Cartesian grid of seeds x L1 strengths x class counts, plus the protocol."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass

from .data import CLASS_MODES
from .errors import UnderspecError

PAPER_SEEDS = (0, 42, 1337, 3213, 9999, 5783, 1023)
PAPER_L1 = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)
PAPER_CLASSES = tuple(range(2, 11))
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Grid:
    """Seeds x L1 strengths x class counts, trained under one protocol (the defaults are the paper's).

    Members are ordered seed-major: ``members()[i]`` is ``(seed, l1, n_classes)``.
    """

    seeds: tuple[int, ...]
    l1: tuple[float, ...] = (0.0,)
    n_classes: tuple[int, ...] = (10,)
    hidden: int = 16
    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "sgd"
    class_mode: str = "relabel"

    def __post_init__(self):
        seeds = _as_tuple(self.seeds, "seeds")
        l1 = _as_tuple(self.l1, "l1")
        classes = _as_tuple(self.n_classes, "n_classes")
        if not seeds:
            raise UnderspecError("the seed list is empty: give at least one seed, e.g. --seeds 0 42")
        if any(not _is_int(s) or s < 0 for s in seeds):
            raise UnderspecError(f"seeds must be non-negative integers, got {list(seeds)}")
        _no_duplicates(seeds, "seed")
        if not l1:
            raise UnderspecError("the L1 list is empty: give at least one lambda, e.g. --l1 0")
        if any(not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 for v in l1):
            raise UnderspecError(f"L1 strengths must be finite and >= 0, got {list(l1)}")
        _no_duplicates(l1, "L1 strength")
        if not classes:
            raise UnderspecError("the class-count list is empty: give C in 2..10, e.g. --classes 2-10")
        if any(not _is_int(c) or not 2 <= c <= 10 for c in classes):
            raise UnderspecError(f"class counts must be integers in 2..10, got {list(classes)}")
        _no_duplicates(classes, "class count")
        for name in ("hidden", "epochs", "batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise UnderspecError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) or self.lr <= 0:
            raise UnderspecError(f"the learning rate must be > 0, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise UnderspecError(f"unknown optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if self.class_mode not in CLASS_MODES:
            raise UnderspecError(f"unknown class mode {self.class_mode!r}: use one of {', '.join(CLASS_MODES)}")
        object.__setattr__(self, "seeds", tuple(int(s) for s in seeds))
        object.__setattr__(self, "l1", tuple(float(v) for v in l1))
        object.__setattr__(self, "n_classes", tuple(int(c) for c in classes))
        object.__setattr__(self, "lr", float(self.lr))

    @classmethod
    def paper(cls, **overrides) -> "Grid":
        """The paper's full grid: 7 seeds x 6 lambdas x C = 2..10 (378 networks), 50 epochs."""
        return cls(**{"seeds": PAPER_SEEDS, "l1": PAPER_L1, "n_classes": PAPER_CLASSES, **overrides})

    def members(self) -> list[tuple[int, float, int]]:
        """Every network of the grid as (seed, l1, n_classes), seed-major."""
        return list(itertools.product(self.seeds, self.l1, self.n_classes))

    def __len__(self) -> int:
        return len(self.seeds) * len(self.l1) * len(self.n_classes)

    def to_dict(self) -> dict:
        """Plain values (JSON-ready) that define the grid."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Grid":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise UnderspecError(f"unknown grid key(s) {sorted(unknown)}: allowed are {sorted(known)}")
        return cls(**d)


def _as_tuple(values, name):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        values = (values,)
    return tuple(values)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_duplicates(values, what):
    dup = sorted({v for v in values if values.count(v) > 1})
    if dup:
        raise UnderspecError(f"duplicate {what}(s) {dup}: list each {what} once")


def parse_ints(value, key: str) -> tuple[int, ...]:
    """Integers and ranges (``2-10``) from a list or a comma/space separated string, e.g. seeds or class counts."""
    out = []
    for item in _items(value):
        if isinstance(item, bool):
            raise UnderspecError(f"{key}: {item!r} is not an integer")
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, float) and item.is_integer():
            out.append(int(item))
        elif isinstance(item, str) and (m := re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)):
            lo, hi = int(m[1]), int(m[2] or m[1])
            if hi < lo:
                raise UnderspecError(f"{key}: the range {item!r} is empty: write it low-high, e.g. 2-10")
            out.extend(range(lo, hi + 1))
        else:
            raise UnderspecError(f"{key}: cannot read {item!r} as an integer or a range like 2-10")
    return tuple(out)


def parse_floats(value, key: str) -> tuple[float, ...]:
    """Numbers from a list or a comma/space separated string, e.g. L1 strengths."""
    out = []
    for item in _items(value):
        try:
            if isinstance(item, bool):
                raise ValueError
            out.append(float(item))
        except (TypeError, ValueError):
            raise UnderspecError(f"{key}: cannot read {item!r} as a number, e.g. 0.001") from None
    return tuple(out)


def _items(value):
    if value is None:
        return ()
    if isinstance(value, str):
        return [v for v in re.split(r"[,\s]+", value.strip()) if v]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]

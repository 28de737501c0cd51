"""A search space over the grid's knobs, and how a trial's values become the grid that trains it.

Each searched knob is a list of values (a categorical choice) or a range ``{low: 1e-4, high: 0.1, log: true}``
(learning rate, width, depth, batch size, momentum, weight decay, L1, epochs, label noise, stopping loss).
Optimizers are named choices: ``sgd``, ``sgd-momentum`` (momentum 0.9), ``adam``, ``adamw``, each optionally
with its own learning rate, ``adam@3e-4`` (then the trial's ``lr`` is not used). Every end of a range and every
value is checked by building a grid with it, so a space the grid would refuse is refused before any trial.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

from ..errors import UnderspecError, shown
from ..training.grid import Grid, parse_widths

RANGES = {"lr": float, "hidden": int, "depth": int, "batch_size": int, "momentum": float, "weight_decay": float,
          "l1": float, "epochs": int, "label_noise": float, "stop_loss": float}  # knobs a range may search
CHOICES_ONLY = ("optimizer", "widths", "class_mode")
KNOBS = (*RANGES, *CHOICES_ONLY)
OPTIMIZER_CHOICES = {"sgd": ("sgd", 0.0), "sgd-momentum": ("sgd", 0.9), "adam": ("adam", 0.0), "adamw": ("adamw", 0.0)}
MOMENTUM = 0.9  # what sgd-momentum means


@dataclass(frozen=True)
class Param:
    """One searched knob: ``kind`` "float", "int" or "categorical"; a range's ``low``, ``high`` and ``log``; a
    choice's ``choices``."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    def grid_values(self, points: int) -> tuple:
        """The values a grid search tries: a choice's own, or ``points`` values spread over the range (log-spaced
        on a log scale; whole numbers for an integer knob, each once)."""
        if self.kind == "categorical":
            return self.choices
        if points == 1:
            return (self.low,)
        if self.log:
            values = [self.low * (self.high / self.low) ** (i / (points - 1)) for i in range(points)]
        else:
            values = [self.low + (self.high - self.low) * i / (points - 1) for i in range(points)]
        if self.kind == "int":
            return tuple(dict.fromkeys(int(round(v)) for v in values))
        return tuple(float(f"{v:.6g}") for v in values)


def optimizer_choice(text) -> tuple[str, float, float | None]:
    """``"adam@3e-4"`` -> ("adam", momentum 0.0, lr 0.0003); ``"sgd-momentum"`` -> ("sgd", 0.9, None)."""
    m = re.fullmatch(r"\s*([a-z-]+)\s*(?:@\s*([0-9.eE+-]+))?\s*", text) if isinstance(text, str) else None
    if m is None or m[1] not in OPTIMIZER_CHOICES:
        raise UnderspecError(f"space: unknown optimizer {shown(text)}: use one of {', '.join(OPTIMIZER_CHOICES)}, "
                             "optionally with its own learning rate, e.g. adam@3e-4")
    name, momentum = OPTIMIZER_CHOICES[m[1]]
    try:
        lr = None if m[2] is None else float(m[2])
    except ValueError:
        raise UnderspecError(f"space: cannot read the learning rate of {shown(text)}, e.g. adam@3e-4") from None
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise UnderspecError(f"space: the learning rate of {shown(text)} must be > 0")
    return name, momentum, lr


def parse_space(space) -> dict[str, Param]:
    """The search space of a config's ``space:`` mapping, every value checked (one line naming the knob)."""
    if not isinstance(space, dict) or not space:
        raise UnderspecError("space: give at least one knob to search, e.g. space: {lr: {low: 0.0001, high: 0.1, "
                             "log: true}}")
    unknown = [k for k in space if k not in KNOBS]
    if unknown:
        raise UnderspecError(f"space: {shown(unknown[0])} is not a knob a search can vary: use {', '.join(KNOBS)}")
    params = {}
    for name, value in space.items():
        if isinstance(value, dict):
            params[name] = _range(name, value)
        elif isinstance(value, (list, tuple)):
            params[name] = _choice(name, list(value))
        else:
            raise UnderspecError(f"space: {name} is {shown(value)}, one value: a search needs a list of values or "
                                 f"a range {{low: ..., high: ...}}; put a single value under fixed")
    if "widths" in params and ("hidden" in params or "depth" in params):
        raise UnderspecError("space: widths sets every layer's width: search widths, or hidden and depth, not both")
    return params


def _range(name: str, value: dict) -> Param:
    if name not in RANGES:
        raise UnderspecError(f"space: {name} takes a list of values, not a range")
    unknown = [k for k in value if k not in ("low", "high", "log")]
    if unknown or "low" not in value or "high" not in value:
        raise UnderspecError(f"space: the range of {name} takes low, high and optionally log, got {shown(value)}")
    low, high, log = value["low"], value["high"], value.get("log", False)
    kind = "int" if RANGES[name] is int else "float"
    for end in (low, high):
        if isinstance(end, bool) or not isinstance(end, numbers.Real) or not math.isfinite(end) or (
                kind == "int" and not float(end).is_integer()):
            raise UnderspecError(f"space: the range of {name} needs {'whole ' * (kind == 'int')}numbers, got "
                                 f"{shown(end)}")
    if not isinstance(log, bool):
        raise UnderspecError(f"space: log of {name} must be true or false, got {shown(log)}")
    if low >= high:
        raise UnderspecError(f"space: the range of {name} is {'empty' if low == high else 'inverted'} ({low:g} to "
                             f"{high:g}): write low < high, or give the value under fixed")
    if log and low <= 0:
        raise UnderspecError(f"space: a log range of {name} needs low > 0, got {low:g}")
    for end in (low, high):
        _check(name, int(end) if kind == "int" else float(end))
    return Param(name, kind, int(low) if kind == "int" else float(low), int(high) if kind == "int" else float(high),
                 log)


def _choice(name: str, values: list) -> Param:
    if not values:
        raise UnderspecError(f"space: the list of {name} is empty: give at least two values (one belongs under "
                             "fixed)")
    if name == "widths":
        values = [parse_widths(v, "space: widths") for v in values]
    for v in values:
        if name == "optimizer":
            optimizer_choice(v)
        elif isinstance(v, (list, dict)) or isinstance(v, bool) and name != "stop_loss":
            raise UnderspecError(f"space: {name} takes plain values, got {shown(v)}")
        else:
            _check(name, v)
    if len(set(map(str, values))) < len(values):
        raise UnderspecError(f"space: {name} lists a value twice: {shown(values)}")
    return Param(name, "categorical", choices=tuple(values))


def _check(name: str, value) -> None:
    """That a grid takes ``value`` for knob ``name`` (its own one-line error, prefixed, otherwise)."""
    try:
        Grid(**{name: (value,) if name == "l1" else value})
    except UnderspecError as exc:
        raise UnderspecError(f"space: {exc}") from None


def trial_grid(values: dict, fixed: dict, seeds: tuple[int, ...]) -> Grid:
    """The uniform grid that trains one trial: the knobs every trial shares (``fixed``), the trial's ``values``
    (an optimizer choice sets the optimizer, its momentum and, with ``@lr``, the learning rate) and ``seeds``.
    Adam and AdamW take no momentum: a searched momentum is dropped for them."""
    knobs = {**fixed, **values, "seeds": tuple(seeds)}
    if "optimizer" in values:
        name, momentum, lr = optimizer_choice(values["optimizer"])
        knobs["optimizer"] = name
        if "momentum" not in values:
            knobs["momentum"] = momentum
        if lr is not None:
            knobs["lr"] = lr
    if knobs.get("optimizer", "sgd") != "sgd":
        knobs["momentum"] = 0.0
    if "l1" in values:
        knobs["l1"] = (values["l1"],)
    return Grid(**knobs)

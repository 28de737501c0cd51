"""Which networks to train: the one list of training knobs, and the grid that is their product.

Every training setting is declared once, here, as a field of ``Grid`` with its default, its help text, how
a string spells it, and whether it changes the science. Everything else is derived from this declaration:
the flags of ``underspec train`` and ``underspec sweep``, the keys of a sweep config and of the sweep
notebook's parameters, the run cache key, and the "what was run" banner (each reads
``dataclasses.fields(Grid)``, whose ``metadata`` holds help, parse, label, flag, science and list). Adding a
knob is one field here plus its use in the engine and the paper's loop.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import re
from dataclasses import dataclass, field

from ..errors import UnderspecError, check_choice, shown
from .choices import CLASS_MODES

PAPER_SEEDS = (0, 42, 1337, 3213, 9999, 5783, 1023)
PAPER_L1 = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)
PAPER_CLASSES = tuple(range(2, 11))
OPTIMIZERS = ("sgd", "adam", "adamw")
MAX_RANGE = 10_000  # the longest range a list may spell (2-100000000 must not exhaust memory)
MAX_VALUES = 10_000  # the most values one knob's list may hold, ranges expanded
MAX_TEXT = 100_000  # the longest string a list may be read from
MAX_SEED = 2**63 - 1  # torch's generators take seeds below 2^64; int64 tensors below 2^63
# Bounds checked from the lengths of the lists, before any list of parts or members is built: beyond them a
# grid is a sweep's work (underspec sweep shards it), not one call's.
MAX_NETWORKS = 100_000
MAX_PARTS = 10_000
MAX_DEPTH = 64
MAX_HIDDEN = 10**9  # far beyond memory: the memory plan refuses much less (a sweep checks it per shard)
MAX_EPOCHS = 10**9


# ------------------------------------------------------------------------------------------ parsing values

def parse_ints(value, key: str) -> tuple[int, ...]:
    """Integers and ranges (``2-10``) from a list or a string such as ``"0 42"``, ``"0,42"``, ``"[0, 42]"``
    or ``"0-6"``: seeds, class counts."""
    out = []
    for item in _items(value, key):
        if isinstance(item, bool):
            raise UnderspecError(f"{key}: {shown(item)} is not an integer")
        if isinstance(item, numbers.Integral):
            out.append(int(item))
        elif isinstance(item, float) and item.is_integer():
            out.append(int(item))
        elif isinstance(item, str) and (m := re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)):
            lo, hi = int(m[1]), int(m[2] or m[1])
            if hi < lo:
                raise UnderspecError(f"{key}: the range {shown(item)} is empty: write it low-high, e.g. 2-10")
            if hi - lo >= MAX_RANGE:
                raise UnderspecError(f"{key}: the range {shown(item)} has {hi - lo + 1:,} values; at most "
                                     f"{MAX_RANGE:,} are allowed")
            if len(out) + hi - lo + 1 > MAX_VALUES:
                raise UnderspecError(f"{key}: more than {MAX_VALUES:,} values; split the work into several grids "
                                     "or an underspec sweep")
            out.extend(range(lo, hi + 1))
        else:
            noun = {"seeds": "seed", "n_classes": "class count"}.get(key, key)
            raise UnderspecError(f"invalid {noun} {shown(item)}: use integers like 10 or a range like 2-10")
    return tuple(out)


def parse_floats(value, key: str) -> tuple[float, ...]:
    """Numbers from a list or a string such as ``"0 0.001"`` or ``"[0, 0.001]"``: L1 strengths."""
    out = []
    for item in _items(value, key):
        if isinstance(item, bool) or not isinstance(item, (numbers.Real, str)):
            raise UnderspecError(f"{key}: cannot read {shown(item)} as a number, e.g. 0.001")
        try:
            out.append(float(item))
        except ValueError:
            raise UnderspecError(f"{key}: cannot read {shown(item)} as a number, e.g. 0.001") from None
    return tuple(out)


def parse_int(value, key: str) -> int:
    """One integer, from an int or a string of digits (what a command line or papermill passes)."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise UnderspecError(f"{key} must be an integer, got {shown(value)}")


def parse_float(value, key: str) -> float:
    """One number, from a number or a string."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise UnderspecError(f"{key} must be a number, got {shown(value)}")


def parse_str(value, key: str) -> str:
    if not isinstance(value, str):
        raise UnderspecError(f"{key} must be a name, got {shown(value)}")
    return value


def _optional(parse):
    """``parse``, or None for None and the strings a command line or papermill passes for it."""
    def parse_optional(value, key: str):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            return None
        return parse(value, key)
    return parse_optional


_parse_optional_int, _parse_optional_float = _optional(parse_int), _optional(parse_float)


def _axis(parse):
    """``parse`` for a knob that may take several values (an axis of the grid): one value stays a value,
    several (a list, or a string such as ``"16 64"``) become a tuple of values, each read by ``parse``."""
    def parse_axis(value, key: str):
        items = _items(value, key) if isinstance(value, (str, list, tuple)) else [value]
        if len(items) == 1:
            return parse(items[0], key)
        if not items:
            raise UnderspecError(f"{key}: the list is empty: give at least one value")
        values = tuple(parse(item, key) for item in items)
        _no_duplicates(values, key)
        return values
    parse_axis.axis = True
    return parse_axis


def values_of(value) -> tuple:
    """The values of a knob: a tuple of one value for a single one."""
    return value if isinstance(value, tuple) else (value,)


def steps_to_epochs(steps: int, n_train: int, batch_size: int) -> int:
    """The fewest whole epochs of ceil(n_train / batch_size) SGD steps that make at least ``steps`` steps."""
    per_epoch = -(-n_train // batch_size)
    return -(-steps // per_epoch)


def _items(value, key: str) -> list:
    """The items of a list knob's value (a list, or its text), at most ``MAX_VALUES`` of them."""
    if value is None:
        return []
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise UnderspecError(f"{key}: a list of {len(value):,} characters; at most {MAX_TEXT:,} are read")
    if hasattr(value, "__len__") and not isinstance(value, (str, dict, bytes)) and len(value) > MAX_VALUES:
        raise UnderspecError(f"{key}: {len(value):,} values; at most {MAX_VALUES:,}: split the work into several "
                             "grids or an underspec sweep")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):  # papermill -p passes a list as its text
            text = text[1:-1]
        return [v for v in re.split(r"[,\s]+", text) if v]
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and hasattr(value, "__len__")
                                            and not isinstance(value, (dict, bytes))):
        return list(value)
    return [value]


# ----------------------------------------------------------------------------------------- the declaration

def knob(default, help: str, *, parse, label: str, flag: str | None = None, science: bool = True,
         optional: bool = False):
    """A training setting: a dataclass field whose metadata says how to spell, parse and show it.

    ``parse(value, key)`` reads a value or its string form; ``label`` names it in the banner (a list knob's
    name, shown with its count, or a scalar's format, e.g. ``"{} epochs"``); ``flag`` is the
    command-line name when it differs from the field's (``--classes`` for ``n_classes``); ``science``: the
    setting changes the trained networks (it enters the cache key and a sweep's fingerprint);
    ``optional``: a setting the paper does not use, named (in the banner, the cache key and a sweep's
    fingerprint) only when it differs from its default, so runs and sweeps made before it existed keep their
    keys and resume. A knob whose ``parse`` is an ``_axis`` may take several values: an axis of the grid.
    """
    is_list = parse in (parse_ints, parse_floats)
    return field(default=default, metadata={"help": help, "parse": parse, "label": label, "flag": flag,
                                            "science": science, "list": is_list,
                                            "axis": getattr(parse, "axis", False), "optional": optional})


@dataclass(frozen=True)
class Grid:
    """The product of its list knobs (seeds x L1 strengths x class counts) and of its axes.

    The defaults train one network of the paper's protocol; ``Grid.paper()`` is the paper's whole grid.
    Members are ordered seed-major: ``members()[i]`` is ``(seed, l1, n_classes)``. Any other knob but
    ``steps`` may be given several values (``hidden=[16, 64]``, ``optimizer=["sgd", "adam"]``, ``lr="0.01
    0.001"``): it is then an *axis* (``axes()``), the grid is mixed, and it is the product of its uniform
    ``parts()``, one per combination of axis values, each a grid with one value of every knob; a member's tuple
    then also holds its axis values (``member_names()``). A knob of one value stays a plain value, so every
    uniform grid (and its cache key) is as before. A member's seed sets both its initialisation and its data order, as in the paper, unless ``init_seed`` or ``order_seed`` fixes one
    of the two for the whole grid (then the seeds vary only the other: where does the diversity come from?).
    Every value may also be given as the string a command line passes (``seeds="0-6"``, ``l1="0 0.01"``,
    ``epochs="50"``).
    """

    seeds: tuple[int, ...] = knob((0,), "random seeds, ranges allowed: 0 42 or 0-6 (the first is the "
                                  "reference seed)", parse=parse_ints, label="seeds")
    l1: tuple[float, ...] = knob((0.0,), "L1 strengths lambda >= 0 on the first layer's weights, e.g. 0 0.001",
                                 parse=parse_floats, label="λ")
    n_classes: tuple[int, ...] = knob((10,), "class counts C in 2..10, ranges allowed: 2-10 or 2 5 10",
                                      parse=parse_ints, label="C", flag="classes")
    hidden: int | tuple[int, ...] = knob(16, "hidden units", parse=_axis(parse_int), label="hidden {}")
    depth: int | tuple[int, ...] = knob(1, "hidden layers, each of `hidden` units (the paper: 1)",
                                        parse=_axis(parse_int), label="depth {}", optional=True)
    epochs: int | tuple[int, ...] = knob(50, "epochs (passes over the training images)", parse=_axis(parse_int),
                                         label="{} epochs")
    steps: int | None = knob(None, "a budget of SGD steps instead of epochs, rounded up to whole epochs (the "
                             "paper: 46,900 = 50 epochs of 938 steps); overrides epochs", parse=_parse_optional_int,
                             label="{} steps budget")
    stop_loss: float | tuple | None = knob(None, "stop updating a network after the first epoch whose mean "
                                           "training cross-entropy is below this (to compare networks at equal "
                                           "training loss, as Neyshabur et al. 2019); the epoch is in run.members",
                                           parse=_axis(_parse_optional_float), label="stop below train loss {:g}",
                                           optional=True)
    batch_size: int | tuple[int, ...] = knob(64, "images per SGD step", parse=_axis(parse_int), label="batch {}")
    lr: float | tuple[float, ...] = knob(0.01, "learning rate", parse=_axis(parse_float), label="lr {:g}")
    optimizer: str | tuple[str, ...] = knob("sgd", f"one of {', '.join(OPTIMIZERS)} (torch.optim's, its defaults "
                                            "otherwise)", parse=_axis(parse_str), label="{}")
    momentum: float | tuple[float, ...] = knob(0.0, "SGD momentum in [0, 1) (the paper: 0; Adam and AdamW take "
                                               "none)", parse=_axis(parse_float), label="momentum {:g}",
                                               optional=True)
    weight_decay: float | tuple[float, ...] = knob(0.0, "weight decay >= 0 on every parameter, as torch.optim "
                                                   "applies it (the paper: 0; AdamW decouples it)",
                                                   parse=_axis(parse_float), label="weight decay {:g}",
                                                   optional=True)
    init_seed: int | tuple | None = knob(None, "one initialisation for every network, drawn with this seed: the "
                                         "seeds then vary only the data order", parse=_axis(_parse_optional_int),
                                         label="init seed {}", optional=True)
    order_seed: int | tuple | None = knob(None, "one data order for every network, drawn with this seed: the "
                                          "seeds then vary only the initialisation",
                                          parse=_axis(_parse_optional_int), label="data-order seed {}",
                                          optional=True)
    perturb_ulp: int | tuple[int, ...] = knob(0, "move every network's first initial weight W1[0, 0] up by this "
                                              "many units in the last place of the training dtype (0 or 1): the "
                                              "same seed twice, one rounding apart (the rounding floor)",
                                              parse=_axis(parse_int), label="W1[0,0] + {} ulp", optional=True)
    class_mode: str | tuple[str, ...] = knob("relabel", "what C means: relabel (the paper: digits >= C become "
                                             "class 0) or subset (only digits 0..C-1)", parse=_axis(parse_str),
                                             label="class mode {}")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["parse"](getattr(self, f.name), f.name))
        seeds, l1, classes = self.seeds, self.l1, self.n_classes
        if not seeds:
            raise UnderspecError("the seed list is empty: give at least one seed, e.g. --seeds 0 42")
        if any(not 0 <= s <= MAX_SEED for s in seeds):
            raise UnderspecError(f"seeds must be integers in 0..2^63-1, got {shown(list(seeds))}")
        _no_duplicates(seeds, "seed")
        if not l1:
            raise UnderspecError("the L1 list is empty: give at least one lambda, e.g. --l1 0")
        if any(not math.isfinite(v) or v < 0 for v in l1):
            raise UnderspecError(f"L1 strengths must be finite and >= 0, got {shown(list(l1))}")
        _no_duplicates(l1, "L1 strength")
        if not classes:
            raise UnderspecError("the class-count list is empty: give C in 2..10, e.g. --classes 2-10")
        if any(not 2 <= c <= 10 for c in classes):
            raise UnderspecError(f"class counts must be integers in 2..10, got {shown(list(classes))}")
        _no_duplicates(classes, "class count")
        for name in ("hidden", "depth", "epochs", "batch_size"):
            if any(v < 1 for v in values_of(getattr(self, name))):
                raise UnderspecError(f"{name} must be a positive integer, got {shown(getattr(self, name))}")
        for name, bound in (("hidden", MAX_HIDDEN), ("depth", MAX_DEPTH), ("epochs", MAX_EPOCHS)):
            if any(v > bound for v in values_of(getattr(self, name))):
                raise UnderspecError(f"{name} must be at most {bound:,}, got {shown(getattr(self, name))}")
        if self.steps is not None and self.steps > MAX_EPOCHS * 1000:
            raise UnderspecError(f"steps must be at most {MAX_EPOCHS * 1000:,}, got {self.steps:,}")
        if any(not math.isfinite(v) or v <= 0 for v in values_of(self.lr)):
            raise UnderspecError(f"the learning rate must be > 0, got {shown(self.lr)}")
        for name in values_of(self.optimizer):
            check_choice(name, OPTIMIZERS, "optimizer")
        if any(not 0 <= v < 1 for v in values_of(self.momentum)):
            raise UnderspecError(f"momentum must be in [0, 1), got {shown(self.momentum)}")
        if any(values_of(self.momentum)) and "sgd" not in values_of(self.optimizer):
            raise UnderspecError(f"momentum is SGD's: {'/'.join(values_of(self.optimizer))} has its own (betas); drop "
                                 "--momentum or use --optimizer sgd")
        if any(not math.isfinite(v) or v < 0 for v in values_of(self.weight_decay)):
            raise UnderspecError(f"weight decay must be finite and >= 0, got {shown(self.weight_decay)}")
        for name in ("init_seed", "order_seed"):
            if any(v is not None and not 0 <= v <= MAX_SEED for v in values_of(getattr(self, name))):
                raise UnderspecError(f"{name} must be an integer in 0..2^63-1, got {shown(getattr(self, name))}")
        if any(v is not None for v in values_of(self.init_seed)) and any(v is not None for v in
                                                                          values_of(self.order_seed)):
            raise UnderspecError("init_seed and order_seed together leave the seeds nothing to vary (every network "
                                 "would be the same): fix one of them, or neither (the paper: a seed sets both)")
        if any(v is not None and not (math.isfinite(v) and v > 0) for v in values_of(self.stop_loss)):
            raise UnderspecError(f"stop_loss must be a training cross-entropy > 0 (e.g. 0.01), or None to train "
                                 f"every epoch; got {shown(self.stop_loss)}")
        for mode in values_of(self.class_mode):
            check_choice(mode, CLASS_MODES, "class mode")
        if any(v not in (0, 1) for v in values_of(self.perturb_ulp)):
            raise UnderspecError(f"perturb_ulp moves W1[0, 0] by 0 or 1 ulp, got {shown(self.perturb_ulp)}")
        if self.steps is not None and self.steps < 1:
            raise UnderspecError(f"steps must be a positive integer or None, got {self.steps!r}")
        if self.steps is not None and isinstance(self.batch_size, tuple):
            raise UnderspecError("a steps budget needs one batch size: with several, each would train a different "
                                 "number of epochs; give --epochs instead, or one grid per batch size")
        if self.steps is not None and isinstance(self.epochs, tuple):
            raise UnderspecError("a steps budget sets the epochs: give steps or a list of epochs, not both")
        parts = math.prod(len(values_of(getattr(self, name))) for name in self.axes())  # at most, from lengths
        if parts > MAX_PARTS or len(seeds) * len(l1) * len(classes) * parts > MAX_NETWORKS:
            raise UnderspecError(f"this grid has up to {len(seeds) * len(l1) * len(classes) * parts:,} networks in "
                                 f"up to {parts:,} settings; at most {MAX_NETWORKS:,} networks and {MAX_PARTS:,} "
                                 "settings in one grid: split it into several grids, or shard it with underspec sweep")
        if self.steps is not None and "subset" in values_of(self.class_mode):
            raise UnderspecError("a steps budget needs class_mode relabel: in subset mode every C trains on its own "
                                 "number of images, so one budget gives each a different number of epochs")

    def for_data(self, n_train: int) -> "Grid":
        """This grid with ``epochs`` set by its steps budget for ``n_train`` training images: the fewest whole
        epochs of ceil(n_train / batch_size) steps that reach the budget (the budget stays recorded). Without
        a budget, the grid itself."""
        if isinstance(n_train, bool) or not isinstance(n_train, numbers.Integral) or n_train < 1:
            raise UnderspecError(f"a grid is trained on at least one image, got n_train={shown(n_train)}")
        if self.steps is None:
            return self
        return dataclasses.replace(self, epochs=steps_to_epochs(self.steps, n_train, self.batch_size))

    @classmethod
    def paper(cls, **overrides) -> "Grid":
        """The paper's full grid: 7 seeds x 6 lambdas x C = 2..10 (378 networks), 50 epochs."""
        return cls(**{"seeds": PAPER_SEEDS, "l1": PAPER_L1, "n_classes": PAPER_CLASSES, **overrides})

    def axes(self) -> tuple[str, ...]:
        """The knobs given several values besides seeds, l1 and n_classes (``hidden``, ``lr``, ...), in field
        order: what makes a grid mixed."""
        return tuple(f.name for f in dataclasses.fields(self) if f.metadata["axis"]
                     and isinstance(getattr(self, f.name), tuple))

    def parts(self) -> list["Grid"]:
        """The grid as its uniform parts, one per combination of the values of ``axes()`` (the first axis
        outermost): each part has one value of every knob. A uniform grid is its own only part. Momentum is
        SGD's: a part with Adam or AdamW takes momentum 0 only (so ``optimizer=["sgd", "adam"]`` with
        ``momentum=[0, 0.9]`` is three parts, not four)."""
        axes = self.axes()
        if not axes:
            return [self]
        parts = []
        for values in itertools.product(*(getattr(self, name) for name in axes)):
            part = dict(zip(axes, values))
            if part.get("optimizer", self.optimizer) != "sgd" and any(values_of(self.momentum)):
                if "momentum" in axes and part["momentum"] != min(self.momentum):
                    continue
                part["momentum"] = 0.0
            parts.append(dataclasses.replace(self, **part))
        return parts

    def members(self) -> list[tuple]:
        """Every network of the grid as (seed, l1, n_classes), seed-major; in a mixed grid followed by its
        values of ``axes()``, part after part (``parts()`` order)."""
        axes = self.axes()
        if not axes:
            return list(itertools.product(self.seeds, self.l1, self.n_classes))
        return [(*member, *(getattr(part, name) for name in axes)) for part in self.parts() for member in part.members()]

    def member_names(self) -> tuple[str, ...]:
        """The names of a member tuple's entries (``members()``): seed, l1, n_classes, then ``axes()``."""
        return ("seed", "l1", "n_classes", *self.axes())

    def init_seed_of(self, seed: int) -> int:
        """The seed of a member's initialisation: its own seed (the paper), unless the grid fixes one."""
        return seed if self.init_seed is None else self.init_seed

    def order_seed_of(self, seed: int) -> int:
        """The seed of a member's data order: its own seed (the paper), unless the grid fixes one."""
        return seed if self.order_seed is None else self.order_seed

    def __len__(self) -> int:
        return len(self.seeds) * len(self.l1) * len(self.n_classes) * len(self.parts())

    def to_dict(self, *, science_only: bool = False) -> dict:
        """Plain values (JSON- and YAML-ready) of every knob (``science_only``: of those that change the
        networks, an optional one only when set: what a cache key or a sweep fingerprint hashes)."""
        values = {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                  for f in dataclasses.fields(self)}
        if not science_only:
            return values
        return {f.name: values[f.name] for f in dataclasses.fields(self) if f.metadata["science"] and self.is_set(f)}

    def is_set(self, f: dataclasses.Field) -> bool:
        """Whether knob ``f`` is named (in keys, fingerprints and the banner): always, unless it is an optional
        knob at its default."""
        return not (f.metadata["optional"] and getattr(self, f.name) == f.default)

    @classmethod
    def from_dict(cls, d: dict) -> "Grid":
        if not isinstance(d, dict):
            raise UnderspecError(f"a grid is a mapping of knob names to values, got {type(d).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in known]
        if unknown:
            raise UnderspecError(f"unknown grid key(s) {shown(unknown)}: allowed are {', '.join(known)}")
        return cls(**d)

    @classmethod
    def from_parameters(cls, namespace: dict, **defaults) -> "Grid":
        """The grid that a notebook's parameters describe: every knob found in ``namespace`` (its variables,
        e.g. ``globals()``, or a papermill parameter dict), else ``defaults``, else the knob's default."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{**defaults, **{k: namespace[k] for k in names if k in namespace}})


AXES = tuple(f.name for f in dataclasses.fields(Grid) if f.metadata["axis"])  # the knobs that may be axes


def _no_duplicates(values, what):
    seen, twice = set(), set()
    for v in values:
        (twice if v in seen else seen).add(v)
    dup = sorted(twice, key=repr)
    if dup:
        raise UnderspecError(f"duplicate {what}(s) {shown(dup)}: list each {what} once")

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
from dataclasses import dataclass, field

from ..errors import UnderspecError, check_choice, shown
from .choices import CLASS_MODES
from .values import (MAX_DEPTH, MAX_HIDDEN, _axis, _items, _no_duplicates, _parse_optional_float,  # noqa: F401
                     _parse_optional_int, _parse_widths_axis, parse_float, parse_floats, parse_int, parse_ints,
                     parse_str, parse_widths, widths_of)

PAPER_SEEDS = (0, 42, 1337, 3213, 9999, 5783, 1023)
PAPER_L1 = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.05)
PAPER_CLASSES = tuple(range(2, 11))
OPTIMIZERS = ("sgd", "adam", "adamw")
MAX_SEED = 2**63 - 1  # torch's generators take seeds below 2^64; int64 tensors below 2^63
# Bounds checked from the lengths of the lists, before any list of parts or members is built: beyond them a
# grid is a sweep's work (underspec sweep shards it), not one call's.
MAX_NETWORKS = 100_000
MAX_PARTS = 10_000
MAX_EPOCHS = 10**9


# ------------------------------------------------------------------------------------------ derived values

def values_of(value) -> tuple:
    """The values of a knob: a tuple of one value for a single one."""
    return value if isinstance(value, tuple) else (value,)


def steps_to_epochs(steps: int, n_train: int, batch_size: int) -> int:
    """The fewest whole epochs of ceil(n_train / batch_size) SGD steps that make at least ``steps`` steps."""
    per_epoch = -(-n_train // batch_size)
    return -(-steps // per_epoch)


def validation_size(n_train: int, fraction: float | None) -> int:
    """How many of ``n_train`` training images a validation split of ``fraction`` holds back: the nearest whole
    number, at least 1 and leaving at least 1 to train on (0 without a split)."""
    if fraction is None:
        return 0
    return min(max(round(fraction * n_train), 1), n_train - 1)


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
    widths: str | tuple[str, ...] | None = knob(None, "each hidden layer's width, first to last, as one shape "
                                                "64-32-16 (sets hidden and depth; None: depth layers of hidden "
                                                "units)", parse=_parse_widths_axis, label="widths {}", optional=True)
    label_noise: float | tuple[float, ...] = knob(0.0, "the fraction of training labels replaced by another digit, "
                                                  "drawn with noise_seed (never the test or validation labels)",
                                                  parse=_axis(parse_float), label="label noise {:g}", optional=True)
    noise_seed: int = knob(0, "the seed that picks the noisy labels and their new digits", parse=parse_int,
                           label="noise seed {}", optional=True)
    validation: float | None = knob(None, "the fraction of training images held back as a validation split "
                                    "(drawn with validation_seed; recorded every epoch as val_loss, val_acc); None: "
                                    "no split (the paper)", parse=_parse_optional_float, label="validation {:g}",
                                    optional=True)
    validation_seed: int = knob(0, "the seed that draws the validation split", parse=parse_int,
                                label="validation seed {}", optional=True)

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
        if any(not (math.isfinite(v) and 0 <= v < 1) for v in values_of(self.label_noise)):
            raise UnderspecError(f"label_noise is a fraction of training labels in [0, 1), got {shown(self.label_noise)}")
        if self.validation is not None and not (math.isfinite(self.validation) and 0 < self.validation < 1):
            raise UnderspecError(f"validation is a fraction of the training images in (0, 1), e.g. 0.2, or None for "
                                 f"no split; got {shown(self.validation)}")
        for name in ("noise_seed", "validation_seed"):
            if not 0 <= getattr(self, name) <= MAX_SEED:
                raise UnderspecError(f"{name} must be an integer in 0..2^63-1, got {shown(getattr(self, name))}")
        if self.validation is None and self.validation_seed != 0:
            raise UnderspecError("validation_seed draws a validation split, but there is none: give validation "
                                 "(a fraction, e.g. 0.2) or drop validation_seed")
        if not any(values_of(self.label_noise)) and self.noise_seed != 0:
            raise UnderspecError("noise_seed draws noisy labels, but label_noise is 0: give label_noise (e.g. 0.1) "
                                 "or drop noise_seed")
        if self.widths is not None:
            self._derive_from_widths()
        if self.steps is not None and "subset" in values_of(self.class_mode):
            raise UnderspecError("a steps budget needs class_mode relabel: in subset mode every C trains on its own "
                                 "number of images, so one budget gives each a different number of epochs")

    def _derive_from_widths(self) -> None:
        """``widths`` sets ``hidden`` (the first layer's width) and ``depth``: given alongside, they must agree
        (or be at their defaults); with several shapes (an axis) each part derives its own."""
        if isinstance(self.hidden, tuple) or isinstance(self.depth, tuple):
            raise UnderspecError("widths sets every hidden layer's width: give widths or hidden/depth axes, not both")
        if isinstance(self.widths, tuple):
            if (self.hidden, self.depth) != (16, 1):
                raise UnderspecError("widths sets every hidden layer's width: with several shapes, drop hidden and "
                                     "depth")
            return
        layers = widths_of(self.widths)
        if (self.hidden, self.depth) not in ((16, 1), (layers[0], len(layers))):
            raise UnderspecError(f"widths {self.widths} has {len(layers)} hidden layer(s), the first {layers[0]} wide, "
                                 f"but hidden={self.hidden}, depth={self.depth}: give widths alone")
        object.__setattr__(self, "hidden", layers[0])
        object.__setattr__(self, "depth", len(layers))

    def layer_widths(self) -> tuple[int, ...]:
        """Every hidden layer's width, first to last, of a grid of one shape: ``widths``, or ``depth`` layers of
        ``hidden`` units."""
        if isinstance(self.widths, tuple) or isinstance(self.hidden, tuple) or isinstance(self.depth, tuple):
            raise UnderspecError("a grid of several shapes has no one list of widths: take a part (grid.parts())")
        return widths_of(self.widths) if self.widths is not None else (self.hidden,) * self.depth

    def train_images(self, n_train: int) -> int:
        """The training images a member learns from, of ``n_train``: all, less the validation split."""
        return n_train - validation_size(n_train, self.validation)

    def for_data(self, n_train: int) -> "Grid":
        """This grid with ``epochs`` set by its steps budget for ``n_train`` training images: the fewest whole
        epochs of ceil(n_train / batch_size) steps that reach the budget (the budget stays recorded). Without
        a budget, the grid itself."""
        if isinstance(n_train, bool) or not isinstance(n_train, numbers.Integral) or n_train < 1:
            raise UnderspecError(f"a grid is trained on at least one image, got n_train={shown(n_train)}")
        if self.validation is not None and n_train < 2:
            raise UnderspecError(f"a validation split needs at least 2 training images, got {n_train}")
        if self.steps is None:
            return self
        return dataclasses.replace(self, epochs=steps_to_epochs(self.steps, self.train_images(n_train),
                                                                self.batch_size))

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

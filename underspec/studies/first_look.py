"""The first look beyond the paper's network: width, width at equal training loss, depth, optimizer and
learning rate, and which source of randomness the seeds vary, each changed alone from the paper's network and
compared seed by seed (``metrics.seed_similarity``) with seed-level intervals.

``first_look_study(...)`` declares the experiments' grids as a ``Study`` (one mixed grid per product of
settings, trained in one call); ``first_look(...)`` trains or loads them and measures every setting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..metrics.layers import LAYER_METRICS, layer_similarity
from ..metrics.seed_similarity import METRIC_NAMES, seed_similarity, similarity_estimates
from ..metrics.uncertainty import estimate, multibootstrap, pair_array, seed_image_estimate
from ..text import fmt_l1, interval, number
from ..training.data import Dataset, load_dataset
from ..training.grid import Grid
from .book import book_grid
from .study import RunSpec, Study

FIRST_LOOK_SEEDS = 5  # seeds per setting (the chapter's first five)
WIDTHS = (4, 16, 64, 256, 512)
DEPTHS = (1, 2, 3)
DEPTH_WIDTH = 64
# the widths again, each network stopped after the first epoch whose mean training cross-entropy is below this:
# a round value above the final training loss of width 16 on mnist-5k after 50 epochs (about 0.30); width 4
# (about 0.9) never reaches it and is left out
EQUAL_LOSS = 0.35
OPTIMIZERS = ("sgd", "adam")
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}
LEARNING_RATES = (0.01, 3e-4)  # the paper's SGD rate and Adam's usual one, each with both optimizers


def _seeds_varied(g: Grid) -> str:
    return "init only" if g.order_seed is not None else "order only" if g.init_seed is not None else "init and order"


def first_look_experiments(init_seed: int) -> dict[str, tuple[list[dict], object]]:
    """The first look's experiments: {experiment: (the knobs of its grids, each changed from the paper's
    network, and the name of a setting: a function of a part's grid)}. Where an experiment is a product of
    axes it is one mixed grid (``Grid.parts``), trained in one call."""
    return {
        "width (depth 1)": ([{"hidden": WIDTHS}], lambda g: str(g.hidden)),
        f"width at train loss {EQUAL_LOSS}": ([{"hidden": WIDTHS[1:], "stop_loss": EQUAL_LOSS}], lambda g: str(g.hidden)),
        f"depth (width {DEPTH_WIDTH})": ([{"hidden": DEPTH_WIDTH, "depth": DEPTHS}], lambda g: str(g.depth)),
        "optimizer x learning rate (width 16)": ([{"optimizer": OPTIMIZERS, "lr": LEARNING_RATES}],
                                                 lambda g: f"{OPTIMIZER_NAMES[g.optimizer]}, lr {g.lr:g}"),
        "what the seeds vary (width 16)": ([{}, {"order_seed": init_seed}, {"init_seed": init_seed}], _seeds_varied),
    }


def first_look_study(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50,
                     n_train: int | None = None, n_test: int | None = None, device: str = "auto",
                     results_dir: str | None = "../runs/cache", steps=None, progress: bool = False,
                     threads: int | None = None) -> "FirstLookStudy":
    """The first look's grids for a chapter's parameters (``FirstLookStudy``): every setting at the chapter's
    first lambda and largest C, for its first ``FIRST_LOOK_SEEDS`` seeds; no per-epoch records."""
    data = load_dataset(dataset).take(n_train, n_test)
    grid = book_grid(seeds, l1, classes, epochs, steps)
    base = dataclasses.replace(grid, seeds=grid.seeds[:FIRST_LOOK_SEEDS], l1=grid.l1[:1],
                               n_classes=(max(grid.n_classes),))
    return FirstLookStudy(data, base, results_dir, device=device, progress=progress, threads=threads)


@dataclass
class FirstLook:
    """The first look's data, the grid every setting changes (``base``) and the estimates: one row per
    (experiment, setting, metric) with ``value``, ``low``, ``high`` (95%, seeds resampled) and ``null``."""

    data: Dataset
    base: Grid
    estimates: pd.DataFrame
    pairs: dict  # (experiment, setting) -> its seed_similarity table (one row per seed pair)
    epochs: dict  # (experiment, setting) -> the epochs its seeds trained for (a stopping rule ends some early)
    layers: pd.DataFrame  # the deepest network's estimates layer by layer: experiment, setting ("layer l"), ...
    examples: dict  # (experiment, setting) -> {"disagreement": (S, S, T) per pair and test image, "correct": (S, T)}

    def settings(self, experiment: str) -> list[str]:
        return list(dict.fromkeys(self.estimates[self.estimates.experiment == experiment].setting))

    def change(self, experiment: str, metric: str) -> str:
        """The change of ``metric`` from the experiment's first setting to its last, per seed pair (the same
        seeds in both), with its 95% interval in words: "lower (-0.031 [-0.044, -0.017])". Seeds resampled; for
        disagreement and accuracy, seeds and test images together (``multibootstrap``, ``seed_image_estimate``)."""
        settings = self.settings(experiment)
        ends = (settings[0], settings[-1])
        if metric == "accuracy":  # per seed, on every test image: seeds and images resampled together
            first, last = (self.examples[(experiment, s)]["correct"] for s in ends)
            e = seed_image_estimate(lambda s, i: np.nanmean(last[s][:, i] - first[s][:, i]), *first.shape)
        elif all(metric in self.examples.get((experiment, s), {}) for s in ends):  # seeds and images resampled
            first, last = (self.examples[(experiment, s)][metric] for s in ends)
            e = multibootstrap(last - first)
        else:
            first, last = (self.pairs[(experiment, s)] for s in ends)
            keys = ["seed_a", "seed_b"]
            both = first[keys + [metric]].merge(last[keys + [metric]], on=keys, suffixes=("_first", "_last"))
            both["change"] = both[f"{metric}_last"] - both[f"{metric}_first"]
            e = estimate(pair_array(both, "change", [])[2])
        word = ("no change the seeds can detect" if not (e.low > 0 or e.high < 0) or np.isnan(e.low)
                else "higher" if e.low > 0 else "lower")
        return f"{word} ({interval(e.value, e.low, e.high)})"

    def changes_in_words(self) -> str:
        """One line per experiment: how each metric changes from its first setting to its last."""
        named = {"accuracy": "test accuracy", "disagreement": "disagreement", "cka": "CKA of the first hidden layer",
                 "cka_last": "CKA of the last",
                 "apc1_excess": "APC-1 above its null", "barrier": "loss barrier after alignment"}
        lines = []
        for experiment in dict.fromkeys(self.estimates.experiment):
            settings = self.settings(experiment)
            said = "; ".join(f"{name}: {self.change(experiment, metric)}" for metric, name in named.items())
            lines.append(f"- **{experiment}, {settings[0]} → {settings[-1]}**: {said}.")
        return "\n".join(lines)

    def layers_in_words(self) -> str:
        """Per metric of ``layers``, the layers whose 95% interval lies above the mean of the same pairs before
        training, and those whose interval does not."""
        lines = []
        for metric, part in self.layers.groupby("metric", sort=False):
            above = part[part.low > part.null].setting.tolist()
            rest = part[~(part.low > part.null)].setting.tolist()
            said = [f"above in {', '.join(above)}" if above else "", f"not above in {', '.join(rest)}" if rest else ""]
            lines.append(f"- {METRIC_NAMES[metric]}: " + "; ".join(x for x in said if x) + ".")
        return "\n".join(lines)

    def summary(self) -> str:
        b, n = self.base, len(self.data.y_train)
        widths = ", ".join(map(str, WIDTHS))
        return (f"Data set **{self.data.name}** ({n:,} training / {len(self.data.y_test):,} test images). Every "
                f"setting: {len(b.seeds)} seeds ({', '.join(map(str, b.seeds))}), λ = {fmt_l1(b.l1[0])}, "
                f"C = {b.n_classes[0]}, {b.for_data(n).epochs} epochs of batch {b.batch_size}; widths {widths} at "
                f"depth 1 (and from {WIDTHS[1]} on, each network stopped once its training loss is below "
                f"{EQUAL_LOSS}), depths {', '.join(map(str, DEPTHS))} at width {DEPTH_WIDTH}, SGD and Adam each at "
                f"learning rates {' and '.join(f'{lr:g}' for lr in LEARNING_RATES)}, and one source of randomness "
                "fixed at a time.")

    def table(self, experiment: str) -> pd.DataFrame:
        """One experiment's estimates for the page: a column per setting, a row per metric (its mean with the
        95% interval, seeds resampled) and below it the metric's null (``TABLE_NULLS``); first the epochs
        trained (a stopping rule ends some networks early)."""
        e = self.estimates[self.estimates.experiment == experiment].set_index(["setting", "metric"])
        settings = self.settings(experiment)
        rows = {"epochs trained": [_span(self.epochs[(experiment, s)]) for s in settings]}
        for metric, null_name in TABLE_NULLS.items():
            cells = [e.loc[(s, metric)] for s in settings]
            rows[METRIC_NAMES[metric]] = [interval(c.value, c.low, c.high, sign=metric == "apc1_excess")
                                          for c in cells]
            if null_name:
                rows[f"  its null ({null_name})"] = [number(c.null, sign=False) for c in cells]
        return pd.DataFrame(rows, index=settings).T.rename_axis(experiment, axis=1)


def _span(epochs: list[int]) -> str:
    return f"{min(epochs)}" if min(epochs) == max(epochs) else f"{min(epochs)}-{max(epochs)}"


# the metrics of the page's tables, and what each one's null is ("": no null row); the names are distinct, as they
# name the null rows (the same name twice would leave one row holding the other metric's null)
TABLE_NULLS = {"accuracy": "", "disagreement": "independent errors", "cka": "the pair before training",
               "cka_last": "the pair before training, last layer", "apc1_excess": "", "barrier": "the pair as trained"}


class FirstLookStudy(Study):
    """The first look's runs (``"<experiment>/<i>"``: the i-th grid of the experiment) and ``base``, the grid
    every setting changes."""

    def __init__(self, data: Dataset, base: Grid, cache=None, **options):
        specs = {f"{experiment}/{i}": RunSpec(dataclasses.replace(base, **knobs))
                 for experiment, (grids, _) in first_look_experiments(base.seeds[0]).items()
                 for i, knobs in enumerate(grids)}
        super().__init__(data, specs, cache, **options)
        self.base = base


def first_look(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50,
               n_train: int | None = None, n_test: int | None = None, device: str = "auto",
               results_dir: str | None = "../runs/cache", steps=None, threads: int | None = None) -> FirstLook:
    """Every setting of ``first_look_study`` trained (or loaded from the cache) and compared
    (``seed_similarity``); the deepest network also layer by layer (``layer_similarity``)."""
    study = first_look_study(dataset, seeds, l1, classes, epochs, n_train, n_test, device, results_dir, steps,
                             threads=threads)
    data, base = study.data, study.base
    rows, pairs, epochs, examples = [], {}, {}, {}
    measured = {}  # part grid -> its table and epochs (settings that coincide, e.g. width 16 with SGD, once)
    deepest = None
    for experiment, (grids, name) in first_look_experiments(base.seeds[0]).items():
        for i in range(len(grids)):
            parts = study.run(f"{experiment}/{i}").parts
            study.release(f"{experiment}/{i}")  # measured part by part, each freed once measured: within 1 GB
            while parts:
                part = parts.pop(0)
                if part.grid not in measured:
                    stopped = part.members.get("stopped")  # a stopping rule's epochs (NA: trained to the end)
                    trained = ([part.grid.epochs] * len(part.grid) if stopped is None
                               else stopped.fillna(part.grid.epochs).astype(int).tolist())
                    measured[part.grid] = (*seed_similarity(part, data, examples=True), trained)
                    if part.grid.depth == max(DEPTHS):
                        deepest = layer_similarity(part, data)
                setting = name(part.grid)
                table, per_example, trained = measured[part.grid]
                pairs[(experiment, setting)], epochs[(experiment, setting)] = table, trained
                examples[(experiment, setting)] = per_example
                rows.append(similarity_estimates(table, examples=per_example).assign(experiment=experiment,
                                                                                     setting=setting))
    layers = pd.concat([similarity_estimates(part, metrics=LAYER_METRICS).assign(
        experiment=f"depth {max(DEPTHS)} (width {DEPTH_WIDTH}), layer by layer", setting=f"layer {layer}")
        for layer, part in deepest.groupby("layer")], ignore_index=True)
    return FirstLook(data, base, pd.concat(rows, ignore_index=True), pairs, epochs, layers, examples)

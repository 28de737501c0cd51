"""The study of "Tuning when seeds disagree": how much of a tuner's choice is the seed.

``tuning_study(...)`` declares, for a chapter's parameters, a ``TuningStudy`` of four parts (their sizes in a
``TuningDesign``: the chapter's is small enough to run on every build, the committed study of
``scripts/tuning_results.py`` larger):

- **the seed study**: ``configs`` configurations drawn by Optuna's random sampler over the learning rate and
  the width, each trained with the same ``seeds`` seeds as one batch of the tuner (``underspec.tuning``), and
  scored on a validation split: the score table (K, S) that ``metrics.selection`` cuts into seed sets;
- **the shapes** (run ``"shapes"``): one mixed grid over per-layer widths, depth 1 and depth 4 at an equal
  budget of parameters (``width_for_parameters``: 251 and 157 at 200,000) and a constant against a funnel shape
  (64-64-64, 64-32-16), compared seed by seed (``seed_similarity``);
- **over-parameterisation** (run ``"overparam"`` of its own study on the first ``overparam_train`` training
  images): widths 1 to 1024 at label noise 0, 10 and 20%, the same seeds at every width;
- **learning curves** (run ``"curves"``): the paper's width and a wide one trained on the same split, their
  loss and accuracy on the training images and on the validation split after every epoch, seed by seed;
- **the tuners**: grid search, random search and TPE on the same space and budget of networks, each repeated
  with ``repeats`` sampler seeds.

Every choice reads validation numbers; a test accuracy is read only for a configuration already chosen. The
tuners' journals live under the run cache (``<cache>/tuning/``), so a second build reads them instead of
training; ``tables()`` gives every table the chapter and the committed study need (``tuning_verdicts`` judges
them, ``report.tuning_figures`` draws them).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics.seed_similarity import seed_similarity, similarity_estimates
from ..metrics.uncertainty import multibootstrap, seed_image_estimate
from ..training.data import Dataset, load_dataset
from ..training.grid import PAPER_SEEDS, Grid, parse_ints
from ..training.memory import n_parameters, width_for_parameters
from ..tuning.config import TuneConfig
from ..tuning.tuner import seed_table, tune
from .seeds import extra_seeds
from .study import RunSpec, Study

SPACE = {"lr": {"low": 0.003, "high": 0.3, "log": True}, "hidden": {"low": 8, "high": 256, "log": True}}
VALIDATION = 0.2  # the share of the training images every tuned network is scored on (never trained on)
TUNERS = ("grid", "random", "tpe")
BUDGET = 200_000  # parameters of the equal-budget shapes
DEEP = 4  # the deep shape's hidden layers
SHAPES = ("64-64-64", "64-32-16")  # constant against funnel
NOISE = (0.0, 0.1, 0.2)
WIDTHS = tuple(2**i for i in range(11))  # 1 .. 1024
CURVE_WIDTHS = (16, 256)  # the paper's width and a wide one: the learning curves
OVERPARAM_OPTIMIZER = {"optimizer": "adam", "lr": 1e-3}  # Adam reaches the interpolation of noisy labels sooner


@dataclass(frozen=True)
class TuningDesign:
    """The sizes of a tuning study: seed study (``configs`` configurations x ``seeds`` seeds, ``tune_epochs``),
    tuners (``trials`` trials of ``trial_seeds`` seeds in batches of ``batch``, ``repeats`` sampler seeds, a
    grid of ``grid_points`` values per knob), shapes (``shape_seeds`` seeds, ``shape_epochs``) and
    over-parameterisation (``overparam_seeds`` seeds, ``overparam_epochs`` on ``overparam_train`` images)."""

    configs: int = 16
    seeds: int = 8
    tune_epochs: int = 5
    trials: int = 9
    trial_seeds: int = 2
    batch: int = 3
    repeats: int = 3
    grid_points: int = 3
    shape_seeds: int = 5
    shape_epochs: int = 10
    overparam_seeds: int = 3
    overparam_epochs: int = 16
    overparam_train: int = 1000
    widths: tuple[int, ...] = WIDTHS


QUICK_BELOW = 2000  # with fewer training images (a quick run, the tests' chapters) every part is smaller
QUICK = {"configs": 6, "seeds": 4, "trials": 4, "trial_seeds": 1, "batch": 2, "repeats": 2, "grid_points": 2,
         "shape_seeds": 3, "widths": (1, 4, 16, 64)}


def chapter_design(epochs: int, n_train: int) -> TuningDesign:
    """The chapter's design for its ``epochs`` parameter (the other chapters' 50) on ``n_train`` training images:
    a tenth of the epochs for the tuned networks, a fifth for the shapes, a third for over-parameterisation
    (each at least 1), so that the whole chapter trains in about a minute and a half of one CPU core; on fewer
    than ``QUICK_BELOW`` images, fewer configurations, seeds, trials and widths (``QUICK``)."""
    epochs = {"tune_epochs": max(1, epochs // 10), "shape_epochs": max(1, epochs // 5),
              "overparam_epochs": max(1, epochs // 3)}
    return TuningDesign(**epochs, **(QUICK if n_train < QUICK_BELOW else {}))


def tuning_study(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50, n_train: int | None = None,
                 n_test: int | None = None, device: str = "auto", results_dir: str | None = "../runs/cache",
                 steps=None, progress: bool = False, threads: int | None = None,
                 design: TuningDesign | None = None) -> "TuningStudy":
    """The chapter's study for its parameters: the chapter's seeds (the paper's by default) extended to the
    design's count, all ten classes without L1 (``l1``, ``classes`` and ``steps`` belong to the paper's grid:
    tuning reads none of them), the design of ``chapter_design`` unless one is given."""
    data = load_dataset(dataset).take(n_train, n_test)
    base = PAPER_SEEDS if seeds is None else Grid(seeds=parse_ints(seeds, "seeds")).seeds
    design = chapter_design(int(epochs), len(data.y_train)) if design is None else design
    return TuningStudy(data, base, design, results_dir, device=device, progress=progress, threads=threads)


class TuningStudy(Study):
    """The runs ``"shapes"``, ``"curves"`` (and, through ``overparam_study``, ``"overparam"``), the tuners' configs and the
    tables (module doc). ``seeds``: the study's seeds, the chapter's first."""

    def __init__(self, data: Dataset, seeds, design: TuningDesign, cache=None, **options):
        self.design = design
        self.seeds = extra_seeds(seeds, max(design.seeds, design.shape_seeds, design.overparam_seeds,
                                            design.trial_seeds))
        widths = (str(width_for_parameters(BUDGET, 1)), "-".join([str(width_for_parameters(BUDGET, DEEP))] * DEEP),
                  *SHAPES)
        shapes = Grid(seeds=self.seeds[:design.shape_seeds], widths=widths, epochs=design.shape_epochs)
        curves = Grid(seeds=self.seeds[:design.shape_seeds], hidden=CURVE_WIDTHS, validation=VALIDATION,
                      epochs=design.shape_epochs)
        super().__init__(data, {"shapes": RunSpec(shapes, probe_size=0), "curves": RunSpec(curves, probe_size=0)},
                         cache, **options)
        n = min(design.overparam_train, len(data.y_train))
        over = Grid(seeds=self.seeds[:design.overparam_seeds], hidden=design.widths, label_noise=NOISE,
                    epochs=design.overparam_epochs, **OVERPARAM_OPTIMIZER)
        self.overparam_study = Study(data.take(n, len(data.y_test)), {"overparam": RunSpec(over, probe_size=0)},
                                     cache, **options)
        self._journals = Path(cache).expanduser().resolve() / "tuning" if cache else None

    # ------------------------------------------------------------------------------------ the tuners

    def tune_config(self, sampler: str, *, repeat: int = 0, seed_study: bool = False):
        """The ``TuneConfig`` of one tuner (``sampler``, sampler seed ``repeat``) or of the seed study (the
        random sampler's ``configs`` configurations, each with ``seeds`` seeds, in one batch); its journal under
        the cache is named by its fingerprint, so a study of other settings never meets it."""
        d = self.design
        keys = {"space": SPACE, "fixed": {"epochs": d.tune_epochs, "validation": VALIDATION},
                "dataset": self.data.name.split("[")[0], "n_train": len(self.data.y_train),
                "n_test": len(self.data.y_test), "sampler": sampler, "sampler_seed": repeat,
                "device": self.device, "threads": self.threads}
        if seed_study:
            keys.update(seeds=list(self.seeds[:d.seeds]), trials=d.configs, batch=d.configs)
        else:
            keys.update(seeds=list(self.seeds[:d.trial_seeds]), trials=d.trials, batch=d.batch,
                        grid_points=d.grid_points)
        if self._journals is None:  # no cache: the journals live in a folder of their own until the process ends
            self._journals = Path(tempfile.mkdtemp(prefix="underspec-tuning-"))
        fingerprint = TuneConfig.from_dict(keys).fingerprint()
        name = f"{'seeds' if seed_study else sampler}-{fingerprint}"
        return TuneConfig.from_dict({**keys, "storage": str(self._journals / f"{name}.journal")})

    def tune_configs(self) -> dict[tuple[str, int], object]:
        """Every tuner's config: {(tuner, repeat): TuneConfig}, the seed study's as ("seeds", 0)."""
        configs = {("seeds", 0): self.tune_config("random", seed_study=True)}
        configs.update({(t, r): self.tune_config(t, repeat=r) for t in TUNERS for r in range(self.design.repeats)})
        return configs

    def tuned(self, key: tuple[str, int]) -> pd.DataFrame:
        """The seed table (``tuning.tuner.seed_table``: one row per trial and seed) of one tuner's study, trained
        now if its journal lacks trials."""
        self._journals.mkdir(parents=True, exist_ok=True)
        return seed_table(tune(self.tune_configs()[key], self.data, progress=self.progress).study)

    def journals(self) -> list[Path]:
        return [c.journal for c in self.tune_configs().values()]

    def ensure(self, progress=None, *, say: bool = False) -> list[str]:
        """Every run and every tuner's study that the cache lacks."""
        done = super().ensure(progress, say=say) + self.overparam_study.ensure(progress, say=say)
        for key in self.tune_configs():
            self.tuned(key)
        return done

    # ------------------------------------------------------------------------------------ the tables

    def scores(self) -> pd.DataFrame:
        """The seed study: one row per configuration and seed (``number``, ``seed``, ``value`` the validation
        accuracy, ``test_acc``, ``lr``, ``hidden``)."""
        return self.tuned(("seeds", 0))

    def tuners(self) -> pd.DataFrame:
        """Every tuner's trials: one row per (tuner, repeat, trial, seed), as ``scores``."""
        return pd.concat([self.tuned((t, r)).assign(tuner=t, repeat=r) for t in TUNERS
                          for r in range(self.design.repeats)], ignore_index=True)

    def shapes(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(estimates, contrasts) of the shapes: ``similarity_estimates`` of every shape (a ``widths`` and a
        ``parameters`` column), seeds and test images resampled; and the differences that the verdicts judge,
        depth 4 - depth 1 and funnel - constant, of accuracy and disagreement (``contrast``, ``metric``,
        ``value``, ``low``, ``high``)."""
        def compute():
            run = self.run("shapes")
            rows, examples = [], {}
            for i, part in enumerate(run.parts):
                shape = run.settings(i)["widths"]
                table, per_example = seed_similarity(part, self.data, examples=True)
                examples[shape] = per_example
                rows.append(similarity_estimates(table, examples=per_example).assign(
                    widths=shape, parameters=n_parameters(part.grid, self.data.x_train.shape[1])))
            self.release("shapes")
            shapes = list(examples)
            pairs = {f"depth {DEEP} - depth 1": (shapes[1], shapes[0]), "funnel - constant": (shapes[3], shapes[2])}
            found = []
            for name, (b, a) in pairs.items():
                ca, cb = examples[a]["correct"], examples[b]["correct"]
                acc = seed_image_estimate(lambda s, i: np.nanmean(cb[s][:, i] - ca[s][:, i]), *ca.shape)
                dis = multibootstrap(examples[b]["disagreement"] - examples[a]["disagreement"])
                found += [{"contrast": name, "metric": m, "value": e.value, "low": e.low, "high": e.high}
                          for m, e in (("accuracy", acc), ("disagreement", dis))]
            return pd.concat([pd.concat(rows, ignore_index=True).assign(kind="estimate"),
                              pd.DataFrame(found).assign(kind="contrast")], ignore_index=True)
        both = self.table("tuning-shapes", compute, runs=("shapes",))
        return (both[both.kind == "estimate"].drop(columns=["kind", "contrast"]).reset_index(drop=True),
                both[both.kind == "contrast"][["contrast", "metric", "value", "low", "high"]].reset_index(drop=True))

    def curves(self) -> pd.DataFrame:
        """Learning curves: one row per (``hidden``, ``seed``, ``epoch``) with ``train_loss``, ``train_acc``,
        ``val_loss``, ``val_acc`` (the validation split: never trained on); the test set is not read."""
        def compute():
            history = self.run("curves").history
            self.release("curves")
            return history[["hidden", "seed", "epoch", "train_loss", "train_acc", "val_loss", "val_acc"]].astype(
                {"hidden": int, "seed": int, "epoch": int}).reset_index(drop=True)
        return self.table("tuning-curves", compute, runs=("curves",))

    def overparam(self) -> pd.DataFrame:
        """One row per network of the over-parameterisation run: ``hidden``, ``label_noise``, ``seed``,
        ``parameters``, ``train_error`` (on its own, noisy, training labels) and ``test_error`` at the last
        epoch."""
        study = self.overparam_study

        def compute():
            run = study.run("overparam")
            last = run.history[run.history.epoch == run.grid.epochs]
            d = study.data.x_train.shape[1]
            table = pd.DataFrame({"hidden": last.hidden.astype(int), "label_noise": last.label_noise.astype(float),
                                  "seed": last.seed.astype(int), "train_error": 1 - last.train_acc,
                                  "test_error": 1 - last.test_acc})
            table.insert(3, "parameters", [n_parameters(Grid(hidden=int(h)), d) for h in table.hidden])
            study.release("overparam")
            return table.reset_index(drop=True)
        return study.table("tuning-overparam", compute, runs=("overparam",))

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table the chapter reads (and the committed study stores): ``scores``, ``tuners``,
        ``shapes``, ``contrasts``, ``overparam``."""
        shapes, contrasts = self.shapes()
        return {"scores": self.scores(), "tuners": self.tuners(), "shapes": shapes, "contrasts": contrasts,
                "overparam": self.overparam()}

    def summary(self) -> str:
        d, n = self.design, len(self.data.y_train)
        shapes = self.specs["shapes"].grid.widths
        return (f"Data set **{self.data.name}** ({n:,} training images, {VALIDATION:.0%} of them held out for "
                f"validation where a choice is made; {len(self.data.y_test):,} test images), C = 10, no L1. Tuning "
                f"space: learning rate {SPACE['lr']['low']:g}-{SPACE['lr']['high']:g} and width "
                f"{SPACE['hidden']['low']}-{SPACE['hidden']['high']} (both log scale), SGD, batch 64, "
                f"{d.tune_epochs} epochs. Seed study: {d.configs} random configurations x {d.seeds} seeds. Tuners: "
                f"grid, random and TPE, {d.trials} trials x {d.trial_seeds} seeds each, batches of {d.batch}, "
                f"{d.repeats} sampler seeds. Shapes {', '.join(shapes)}: {d.shape_seeds} seeds, {d.shape_epochs} "
                f"epochs. Over-parameterisation: widths {d.widths[0]}-{d.widths[-1]} at label noise "
                f"{', '.join(f'{v:.0%}' for v in NOISE)} on the first "
                f"{len(self.overparam_study.data.y_train):,} training images, Adam lr 0.001, {d.overparam_seeds} "
                f"seeds, {d.overparam_epochs} epochs.")


def design_dict(design: TuningDesign) -> dict:
    """A design as plain values (for provenance)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(design).items()}

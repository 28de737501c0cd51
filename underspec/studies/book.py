"""The book's study: four runs on one data set and one set of seeds, declared once, trained once, and shared
by every chapter through the run cache.

- ``paper``: the paper's grid (seeds x lambdas x C), final parameters and learning curves only;
- ``detail``: the same seeds and lambdas for a few class counts (``DETAIL_CLASSES``), with every epoch's
  parameters and the hidden layers' outputs on ``PROBE_SIZE`` probe images (the chapters that follow training
  over time);
- ``subset``: the paper's grid with C meaning "only the digits 0..C-1" (``class_mode="subset"``), the classes
  balanced, for "model knowledge" without the class imbalance of the paper's relabelling;
- ``floor``: every seed and lambda at the largest C twice, the twin's first weight one ulp higher
  (``perturb_ulp``): what float rounding alone does to this training (``metrics.rounding``).

``book_study(...)`` takes a chapter's parameters (the strings papermill passes included) and gives the
``BookStudy``; the tables several chapters read are its methods, each cached beside the runs.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from ..metrics.matching import apc, match_units
from ..metrics.predictions import accuracy, barriers, ensemble_accuracy, expected_calibration_error
from ..metrics.representations import cka_baselines, cka_over_training, cka_table
from ..metrics.rounding import twin_table
from ..metrics.shift import shift_table
from ..metrics.tables import compare, member_table
from ..metrics.uncertainty import seed_image_estimate
from ..training.data import class_labels, load_dataset
from ..training.grid import PAPER_CLASSES, PAPER_L1, PAPER_SEEDS, Grid
from ..training.model import forward
from ..training.run import Run
from . import claims
from .degenerate import far_data
from .regimes import PAPER_STEPS, PAPER_TRAIN, TARGETS, steps_per_epoch
from .study import RunSpec, Study

DETAIL_CLASSES = (2, 5, 10)  # the class counts that get per-epoch records
PROBE_SIZE = 500  # test images whose hidden-layer outputs are recorded every epoch
NULLS = ("untrained", "structured")  # the nulls beside every metric (underspec.metrics.chance)
IMAGE_BLOCKS = 10  # test images left out block by block (shifts, barriers): their intervals resample them too


def book_grid(seeds=None, l1=None, classes=None, epochs=50, steps=None) -> Grid:
    """The paper grid of a chapter's parameters: ``None`` means the paper's value (seeds, lambdas, class
    counts); strings read as ``Grid`` reads them (``"[0, 42]"``, ``"0-6"``, ``"0 0.01"``, ``"46900"``)."""
    return Grid(PAPER_SEEDS if seeds is None else seeds, PAPER_L1 if l1 is None else l1,
                PAPER_CLASSES if classes is None else classes, epochs=epochs, steps=steps)


class BookStudy(Study):
    """The book's runs (``paper``, ``detail``, ``subset``, ``floor``) for one grid on one data set, and the tables
    several chapters read, each computed once and cached beside the runs."""

    def __init__(self, data, grid: Grid, cache=None, *, device: str = "auto", progress: bool = False,
                 threads: int | None = None):
        detail_classes = tuple(c for c in grid.n_classes if c in DETAIL_CLASSES) or (max(grid.n_classes),)
        effective = grid.for_data(len(data.y_train))  # a steps budget as whole epochs (subset mode needs epochs)
        specs = {
            "paper": RunSpec(grid),
            "detail": RunSpec(dataclasses.replace(grid, n_classes=detail_classes), snapshots=True, embeddings=True,
                              probe_size=PROBE_SIZE),
            "subset": RunSpec(dataclasses.replace(effective, steps=None, class_mode="subset")),
            # every seed and lambda at the largest C twice, the twin one rounding apart: the rounding floor
            "floor": RunSpec(dataclasses.replace(grid, n_classes=(max(grid.n_classes),), perturb_ulp=(0, 1))),
        }
        super().__init__(data, specs, cache, device=device, progress=progress, threads=threads)
        self.grid = grid

    @property
    def paper(self) -> Run:
        return self.run("paper")

    @property
    def detail(self) -> Run:
        return self.run("detail")

    @property
    def subset(self) -> Run:
        return self.run("subset")

    @property
    def detail_grid(self) -> Grid:
        return self.specs["detail"].grid

    @property
    def n_train(self) -> int:
        return len(self.data.y_train)

    @property
    def dataset(self) -> str:
        return self.data.name

    @property
    def epochs(self) -> int:
        return self.grid.for_data(self.n_train).epochs

    @property
    def steps(self) -> int:
        """The SGD steps every network of the paper grid made."""
        return self.epochs * steps_per_epoch(self.n_train, self.grid.batch_size)

    def summary(self) -> str:
        """One sentence that says what was run (every chapter's banner)."""
        p, d = self.grid, self.detail_grid
        return (f"Data set **{self.data.name}** ({self.n_train:,} training / {len(self.data.y_test):,} test images). "
                f"Paper grid: {len(p.seeds)} seeds x {len(p.l1)} lambdas x {len(p.n_classes)} class counts = "
                f"{len(p)} networks, {self.epochs} epochs = {self.steps:,} SGD steps (the paper: {PAPER_STEPS:,} on "
                f"{PAPER_TRAIN:,} images). Per-epoch records: C in {list(d.n_classes)}, {len(d)} networks, "
                f"{min(PROBE_SIZE, len(self.data.y_test))} probe images. {trained_on(self.paper.meta)}")

    # ------------------------------------------------------------------------------ the shared tables

    @property
    def members(self) -> pd.DataFrame:
        """``member_table`` of the paper grid (accuracy, distance from init, dead units)."""
        return self.table("members", lambda: member_table(self.paper, self.data), runs=("paper",))

    def compare_table(self) -> pd.DataFrame:
        """The paper grid compared: every seed pair, configuration and target (``TARGETS``), with the untrained
        and the structured null (``NULLS``) and the metrics over units alive in both networks."""
        return self.table("compare", lambda: compare(self.paper, "all", targets=TARGETS, data=self.data, null=NULLS),
                          runs=("paper",))

    def subset_table(self) -> pd.DataFrame:
        """The subset-mode grid compared (parameters, every pair, both nulls)."""
        return self.table("compare", lambda: compare(self.subset, "all", targets=("params",), data=self.data,
                                                     null=NULLS), runs=("subset",))

    def cka_cell(self) -> tuple[float, int]:
        """The configuration whose representations the verdict compares: lambda = 0 (the grid's first), the
        largest C with per-epoch records."""
        return self.detail_grid.l1[0], max(self.detail_grid.n_classes)

    def cka(self) -> tuple[pd.DataFrame, dict[str, float]]:
        """Linear CKA between every seed pair at the end of training (seed_a, seed_b, cka) at ``cka_cell``, and
        its three baselines (``cka_baselines``: untrained networks, the input's own PCA projection, networks
        trained for another C)."""
        lam, c = self.cka_cell()

        def pairs():
            table = cka_over_training(self.detail, c, l1=lam)
            return table[table.epoch == table.epoch.max()].reset_index(drop=True)

        def levels():
            found = cka_baselines(self.detail, self.data.x_test[self.detail.probe_index], c, l1=lam)
            return pd.DataFrame({"baseline": list(found), "cka": list(found.values())})

        baselines = self.table("cka-baselines", levels, runs=("detail",))
        return self.table("cka-final", pairs, runs=("detail",)), dict(zip(baselines.baseline, baselines.cka))

    def cka_grid(self) -> pd.DataFrame:
        """``cka_table`` of the paper grid: every configuration's seed pairs at the end of training, with their
        baselines and the probe images left out block by block (the representations verdict)."""
        return self.table("cka-grid", lambda: cka_table(self.paper, self.data), runs=("paper",))

    def cka_over_training(self, n_classes: int) -> pd.DataFrame:
        """``cka_over_training`` of the per-epoch run at ``n_classes``: every lambda, seed pair and epoch."""
        return self.table(f"cka-over-training-{n_classes}", lambda: cka_over_training(self.detail, n_classes),
                          runs=("detail",))

    def shifts(self) -> pd.DataFrame:
        """``shift_table`` of the paper grid: every seed pair on every shifted test set, Fashion-MNIST as the
        far shift where it can be read (as many of its test images as the run has)."""
        return self.table("shifts", lambda: shift_table(self.paper, self.data, far=far_data(self.data),
                                                        n_blocks=IMAGE_BLOCKS), runs=("paper",))

    def gradient_mechanism(self, n_classes: int | None = None) -> pd.DataFrame:
        """``gradient_mechanism`` of the paper grid (cached), at ``n_classes`` or every C."""
        table = self.table("mechanism", lambda: gradient_mechanism(self.paper, self.compare_table()),
                           runs=("paper",))
        if n_classes is None:
            return table
        return table[table.n_classes == n_classes].drop(columns="n_classes").reset_index(drop=True)

    def rounding_floor(self) -> pd.DataFrame:
        """``twin_table`` of the floor run: every seed against its one-ulp twin, per lambda at the largest C."""
        return self.table("twins", lambda: twin_table(self.run("floor"), self.data), runs=("floor",))

    def verdicts(self) -> pd.DataFrame:
        """Every claim of the paper judged by its rule (``claims.check_all``) on ``compare_table`` and
        ``cka_grid``: the one call behind the verdicts of the introduction and of the study chapter."""
        return self.table("verdicts", lambda: claims.check_all(self.compare_table(), cka=self.cka_grid(),
                                                               hidden=self.grid.hidden), runs=("paper",))

    def verdicts_stem(self) -> str:
        """The cache name of ``verdicts`` (a regime of this study reads the same table)."""
        return self.table_stem("verdicts", ("paper",))

    def class_mode_verdicts(self) -> pd.DataFrame:
        """The rules about trends in C (``pe_rises_with_c``, ``apc2_falls_with_c``) in both class modes: the
        paper's relabelling and balanced classes; columns mode, claim, verdict, statistic, value, low, high,
        finding."""
        def compute():
            rows = []
            for mode, table in (("relabel (the paper)", self.compare_table()), ("subset (balanced)",
                                                                                self.subset_table())):
                for rule in (claims.pe_rises_with_c(table, hidden=self.grid.hidden), claims.apc2_falls_with_c(table)):
                    rows.append({"mode": mode, **rule.row()})
            return pd.DataFrame(rows)
        return self.table("class-modes", compute, runs=("paper", "subset"))

    def barriers(self, n_classes: int, *, n_align: int, n_points: int, keep_l1: float):
        """``barriers`` of the paper grid at ``n_classes`` for every lambda: the table (one row per lambda,
        alignment, seed pair and ``block``: -1 on every test image, b with image block b left out, for
        ``uncertainty.pair_estimate``), the path positions ``t`` and, at ``keep_l1``, the curves {alignment:
        {"loss": (pairs, T), "acc": (pairs, T)}} (cached as one long table: alignment, pair, t, loss, acc)."""
        def compute():
            tables, paths = [], []
            for lam in self.grid.l1:  # one lambda at a time: only the paths at keep_l1 are kept
                part = barriers(self.paper, self.data, n_classes, l1=lam, n_align=n_align, n_points=n_points,
                                n_blocks=IMAGE_BLOCKS)
                tables.append(part.table.assign(kind="barrier"))
                for (at, name), curve in part.curves.items():
                    if at == keep_l1:
                        loss, acc = curve["loss"].numpy(), curve["acc"].numpy()
                        paths += [{"kind": "path", "alignment": name, "pair": i, "t": float(t),
                                   "loss": float(loss[i, j]), "acc": float(acc[i, j])}
                                  for i in range(loss.shape[0]) for j, t in enumerate(part.t)]
            return pd.concat([*tables, pd.DataFrame(paths)], ignore_index=True)

        both = self.table(f"barriers-{n_classes}-{n_align}-{n_points}-{keep_l1:g}", compute, runs=("paper",))
        table = both[both.kind == "barrier"].dropna(axis=1, how="all").drop(columns="kind").reset_index(drop=True)
        table = table.astype({"seed_a": int, "seed_b": int, "block": int})
        paths = both[both.kind == "path"]
        t = torch.tensor(sorted(paths.t.unique()))
        curves = {name: {key: torch.tensor(part.pivot(index="pair", columns="t", values=key).to_numpy())
                         for key in ("loss", "acc")} for name, part in paths.groupby("alignment", sort=False)}
        return table, t, curves


def gradient_mechanism(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """Why APC-1 of the summed gradients falls to the untrained null with L1: with SGD the sum is
    (W1_init - W1_final) / lr, and L1 shrinks W1_final, so the sum becomes the independent initial weights.
    Per configuration (l1, n_classes) of ``run``: APC-1 of the summed gradients (``grads``, the mean over the
    pairs of ``table``, a ``compare`` table of the run with its untrained null) and of the initial weights of
    the same pairs (``init``), the untrained null (``untrained``), how much of W1's initial norm is left
    (``norm_left``, ‖W1‖ / ‖W1_init‖) and the distance from init (``rel_change``, ‖W1 − W1_init‖ / ‖W1_init‖),
    both means over the seeds."""
    part = table[table.target == "grads"]
    position = {seed: i for i, seed in enumerate(run.grid.seeds)}
    rows = []
    for lam in run.grid.l1:
        for c in run.grid.n_classes:
            here = part[(part.l1 == lam) & (part.n_classes == c)]
            if here.empty:
                continue
            w0, w = (run.stack(lam, c, record)["w1"].double() for record in ("init", "final"))  # (S, H, D)
            a, b = [position[s] for s in here.seed_a], [position[s] for s in here.seed_b]
            norm0 = w0.flatten(1).norm(dim=1)
            rows.append({"l1": lam, "n_classes": c, "grads": here.apc1.mean(),
                         "init": float(apc(match_units(w0[a], w0[b])).mean()), "untrained": here.apc1_null.mean(),
                         "norm_left": float((w.flatten(1).norm(dim=1) / norm0).mean()),
                         "rel_change": float(((w - w0).flatten(1).norm(dim=1) / norm0).mean())})
    return pd.DataFrame(rows)


def ensemble_table(run: Run, data, n_classes: int, *, n_bins: int = 15) -> pd.DataFrame:
    """Per lambda at ``n_classes``: the mean test accuracy of one seed, the best seed's, the ensemble of every
    seed (softmax averaged), the ensemble's gain over one seed with its 95% interval (seeds and test images
    resampled together, ``seed_image_estimate``: the ensemble and the mean of the seeds left each time, on the
    images left each time) and one seed's mean ECE. Columns l1, one_seed, best_seed, ensemble, gain, gain_low,
    gain_high, ece."""
    _, labels = class_labels(data.y_test, n_classes, run.grid.class_mode)
    rows = []
    for lam in run.grid.l1:
        logits = forward(run.stack(lam, n_classes), data.x_test)  # (seeds, test images, classes)
        acc = accuracy(logits, labels)

        def gain_of(seeds, images):
            s, i = torch.from_numpy(seeds), torch.from_numpy(images)
            kept = logits[s][:, i]
            return float(ensemble_accuracy(kept, labels[i]) - accuracy(kept, labels[i]).mean())
        gain = seed_image_estimate(gain_of, len(acc), len(labels))
        rows.append({"l1": lam, "one_seed": float(acc.mean()), "best_seed": float(acc.max()),
                     "ensemble": float(ensemble_accuracy(logits, labels)), "gain": gain.value, "gain_low": gain.low,
                     "gain_high": gain.high,
                     "ece": float(expected_calibration_error(logits, labels, n_bins=n_bins).mean())})
    return pd.DataFrame(rows)


def trained_on(meta: dict) -> str:
    """Where a run was trained, from its ``meta``: "Trained on the cpu with 2 threads." (no time: a build's
    machine and its load are not the engine's speed; see benchmarks/RESULTS.md)."""
    threads = f" with {meta['threads']} threads" if meta.get("threads") else ""
    return f"Trained on the {meta.get('device', 'unknown device')}{threads}."


def book_study(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50,
               n_train: int | None = None, n_test: int | None = None, device: str = "auto",
               results_dir: str | None = "../runs/cache", progress: bool = False, steps=None,
               threads: int | None = None) -> BookStudy:
    """The book's study for a chapter's parameters, every run trained once (the first call trains what the
    cache lacks) and each mapped from the cache when first used.

    ``None`` means the paper's value (seeds, lambdas, class counts); ``steps``: a budget of SGD steps instead of
    ``epochs``; ``n_train`` / ``n_test`` take the first images of the data set (quick runs); ``results_dir``:
    where runs and their tables are cached (shared by all chapters; None keeps nothing).
    """
    data = load_dataset(dataset).take(n_train, n_test)
    study = BookStudy(data, book_grid(seeds, l1, classes, epochs, steps), results_dir, device=device,
                      progress=progress, threads=threads)
    study.ensure()
    return study

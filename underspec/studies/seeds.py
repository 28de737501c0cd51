"""The chapter "How many seeds?": seeds as a statistic. How many seeds a study needs before an ensemble of them
stands for "the" trained model (the alpha-trimming level against references of M seeds), whether that level
separates settings that accuracy, churn and calibration cannot, the laws of seed variance (the disagreement
equality, Jordan's independent-example spread, every source of randomness alike), and function space without
permutations (kernels; the PCA surrogate).

``seeds_study(...)`` takes a chapter's parameters and gives the ``SeedStudy``: its own runs (``many``: one
configuration with many seeds; ``order only`` / ``init only``: one initialisation, or one data order, for every
seed) beside the book's study (the paper grid, the one-ulp twins) and the first look's width and depth runs,
all through one run cache. Every table is a method, cached beside the runs. Verdicts: ``seed_verdicts``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from ..metrics.kernels import conjugate_kernel, empirical_ntk, kernel_alignment, kernel_movement
from ..metrics.seed_laws import (check_seed_logits, curve_estimates, doubling, gde_gap, jordan_spread, seeds_curve,
                                 setting_metrics, twin_disagreement)
from ..metrics.surrogates import needed_k, pca_surrogate
from ..metrics.trimming import ALPHAS, alpha_hats_loo, bound, scalar_outputs
from ..metrics.uncertainty import multibootstrap, seed_estimate, seed_image_estimate
from ..text import fmt_l1
from ..training.data import Dataset, class_labels, load_dataset
from ..training.grid import Grid
from ..training.model import forward, preactivations
from .book import BookStudy, book_grid
from .regimes import PAPER_STEPS, steps_per_epoch
from .first_look import DEPTH_WIDTH, DEPTHS, FIRST_LOOK_SEEDS, FirstLookStudy
from .study import RunSpec, Study

MANY = 40  # seeds of the one configuration of the how-many-seeds curves, with the chapter's default seeds
OUTPUT = "top2"  # the scalar the book trims: the label-free top-2 logit gap (see ``outputs_compared``)
N_DRAWS = 20  # random draws of the seeds per M
N_BOOT = 100  # bootstrap halves of the test images per alpha-hat
SETTING_BOOT = 30  # per alpha-hat of a setting's replicates (each replicate redraws the images' halves)
RESOLUTION = ALPHAS[1]  # the smallest trimming level the grid reports: alpha-hat within it of 0 is 0 here
KERNEL_PROBE = 64  # test images the kernels are computed on
KERNEL_BLOCKS = 8  # blocks of them left out in turn (the images' share of the alignment's interval)
SURROGATE_TRAIN = 2000  # training images the PCA and the classifiers are fitted on
SURROGATE_KS = (1, 2, 4, 8, 16, 32, 64)
IMAGE_BLOCKS = 10


def extra_seeds(seeds, total: int) -> tuple[int, ...]:
    """``seeds`` followed by the smallest non-negative integers not among them, ``total`` in all."""
    out, candidate = list(seeds), 0
    while len(out) < total:
        if candidate not in out:
            out.append(candidate)
        candidate += 1
    return tuple(out[:max(total, len(seeds))])


def seeds_study(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50, n_train=None, n_test=None,
                device: str = "auto", results_dir: str | None = "../runs/cache", steps=None, progress: bool = False,
                threads: int | None = None) -> "SeedStudy":
    """The chapter's study for its parameters: the paper grid of ``book_grid`` and, at its first lambda and
    largest C, ``MANY`` seeds (the chapter's seeds first) with the paper's seeds, or twice the seeds given
    (at least 6) otherwise."""
    data = load_dataset(dataset).take(n_train, n_test)
    grid = book_grid(seeds, l1, classes, epochs, steps)
    many = MANY if seeds is None else max(6, 2 * len(grid.seeds))
    return SeedStudy(data, grid, results_dir, many=many, device=device, progress=progress, threads=threads)


class SeedStudy(Study):
    """The chapter's own runs and, through the same cache, the book's study (``book``) and the first look's
    (``look``); ``base``: the grid of the one configuration (first lambda, largest C)."""

    def __init__(self, data: Dataset, grid: Grid, cache=None, *, many: int = MANY, **options):
        base = dataclasses.replace(grid, l1=grid.l1[:1], n_classes=(max(grid.n_classes),))
        book = BookStudy(data, grid)  # its runs and the first look's, borrowed: one cache entry for both
        look = FirstLookStudy(data, dataclasses.replace(base, seeds=grid.seeds[:FIRST_LOOK_SEEDS]))
        specs = {"many": RunSpec(dataclasses.replace(base, seeds=extra_seeds(grid.seeds, many))),
                 "order only": RunSpec(dataclasses.replace(base, init_seed=grid.seeds[0])),
                 "init only": RunSpec(dataclasses.replace(base, order_seed=grid.seeds[0])),
                 "paper": book.specs["paper"], "floor": book.specs["floor"],
                 "width": look.specs["width (depth 1)/0"], "depth": look.specs[f"depth (width {DEPTH_WIDTH})/0"]}
        super().__init__(data, specs, cache, **options)
        self.grid, self.base, self.look_seeds = grid, base, look.base.seeds

    @property
    def n_test(self) -> int:
        return len(self.data.y_test)

    def summary(self) -> str:
        b, n = self.base, len(self.data.y_train)
        many = self.specs["many"].grid
        return (f"Data set **{self.data.name}** ({n:,} training / {self.n_test:,} test images), "
                f"{b.for_data(n).epochs} epochs. One configuration (λ = {fmt_l1(b.l1[0])}, C = {b.n_classes[0]}) "
                f"with {len(many.seeds)} seeds; the paper grid ({len(self.grid.seeds)} seeds x {len(self.grid.l1)} "
                f"lambdas x {len(self.grid.n_classes)} class counts); at the one configuration, the seeds varying only "
                f"the data order, only the initialisation, and one-ulp twins; the first look's widths and depths "
                f"({len(self.look_seeds)} seeds). The scalar trimmed: the {OUTPUT_NAMES[OUTPUT]}.")

    # ------------------------------------------------------------------------------------ predictions

    def logits(self, run, l1: float, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every seed's logits on the test images (S, T, C) in float64, and the labels (T,), for (l1, C)."""
        keep, labels = class_labels(self.data.y_test, c, run.grid.class_mode)
        params = {k: v.double() for k, v in run.stack(l1, c).items()}
        return forward(params, self.data.x_test[keep].double()), labels[keep]

    def _base_logits(self, name: str = "many"):
        return self.logits(self.run(name), self.base.l1[0], self.base.n_classes[0])

    def regime(self) -> dict:
        """The regime of the many-seed configuration: SGD steps (and the paper's), mean test accuracy and mean
        distance of the parameters from init (|theta - theta_0| / |theta_0|)."""
        run = self.run("many")
        logits, labels = self._base_logits()
        lam, c = self.base.l1[0], self.base.n_classes[0]
        init, final = run.stack(lam, c, "init"), run.stack(lam, c)
        distance = torch.sqrt(sum(((final[k] - init[k]).double() ** 2).flatten(1).sum(1) for k in init)
                              / sum((init[k].double() ** 2).flatten(1).sum(1) for k in init))
        n = len(self.data.y_train)
        return {"steps": self.base.for_data(n).epochs * steps_per_epoch(n, self.base.batch_size),
                "paper_steps": PAPER_STEPS, "accuracy": float((logits.argmax(-1) == labels).double().mean()),
                "distance": float(distance.mean())}

    def majority(self) -> float:
        """The majority class's share of the test images at the one configuration's C (a classifier's null)."""
        labels = self._labels(self.base.n_classes[0])
        return float(np.bincount(labels).max() / len(labels))

    # --------------------------------------------------------------------------------- how many seeds

    def curve_draws(self, *, null: bool = False) -> pd.DataFrame:
        """``seeds_curve`` of the many-seed configuration on ``OUTPUT`` (``null``: each image's values shuffled
        across the seeds first, so that the seeds are exchangeable: the curves of seeds that do not differ)."""
        def compute():
            logits, labels = self._base_logits()
            values = scalar_outputs(logits, labels, OUTPUT)
            ms = curve_ms(len(values), len(self.grid.seeds))
            return seeds_curve(null_values(values) if null else values, ms=ms, n_draws=N_DRAWS, n_boot=N_BOOT)
        return self.table("seed-curve-null" if null else "seed-curve", compute, runs=("many",))

    def curves(self) -> pd.DataFrame:
        """The curves with intervals (``curve_estimates``), the exchangeable-seeds null beside each (``null``)."""
        s = len(self.specs["many"].grid.seeds)
        found = curve_estimates(self.curve_draws(), s)
        null = curve_estimates(self.curve_draws(null=True), s)[["kind", "m", "value"]].rename(columns={"value": "null"})
        return found.merge(null, on=["kind", "m"])

    def resolution(self) -> dict:
        """What the test set can resolve: the KS bound delta at half the test images and the grid's step."""
        half = self.n_test // 2
        return {"n_half": half, "delta": bound(half), "step": RESOLUTION}

    def outputs_compared(self) -> pd.DataFrame:
        """Each seed of the many-seed configuration against the mixture of all the others, on each scalar
        output (``ovr``: the mean over classes of the per-class level): one row per seed and output."""
        def compute():
            logits, labels = self._base_logits()
            rows = []
            for output in ("margin", "top2", "ovr"):
                values = scalar_outputs(logits, labels, output)
                if output == "ovr":  # (S, T, C): one level per class, averaged
                    found = torch.stack([alpha_hats_loo(values[..., c], n_boot=N_BOOT)
                                         for c in range(values.shape[-1])]).mean(0)
                else:
                    found = alpha_hats_loo(values, n_boot=N_BOOT)
                rows += [{"output": output, "seed": int(seed), "alpha_hat": float(v)}
                         for seed, v in zip(self.specs["many"].grid.seeds, found)]
            return pd.DataFrame(rows)
        return self.table("seed-outputs", compute, runs=("many",))

    # ---------------------------------------------------------------------------------- expressiveness

    def setting_replicates(self) -> pd.DataFrame:
        """``setting_metrics`` of every configuration of the paper grid: one row per (l1, n_classes, metric),
        its replicates in columns r0, r1, ... (everything, each seed left out, each image block left out)."""
        def compute():
            run, rows = self.run("paper"), []
            for lam in run.grid.l1:
                for c in run.grid.n_classes:
                    logits, labels = self.logits(run, lam, c)
                    found = setting_metrics(logits, labels, output=OUTPUT, n_boot=SETTING_BOOT, n_blocks=IMAGE_BLOCKS)
                    rows += [{"l1": float(lam), "n_classes": int(c), "metric": m, **{f"r{i}": v for i, v in enumerate(r)}}
                             for m, r in found.items()]
            return pd.DataFrame(rows)
        return self.table("seed-settings", compute, runs=("paper",))

    def setting_nulls(self) -> pd.DataFrame:
        """The null of each setting summary: accuracy, the majority class's share; churn, two networks of the
        seeds' accuracies whose errors are independent and spread evenly over the wrong classes; ECE, 0 (a
        calibrated network); alpha-hat, 0 (the seeds one distribution). One row per (l1, n_classes, metric)."""
        def compute():
            run, rows = self.run("paper"), []
            for lam in run.grid.l1:
                for c in run.grid.n_classes:
                    logits, labels = self.logits(run, lam, c)
                    acc = (logits.argmax(-1) == labels).double().mean(-1).numpy()
                    i, j = np.triu_indices(len(acc), 1)
                    agree = acc[i] * acc[j] + (1 - acc[i]) * (1 - acc[j]) / (c - 1)
                    nulls = {"accuracy": np.bincount(labels.numpy()).max() / len(labels),
                             "churn": float((1 - agree).mean()), "ece": 0.0, "alpha_hat": 0.0}
                    rows += [{"l1": float(lam), "n_classes": int(c), "metric": m, "null": v} for m, v in nulls.items()]
            return pd.DataFrame(rows)
        return self.table("seed-setting-nulls", compute, runs=("paper",))

    # ------------------------------------------------------------------------------------------- laws

    def laws(self) -> pd.DataFrame:
        """Per configuration of the paper grid, and for the many-seed configuration (``setting`` "many"): test
        error, disagreement, the disagreement equality's gap (disagreement - error, seeds and images
        resampled), and Jordan's predicted and observed seed spread of accuracy with the ratio's interval."""
        def compute():
            run = self.run("paper")
            cases = [("grid", run, lam, c) for lam in run.grid.l1 for c in run.grid.n_classes]
            cases.append(("many", self.run("many"), self.base.l1[0], self.base.n_classes[0]))
            return pd.DataFrame([{"setting": setting, "l1": float(lam), "n_classes": int(c),
                                  **laws_row(*self.logits(r, lam, c))} for setting, r, lam, c in cases])
        return self.table("seed-laws", compute, runs=("many", "paper"))

    def sources(self) -> pd.DataFrame:
        """Diversity by source of randomness at the one configuration, for the chapter's seeds: disagreement
        between seeds (both seeds set, the paper; order only; init only) and between each seed and its one-ulp
        twin, each with its interval (seeds and images resampled), and its difference from "both"."""
        def compute():
            lam, c = self.base.l1[0], self.base.n_classes[0]
            seeds = list(self.grid.seeds)
            both = self.logits(self.run("paper"), lam, c)[0].argmax(-1).numpy()
            floor = self.run("floor")
            twin = self.logits(floor.part(perturb_ulp=1), lam, c)[0].argmax(-1).numpy()
            per_source = {"both (the paper)": both, "order only": self._base_logits("order only")[0].argmax(-1).numpy(),
                          "init only": self._base_logits("init only")[0].argmax(-1).numpy()}
            s, t = both.shape

            def pairs(pred):
                return (pred[:, None] != pred[None]).astype(float)

            reference = pairs(both)
            arrays = {k: pairs(v) for k, v in per_source.items()}
            arrays["one-ulp twin"] = twin_disagreement(both, twin)
            rows = []
            for name, d in arrays.items():
                def mean(keep, images, d=d):
                    if d.ndim == 2:
                        return d[np.ix_(keep, images)].mean()
                    sub = d[np.ix_(keep, keep, images)].mean(-1)
                    return sub[np.triu_indices(len(sub), 1)].mean()

                def minus_both(keep, images, mean=mean):
                    sub = reference[np.ix_(keep, keep, images)].mean(-1)
                    return mean(keep, images) - sub[np.triu_indices(len(sub), 1)].mean()

                e = seed_image_estimate(mean, s, t, n_blocks=IMAGE_BLOCKS)
                diff = seed_image_estimate(minus_both, s, t, n_blocks=IMAGE_BLOCKS)
                acc = per_source.get(name)
                rows.append({"source": name, "n_seeds": len(seeds), "value": e.value, "low": e.low, "high": e.high,
                             "minus_both": diff.value, "minus_both_low": diff.low, "minus_both_high": diff.high,
                             "accuracy_sd": float(np.nan if acc is None else (acc == self._labels(c)).mean(1).std(ddof=1))})
            return pd.DataFrame(rows)
        return self.table("seed-sources", compute, runs=("order only", "init only", "paper", "floor"))

    def _labels(self, c: int) -> np.ndarray:
        keep, labels = class_labels(self.data.y_test, c, self.base.class_mode)
        return labels[keep].numpy()

    # ----------------------------------------------------------------------------------------- kernels

    def kernels(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Kernels of the first look's widths on the first ``KERNEL_PROBE`` test images. ``pairs``: the
        alignment of every seed pair's NTK and conjugate kernel before and after training, on every probe
        image (block -1) and with each of ``KERNEL_BLOCKS`` blocks left out. ``moved``: per seed, how far each
        kernel moved from init (``kernel_movement``) beside the parameters' distance from init."""
        def compute():
            rows, moved = [], []
            run = self.run("width")
            lam, c = self.base.l1[0], self.base.n_classes[0]
            x = self.data.x_test[:KERNEL_PROBE].double()
            block = np.arange(len(x)) * KERNEL_BLOCKS // len(x)
            for part in run.parts:
                seeds = part.grid.seeds
                kernels = {}
                for record in ("init", "final"):
                    stacked = part.stack(lam, c, record)
                    for i, seed in enumerate(seeds):
                        params = {k: v[i].double() for k, v in stacked.items()}
                        kernels[("ntk", record, i)] = empirical_ntk(params, x)
                        kernels[("ck", record, i)] = conjugate_kernel(params, x)
                init, final = part.stack(lam, c, "init"), part.stack(lam, c, "final")
                for kernel in ("ntk", "ck"):
                    for i, seed in enumerate(seeds):
                        distance = torch.sqrt(sum(((final[k][i] - init[k][i]).double() ** 2).sum() for k in init)
                                              / sum((init[k][i].double() ** 2).sum() for k in init))
                        moved.append({"hidden": part.grid.hidden, "kernel": kernel, "seed": seed,
                                      "movement": kernel_movement(kernels[(kernel, "init", i)], kernels[(kernel, "final", i)]),
                                      "distance": float(distance)})
                    for record in ("init", "final"):
                        for i in range(len(seeds)):
                            for j in range(i + 1, len(seeds)):
                                a, b = kernels[(kernel, record, i)], kernels[(kernel, record, j)]
                                for k in (-1, *range(KERNEL_BLOCKS)):
                                    keep = torch.as_tensor(block != k)
                                    rows.append({"hidden": part.grid.hidden, "kernel": kernel, "record": record,
                                                 "seed_a": seeds[i], "seed_b": seeds[j], "block": k,
                                                 "alignment": kernel_alignment(a[keep][:, keep], b[keep][:, keep])})
            return pd.concat([pd.DataFrame(rows).assign(table="pairs"), pd.DataFrame(moved).assign(table="moved")],
                             ignore_index=True)
        both = self.table("seed-kernels", compute, runs=("width",))
        pairs = both[both.table == "pairs"].drop(columns=["table", "movement", "distance", "seed"]).reset_index(drop=True)
        moved = both[both.table == "moved"][["hidden", "kernel", "seed", "movement", "distance"]].reset_index(drop=True)
        pairs["block"], pairs["seed_a"], pairs["seed_b"] = (pairs[k].astype(int) for k in ("block", "seed_a", "seed_b"))
        return pairs, moved.assign(seed=moved.seed.astype(int))

    # ----------------------------------------------------------------------------------- PCA surrogate

    def surrogates(self) -> pd.DataFrame:
        """``pca_surrogate`` of every hidden layer (after ReLU) of the first look's deepest network, seed by
        seed: fitted on the first ``SURROGATE_TRAIN`` training images, scored on every test image. One row per
        (seed, layer, k), with ``needed_knn`` / ``needed_ncc``: the seed's smallest k within one standard error
        of its best (``needed_k``)."""
        def compute():
            run = self.run("depth")
            part = run.part(depth=max(DEPTHS))
            lam, c = self.base.l1[0], self.base.n_classes[0]
            kept, train_labels = class_labels(self.data.y_train[:SURROGATE_TRAIN], c, part.grid.class_mode)
            keep, test_labels = class_labels(self.data.y_test, c, part.grid.class_mode)
            x_train, x_test = self.data.x_train[:SURROGATE_TRAIN][kept].double(), self.data.x_test[keep].double()
            train_labels, test_labels = train_labels[kept], test_labels[keep]
            stacked = part.stack(lam, c)
            tables = []
            ks = [k for k in SURROGATE_KS if k <= min(part.grid.hidden, len(x_train))]
            for i, seed in enumerate(part.grid.seeds):
                params = {k: v[i].double() for k, v in stacked.items()}
                h_train, h_test = preactivations(params, x_train)[:-1], preactivations(params, x_test)[:-1]
                for layer, (a, b) in enumerate(zip(h_train, h_test), start=1):
                    table = pca_surrogate(torch.relu(a), train_labels, torch.relu(b), test_labels, ks)
                    tables.append(table.assign(seed=seed, layer=layer, needed_knn=needed_k(table, "knn", len(b)),
                                               needed_ncc=needed_k(table, "ncc", len(b))))
            return pd.concat(tables, ignore_index=True)
        return self.table("seed-surrogates", compute, runs=("depth",))


def laws_row(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """The laws of seed variance for the seeds of one setting, logits (S, T, C) and labels (T,): ``n_seeds``,
    ``error``, ``disagreement`` (mean over seed pairs), ``gap`` (disagreement - error, ``gde_gap``, with its
    multibootstrap interval ``gap_low`` / ``gap_high``), ``predicted_sd`` and ``observed_sd`` (``jordan_spread``)
    and their ``ratio`` with its interval (seeds and image blocks resampled). NaN logits, an empty test set or
    one seed: one clear error (``check_seed_logits``)."""
    logits, labels = check_seed_logits(logits, labels, "the laws of seed variance")
    pred = logits.argmax(-1).numpy()
    correct = (pred == labels.numpy()).astype(float)
    gap = multibootstrap(gde_gap(pred, labels.numpy()))
    s, t = correct.shape
    differ = (pred[:, None] != pred[None]).astype(float)
    predicted, observed = jordan_spread(correct)

    def ratio(keep, images):
        p, o = jordan_spread(correct[np.ix_(keep, images)])
        return o / p if p > 0 else np.nan

    e = seed_image_estimate(ratio, s, t, n_blocks=IMAGE_BLOCKS)
    return {"n_seeds": s, "error": 1 - correct.mean(), "disagreement": differ[np.triu_indices(s, 1)].mean(),
            "gap": gap.value, "gap_low": gap.low, "gap_high": gap.high, "predicted_sd": predicted,
            "observed_sd": observed, "ratio": e.value, "ratio_low": e.low, "ratio_high": e.high}


def curve_ms(n_seeds: int, paper_seeds: int) -> list[int]:
    """The M of the how-many-seeds curves for ``n_seeds`` seeds: doubling up to S - 1, and the paper's count."""
    return sorted(set(doubling(n_seeds - 1)) | ({paper_seeds} if paper_seeds < n_seeds else set()))


def null_values(values: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """Each image's values shuffled across the seeds (S, T): seeds that are exchangeable, the curves' null."""
    g = torch.Generator().manual_seed(seed)
    return values.gather(0, torch.argsort(torch.rand(values.shape, generator=g), 0))


OUTPUT_NAMES = {"margin": "true-class margin", "top2": "top-2 logit gap (largest logit minus the second)",
                "ovr": "one-vs-rest gap per class"}


def seed_estimate_of(values: np.ndarray):
    """The mean of per-seed values with the delete-one-seed jackknife interval."""
    values = np.asarray(values, dtype=float)
    return seed_estimate(lambda keep: values[keep].mean(), len(values))

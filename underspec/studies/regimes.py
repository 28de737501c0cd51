"""Training regimes: this build's paper grid, a sweep's results, or a committed study of ``results/``, each
with the tables its verdicts are decided on, the facts a reader needs beside a verdict, and the verdicts from
the one set of claim rules (``claims``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UnderspecError
from ..files import open_regular, sha256
from ..sweeps.config import SweepConfig  # the files a sweep writes (they import nothing above training)
from ..sweeps.store import load_results
from ..text import fmt_l1, interval
from ..training.data import load_dataset
from ..training.grid import Grid
from . import claims
from .degenerate import dataset_majority, degenerate, majority_accuracy
from .tables import cached

PAPER_TRAIN = 60_000  # the full MNIST training set the paper trained on
PAPER_STEPS = 50 * -(-PAPER_TRAIN // 64)  # 50 epochs of 938 steps
FULL_TRAIN = {"mnist": 60_000, "fashion-mnist": 60_000}  # training images of the full data sets
TARGETS = ("params", "grads", "displacement")  # what a regime's compare table holds and its verdicts read
STUDIES = {  # the committed studies of results/ (scripts/results.py), as the study chapter names them
    "mnist5k-20-seeds": "(a′) mnist-5k, 20 seeds",
    "mnist5k-paper-steps": "(b) mnist-5k, the paper's steps",
    "fashion-mnist-paper": "(c) Fashion-MNIST, full size",
    "mnist-paper": "(d) MNIST, full size (the paper's data; needs internet)",
}
NO_REPRESENTATIONS = ("this regime's tables hold no CKA table (a study made before cka.parquet was kept: "
                      "run it again with scripts/results.py)")


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


@dataclass
class Regime:
    """One training regime's tables: ``metrics`` (compare, every pair, both nulls), ``members``
    (member_table), ``shifts`` (shift_table or None), and where the regime has them ``cka`` (``cka_table``:
    every configuration's seed pairs with their baselines and probe blocks), ``mechanism``
    (``book.gradient_mechanism``) and ``twins`` (the rounding floor: ``rounding.twin_pairs``)."""

    name: str
    dataset: str
    n_train: int
    grid: Grid  # with its epochs as trained (a steps budget resolved)
    metrics: pd.DataFrame
    members: pd.DataFrame
    shifts: pd.DataFrame | None
    majority: dict[int, float] | None
    cka: pd.DataFrame | None = None
    mechanism: pd.DataFrame | None = None
    twins: pd.DataFrame | None = None
    cache: Path | None = None  # where its verdicts are cached (under the name ``stem``), if anywhere
    stem: str | None = None

    @property
    def steps(self) -> int:
        return self.grid.epochs * steps_per_epoch(self.n_train, self.grid.batch_size)

    @property
    def degenerate(self) -> pd.DataFrame:
        return degenerate(self.members, self.majority)

    def verdicts(self) -> pd.DataFrame:
        """``claims.check_all`` on this regime's tables; without a CKA table, the representations claim is
        "not testable with this data" (cached under the regime's ``stem``)."""
        return cached(self.cache if self.stem else None, self.stem or "", self._verdicts)

    def _verdicts(self) -> pd.DataFrame:
        out = claims.check_all(self.metrics, cka=self.cka, hidden=self.grid.hidden)
        if self.cka is None:
            out.loc[len(out)] = {"claim": "Representations look alike across seeds", "verdict": claims.NOT_TESTABLE,
                                 "statistic": "CKA between seeds minus the strongest baseline", "value": np.nan,
                                 "low": np.nan, "high": np.nan, "finding": NO_REPRESENTATIONS, "rule": "",
                                 "paper": ""}
        return out

    def facts(self) -> dict[str, str]:
        """What a reader needs beside a verdict: the data, the training, the accuracy reached, the distance
        from initialisation and the dead units (means over the networks of the grid)."""
        m = self.members
        seeds = m.seed.nunique() if not m.empty else len(self.grid.seeds)
        head = {"data set": self.dataset, "training images": f"{self.n_train:,}", "seeds": f"{seeds}",
                "SGD steps": f"{self.steps:,} ({self.steps / PAPER_STEPS:.0%} of the paper's {PAPER_STEPS:,})"}
        if m.empty:
            return {**head, "member table": "not in these results"}
        corner = m[(m.l1 == m.l1.min()) & (m.n_classes == m.n_classes.max())]
        dead = m.dead_units.mean()
        cells = self.degenerate
        return {
            **head,
            f"test accuracy at λ = {fmt_l1(corner.l1.min())}, C = {corner.n_classes.max()}": f"{corner.test_acc.mean():.3f}",
            "test accuracy, mean over the grid": f"{m.test_acc.mean():.3f}",
            "distance from init ‖W1 − W1₀‖ / ‖W1₀‖ (mean)": f"{m.rel_change.mean():.2f}",
            "cosine of each unit to its init (mean)": f"{m.init_cosine.mean():.2f}",
            f"dead units per network (mean, of {self.grid.hidden})": f"{dead:.1f}",
            "degenerate networks (at the majority-class accuracy)":
                "unknown" if self.majority is None else f"{int(cells.n.sum())} of {len(m)}",
        }

    def label(self) -> str:
        """One line: data set, training images, SGD steps against the paper's, accuracy at lambda = 0 and the
        largest C (mean over seeds)."""
        return regime_label(self)


def regime_label(regime) -> str:
    """``Regime.label`` of anything with ``dataset``, ``n_train``, ``steps`` and ``members`` (a ``BookStudy``
    too)."""
    m = regime.members
    text = (f"{regime.dataset}, {regime.n_train:,} training images, {regime.steps:,} of the paper's "
            f"{PAPER_STEPS:,} SGD steps")
    if m.empty:
        return text
    corner = m[(m.l1 == m.l1.min()) & (m.n_classes == m.n_classes.max())]
    return (text + f", test accuracy {corner.test_acc.mean():.3f} at λ = {fmt_l1(corner.l1.min())}, C = "
            f"{corner.n_classes.max()}")


def live_regime(study) -> Regime:
    """This build's paper grid (a ``BookStudy``) as a regime: its compare, member, shift, CKA and mechanism
    tables and its twins; its verdicts are the study's own (``BookStudy.verdicts``), cached under the same name."""
    grid = study.grid.for_data(study.n_train)
    name = f"(a) {study.data.name}, {len(grid.seeds)} seeds, this build"
    return Regime(name, study.data.name, study.n_train, grid, study.compare_table(), study.members, study.shifts(),
                  majority_accuracy(study.data, grid.n_classes, grid.class_mode), study.cka_grid(),
                  study.gradient_mechanism(), study.rounding_floor(), study.cache, study.verdicts_stem())


def sweep_regime(sweep_dir: str | Path) -> Regime:
    """The results of ``underspec sweep --out sweep_dir`` as a regime (its complete shards, with the derived
    tables ``scripts/results.py`` adds where they are there)."""
    results = load_results(sweep_dir)
    config = results.config
    data = load_dataset(config.dataset, root=config.data_root).take(config.n_train, config.n_test)
    grid = config.grid().for_data(len(data.y_train))
    members = results.tables.get("members", pd.DataFrame(columns=["seed", "l1", "n_classes", "test_acc"]))
    return Regime(f"(s) the sweep in {sweep_dir}", data.name, len(data.y_train), grid,
                  results.metrics[results.metrics.target.isin(TARGETS)], members, results.tables.get("shifts"),
                  majority_accuracy(data, grid.n_classes, grid.class_mode),
                  **{t: results.tables.get(t) for t in ("cka", "mechanism", "twins")})


def committed_regime(study: str, root: str | Path, cache: Path | None = None) -> Regime | None:
    """The committed study ``<root>/<study>`` (``results/``) as a regime, or None while its tables do not exist
    yet; its verdicts are cached under ``cache``, keyed by the content of its metrics table."""
    folder = Path(root) / study
    if not all((folder / f"{t}.parquet").is_file() for t in ("metrics", "members")):
        return None
    config = SweepConfig.from_yaml(folder / "config.yaml")
    n_train = config.n_train or (len(load_dataset("mnist-5k").y_train) if config.dataset == "mnist-5k"
                                 else FULL_TRAIN[config.dataset])
    shifts = read_table(folder / "shifts.parquet") if (folder / "shifts.parquet").is_file() else None
    metrics = read_table(folder / "metrics.parquet")
    grid = config.grid().for_data(n_train)
    majority = (majority_accuracy(load_dataset("mnist-5k"), grid.n_classes) if config.dataset == "mnist-5k"
                else dataset_majority(config.dataset, grid.n_classes, cache))
    content = "".join(sha256(folder / f"{t}.parquet")[:12] for t in ("metrics", "cka") if (folder / f"{t}.parquet").is_file())
    optional = {t: read_table(folder / f"{t}.parquet") if (folder / f"{t}.parquet").is_file() else None
                for t in ("cka", "mechanism", "twins")}
    return Regime(STUDIES.get(study, study), config.dataset, n_train, grid,
                  metrics[metrics.target.isin(TARGETS)], read_table(folder / "members.parquet"), shifts,
                  majority, **optional, cache=cache, stem=f"study-{study}-{content}-verdicts")


def read_table(path: Path) -> pd.DataFrame:
    """A committed table; one line naming the file where it is not a Parquet table (a Git LFS pointer that was
    never pulled, a damaged file, a link)."""
    try:
        with open_regular(path) as f:
            head = f.read(64)
        if head.startswith(b"version https://git-lfs"):
            raise UnderspecError(f"{path} is a Git LFS pointer, not the table: run `git lfs pull`")
        return pd.read_parquet(path)
    except UnderspecError:  # the pointer's own line (an UnderspecError is a ValueError too)
        raise
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise UnderspecError(f"{path} is not a readable Parquet table ({type(exc).__name__}): restore it from "
                             "git, or run the study again") from None


def not_yet_run(study: str) -> str:
    return f"not yet run: `python scripts/results.py {study}`"


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as a reader's table: claim, verdict, statistic, and its estimate with the 95% interval
    (seeds resampled, delete-one-seed jackknife)."""
    return pd.DataFrame({"claim": verdicts.claim, "verdict": verdicts.verdict, "statistic": verdicts.statistic,
                         "estimate [95% interval]": [interval(v, lo, hi) for v, lo, hi in
                                                     zip(verdicts.value, verdicts.low, verdicts.high)]})

"""The book's shared runs and tables, and the things every chapter shows the same way: its parameters cell and
its "What was run" banner.

Every chapter calls ``book_runs`` with its parameters, so all chapters train the same grids once and reuse
them from the cache (``underspec.load_or_train``). Three grids, all on the same data set and seeds, trained by
the first call that finds them missing and loaded only when a chapter first asks for one (memory-mapped from
the cache, so a chapter holds in memory only the records it reads):

- ``paper``: the paper's grid (seeds x lambdas x C), final parameters and learning curves only;
- ``detail``: the same seeds and lambdas for a few class counts, with every epoch's parameters and the
  first-layer outputs on probe images (for the chapters that follow training over time);
- ``subset``: the paper's grid with C meaning "only the digits 0..C-1" (``class_mode="subset"``), the
  classes balanced, for "model knowledge" without the class imbalance of the paper's relabelling.

The tables that several pages read (the all-pairs ``compare`` table with both nulls, the CKA inputs, the
member and shift tables) are computed once per run and cached as Parquet beside the runs
(``<results_dir>/tables``, keyed by the run and by the version of the metrics code): ``study_verdicts`` is
the one call behind the verdicts of the introduction and of the study chapter, so both show the same rules
on the same table. ``Regime`` holds one training regime's tables (this build's, or a committed study's in
``results/``, read by ``committed_regime``), and the few facts every verdict is shown beside.

``PARAMETERS`` is the source text of every chapter's papermill parameters cell (a chapter may add lines of
its own after it: ``EXTRA_PARAMETERS``); ``tests/test_book.py`` holds each chapter's cell equal to
``parameters_cell(chapter)``, so the chapters cannot drift apart. ``what_was_run`` is the banner.

This file chooses grids and tables and calls the package; the metrics, nulls and rules are the package's.
"""


import ctypes
import ctypes.util
import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown

import underspec
from underspec.errors import UnderspecError
from underspec.files import atomic_write
from underspec.metrics.layers import LAYER_METRICS, layer_similarity
from underspec.metrics.representations import cka_baselines, cka_over_training
from underspec.metrics.seed_similarity import seed_similarity, similarity_estimates
from underspec.metrics.uncertainty import estimate, pair_array
from underspec.metrics.shift import shift_table
from underspec.report import claims
from underspec.report.pictures import SETTING_METRICS
from underspec.report.style import fmt_l1
from underspec.training.cache import run_key
from underspec.training.grid import PAPER_CLASSES, PAPER_L1, PAPER_SEEDS

def return_freed_memory_to_the_system() -> None:
    """Large blocks (1 MiB and up) from their own memory maps, given back to the system when freed.

    glibc raises its threshold for that after the first large block is freed, so the tens of megabytes a wide
    layer's metrics allocate and free again afterwards stay in the process: a chapter's resident memory grows
    with every wide network it measures. A fixed threshold (``mallopt(M_MMAP_THRESHOLD)``) keeps it at what is
    in use. Nothing to do on a C library without ``mallopt``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(ctypes.c_int(-3), ctypes.c_int(1 << 20))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError, TypeError):
        pass


return_freed_memory_to_the_system()

DETAIL_CLASSES = (2, 5, 10)  # the class counts that get per-epoch records
PROBE_SIZE = 500  # test images whose first-layer outputs are recorded every epoch
TARGETS = ("params", "grads", "displacement")  # what the study table compares
NULLS = ("untrained", "structured")  # the nulls beside every metric (underspec.metrics.chance)
FAR = "fashion-mnist"  # the far shift of networks trained on MNIST digits
# A network is degenerate when its test accuracy is within this of always answering the most frequent class.
DEGENERATE_MARGIN = 0.02
PAPER = underspec.Grid.paper()
PAPER_TRAIN = 60_000  # the full MNIST training set the paper trained on
FULL_TRAIN = {"mnist": 60_000, "fashion-mnist": 60_000}  # training images of the full data sets
STUDIES = {  # the committed studies of results/ (scripts/results.py), as the study chapter names them
    "mnist5k-20-seeds": "(a′) mnist-5k, 20 seeds",
    "mnist5k-paper-steps": "(b) mnist-5k, the paper's steps",
    "fashion-mnist-paper": "(c) Fashion-MNIST, full size",
}


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


PAPER_STEPS = PAPER.epochs * steps_per_epoch(PAPER_TRAIN, PAPER.batch_size)  # 50 epochs of 938 steps

# The parameters cell of every chapter (papermill injects new values after it). Explanations stand on their
# own comment lines: papermill reads a trailing comment as help text and cannot parse one that holds "=".
PARAMETERS = '''\
# Parameters (papermill): the defaults are the paper's protocol on the offline MNIST sample.
# dataset: "mnist-5k" (offline sample of real MNIST digits), "mnist" for full MNIST (downloaded once), or
# "fashion-mnist" (full size; offline where Debian's dataset-fashion-mnist is installed)
dataset = "mnist-5k"
# seeds, l1, classes: None means the paper's values (its seven seeds, its six L1 strengths, C from 2 to 10);
# a list, or a string such as "[0, 42]", "0-6" or "0 0.01"
seeds = None
l1 = None
classes = None
epochs = 50
# steps: None trains for epochs; a number of SGD steps (the paper made 46900) sets the epochs instead
steps = None
# n_train, n_test: None uses every image; a number keeps the first n images (quick runs)
n_train = None
n_test = None
# device: "cpu", "cuda" or "auto"
device = "auto"
# results_dir: where trained runs are cached, shared by all chapters
results_dir = "../runs/cache"'''

# Parameters that only one chapter has, appended to its cell after PARAMETERS.
EXTRA_PARAMETERS = {
    "study": '''\
# sweep_dir: a results folder of `underspec sweep` whose metrics this chapter reads instead of training here
sweep_dir = None
# studies_dir: the committed studies (scripts/results.py), shown beside this build when their tables exist
studies_dir = "../results"''',
}


def parameters_cell(chapter: str) -> str:
    """The exact source of ``chapter``'s parameters cell: ``PARAMETERS`` plus the chapter's own lines."""
    extra = EXTRA_PARAMETERS.get(chapter)
    return PARAMETERS + (f"\n{extra}" if extra else "")


def _map_from_disk() -> None:
    """Cached runs are read memory-mapped (torch.load(mmap=True)): a chapter then holds in memory only the
    records it touches, not every epoch of every network (the per-epoch records are over 500 MB)."""
    try:
        from torch.utils.serialization import config
    except ImportError:  # an older torch: runs are read whole
        return
    config.load.mmap = True


class BookRuns:
    """The book's runs for one set of parameters: ``data``, and ``paper``, ``detail`` and ``subset``, each
    loaded (or trained and cached) on first use."""

    def __init__(self, data: underspec.Dataset, grid: underspec.Grid, cache: Path | None, device: str,
                 progress: bool):
        self.data, self.grid, self.cache, self.device, self.progress = data, grid, cache, device, progress
        detail_classes = tuple(c for c in grid.n_classes if c in DETAIL_CLASSES) or (max(grid.n_classes),)
        effective = grid.for_data(len(data.y_train))  # a steps budget as whole epochs (subset mode needs epochs)
        self.specs = {
            "paper": (grid, {}),
            "detail": (dataclasses.replace(grid, n_classes=detail_classes),
                       {"snapshots": True, "embeddings": True, "probe_size": PROBE_SIZE}),
            "subset": (dataclasses.replace(effective, steps=None, class_mode="subset"), {}),
        }

    def _run(self, name: str) -> underspec.Run:
        grid, options = self.specs[name]
        _map_from_disk()
        return underspec.load_or_train(grid, self.data, cache_dir=self.cache, device=self.device,
                                       progress=self.progress, **options)

    @functools.cached_property
    def paper(self) -> underspec.Run:
        return self._run("paper")

    @functools.cached_property
    def detail(self) -> underspec.Run:
        return self._run("detail")

    @functools.cached_property
    def subset(self) -> underspec.Run:
        return self._run("subset")

    def ensure(self) -> None:
        """Train and cache every run that the cache does not hold yet (without keeping it: chapters map it from
        disk when they first use it), so that a chapter, or Binder's postBuild, finds them all trained."""
        if self.cache is None:
            return
        for name in self.specs:
            if not (self.cache / self.key(name)).is_dir():
                self._run(name)

    def key(self, name: str) -> str:
        """The cache key of run ``name`` (its folder under ``results_dir``), known without loading it."""
        grid, options = self.specs[name]
        return run_key(grid, self.data, **options)

    @property
    def n_train(self) -> int:
        return len(self.data.y_train)

    @property
    def dataset(self) -> str:
        return self.data.name

    @functools.cached_property
    def members(self) -> pd.DataFrame:
        """``member_table`` of the paper grid (cached beside the runs)."""
        return member_table(self)

    @property
    def epochs(self) -> int:
        return self.grid.for_data(self.n_train).epochs

    @property
    def steps(self) -> int:
        """The SGD steps every network of the paper grid made."""
        return self.epochs * steps_per_epoch(self.n_train, self.grid.batch_size)

    def summary(self) -> str:
        """One sentence that says what was run (shown on every page)."""
        p, d = self.grid, self.specs["detail"][0]
        return (f"Data set **{self.data.name}** ({self.n_train:,} training / {len(self.data.y_test):,} test images). "
                f"Paper grid: {len(p.seeds)} seeds x {len(p.l1)} lambdas x {len(p.n_classes)} class counts = "
                f"{len(p)} networks, {self.epochs} epochs = {self.steps:,} SGD steps (the paper: {PAPER_STEPS:,} on "
                f"{PAPER_TRAIN:,} images). Per-epoch records: C in {list(d.n_classes)}, {len(d)} networks, "
                f"{min(PROBE_SIZE, len(self.data.y_test))} probe images.")


def what_was_run(runs: BookRuns | str) -> Markdown:
    """The banner at the top of every chapter: an admonition that says what was run (``runs.summary()``, or
    a sentence given as text, e.g. for a sweep's results). Show it with ``display``."""
    text = runs if isinstance(runs, str) else runs.summary()
    return Markdown(f"```{{admonition}} What was run for this page\n{text}\n```")


def book_runs(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50,
              n_train: int | None = None, n_test: int | None = None, device: str = "auto",
              results_dir: str | None = "../runs/cache", progress: bool = False, steps=None) -> BookRuns:
    """The book's runs for these parameters: trained once and cached (the first call trains what the cache
    lacks), each loaded, memory-mapped, when a chapter first uses it.

    ``None`` means the paper's value (seeds, lambdas, class counts). The values go to ``underspec.Grid`` as
    given, so the strings papermill passes (``"[0, 42]"``, ``"0-6"``, ``"0 0.01"``, ``"46900"``) read as
    lists and numbers. ``steps``: a budget of SGD steps instead of ``epochs``. ``n_train`` / ``n_test`` take
    the first images of the data set (quick runs). ``results_dir``: where runs and their tables are cached
    (shared by all chapters).
    """
    data = underspec.load_dataset(dataset).take(n_train, n_test)
    grid = underspec.Grid(PAPER_SEEDS if seeds is None else seeds, PAPER_L1 if l1 is None else l1,
                          PAPER_CLASSES if classes is None else classes, epochs=epochs, steps=steps)
    cache = Path(results_dir).resolve() if results_dir else None
    runs = BookRuns(data, grid, cache, device, progress)
    runs.ensure()
    return runs


# ------------------------------------------------------------------------------------ cached tables

def _tables_code() -> str:
    """A hash of the code behind the cached tables (the metrics and the claim rules): a table from older code is
    never served."""
    package = Path(underspec.__file__).parent
    files = sorted((package / "metrics").glob("*.py")) + [package / "report" / "claims.py"]
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]


def _cached(cache: Path | None, stem: str, compute) -> pd.DataFrame:
    """``compute()``, cached as ``<cache>/tables/<stem>-<code>.parquet`` (computed each time without a cache)."""
    if cache is None:
        return compute()
    path = cache / "tables" / f"{stem}-{_tables_code()}.parquet"
    if path.is_file():
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError):  # unreadable: derived data, so compute it again
            pass
    table = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    return table


def cached_table(runs: BookRuns, run: str, name: str, compute) -> pd.DataFrame:
    """``compute()``, a table of run ``run``, cached as ``<results_dir>/tables/<run key>-<name>-<code>.parquet``
    (no cache without a ``results_dir``)."""
    return _cached(runs.cache, f"{runs.key(run)}-{name}", compute)


def study_table(runs: BookRuns) -> pd.DataFrame:
    """The paper grid compared: every seed pair, configuration and target (``TARGETS``), with the untrained
    and the structured null (``NULLS``) and the metrics over units alive in both networks."""
    return cached_table(runs, "paper", "compare", lambda: underspec.compare(
        runs.paper, "all", targets=TARGETS, data=runs.data, null=NULLS))


def cka_cell(runs: BookRuns) -> tuple[float, int]:
    """The configuration whose representations the verdict compares: lambda = 0 (the grid's first), the
    largest C with per-epoch records."""
    grid = runs.specs["detail"][0]
    return grid.l1[0], max(grid.n_classes)


def study_cka(runs: BookRuns) -> tuple[pd.DataFrame, dict[str, float]]:
    """Linear CKA between every seed pair at the end of training (columns seed_a, seed_b, cka) at
    ``cka_cell``, and its three baselines (``cka_baselines``: untrained networks, the input's own PCA
    projection, networks trained for another C)."""
    lam, c = cka_cell(runs)

    def pairs():
        cka = cka_over_training(runs.detail, c, l1=lam)
        return cka[cka.epoch == cka.epoch.max()].reset_index(drop=True)

    def levels():
        found = cka_baselines(runs.detail, runs.data.x_test[runs.detail.probe_index], c, l1=lam)
        return pd.DataFrame({"baseline": list(found), "cka": list(found.values())})

    baselines = cached_table(runs, "detail", "cka-baselines", levels)
    return cached_table(runs, "detail", "cka-final", pairs), dict(zip(baselines.baseline, baselines.cka))


def _verdicts_stem(runs: BookRuns) -> str:
    return f"{runs.key('paper')}-{runs.key('detail')[-12:]}-verdicts"


def cka_table(runs: BookRuns, n_classes: int) -> pd.DataFrame:
    """``cka_over_training`` of the per-epoch run at ``n_classes``: every lambda, seed pair and epoch (cached)."""
    return cached_table(runs, "detail", f"cka-over-training-{n_classes}",
                        lambda: cka_over_training(runs.detail, n_classes))


def barrier_tables(runs: BookRuns, n_classes: int, *, n_align: int, n_points: int, keep_l1: float):
    """``barriers`` of the paper grid at ``n_classes`` for every lambda, cached: the table (one row per lambda,
    alignment and seed pair), the path positions ``t`` and, at ``keep_l1``, the curves {alignment: {"loss":
    (pairs, T), "acc": (pairs, T)}} (stored as a long table: alignment, pair, t, loss, acc)."""
    from underspec.metrics.predictions import barriers

    stem = f"barriers-{n_classes}-{n_align}-{n_points}-{keep_l1:g}"

    def compute():
        tables, paths = [], []
        for lam in runs.grid.l1:  # one lambda at a time: only the paths at keep_l1 are kept
            part = barriers(runs.paper, runs.data, n_classes, l1=lam, n_align=n_align, n_points=n_points)
            tables.append(part.table.assign(kind="barrier"))
            for (at, name), curve in part.curves.items():
                if at == keep_l1:
                    loss, acc = curve["loss"].numpy(), curve["acc"].numpy()
                    paths += [{"kind": "path", "alignment": name, "pair": i, "t": float(t), "loss": float(loss[i, j]),
                               "acc": float(acc[i, j])} for i in range(loss.shape[0]) for j, t in enumerate(part.t)]
        return pd.concat([*tables, pd.DataFrame(paths)], ignore_index=True)

    both = cached_table(runs, "paper", stem, compute)
    table = both[both.kind == "barrier"].dropna(axis=1, how="all").drop(columns="kind").reset_index(drop=True)
    table = table.astype({"seed_a": int, "seed_b": int})
    paths = both[both.kind == "path"]
    t = torch.tensor(sorted(paths.t.unique()))
    curves = {name: {key: torch.tensor(part.pivot(index="pair", columns="t", values=key).to_numpy())
                     for key in ("loss", "acc")} for name, part in paths.groupby("alignment", sort=False)}
    return table, t, curves


def study_verdicts(runs: BookRuns) -> pd.DataFrame:
    """Every claim of the paper judged by its rule (``claims.check_all``) on ``study_table`` and
    ``study_cka``: the one call behind the verdicts of the introduction and of the study chapter (cached
    beside the runs: the rules' fixed-similarity null alone holds about 0.3 GB while it is drawn)."""
    def compute():
        cka, baselines = study_cka(runs)
        return claims.check_all(study_table(runs), cka=cka, baselines=baselines, hidden=runs.grid.hidden)
    return _cached(runs.cache, _verdicts_stem(runs), compute)


def class_mode_verdicts(runs: BookRuns) -> pd.DataFrame:
    """The rules about trends in C (``pe_rises_with_c``, ``apc2_falls_with_c``) in both class modes: the
    paper's relabelling (``study_table``) and balanced classes (``subset_table``); columns mode, claim,
    verdict, statistic, value, low, high, finding (cached)."""
    def compute():
        rows = []
        for mode, table in (("relabel (the paper)", study_table(runs)), ("subset (balanced)", subset_table(runs))):
            for rule in (claims.pe_rises_with_c(table, hidden=runs.grid.hidden), claims.apc2_falls_with_c(table)):
                rows.append({"mode": mode, **rule.row()})
        return pd.DataFrame(rows)
    return _cached(runs.cache, f"{runs.key('paper')}-{runs.key('subset')[-12:]}-class-modes", compute)


def member_table(runs: BookRuns) -> pd.DataFrame:
    """``underspec.member_table`` of the paper grid (accuracy, distance from init, dead units), cached."""
    return cached_table(runs, "paper", "members", lambda: underspec.member_table(runs.paper, runs.data))


def far_data(data: underspec.Dataset) -> underspec.Dataset | None:
    """The far shift for networks trained on MNIST digits: Fashion-MNIST's test images (offline from Debian's
    dataset-fashion-mnist), or None where it cannot be read or the networks were not trained on digits."""
    if not data.name.startswith("mnist"):
        return None
    try:
        return underspec.load_dataset(FAR, download=False)
    except (UnderspecError, OSError, RuntimeError):
        return None


def live_shifts(runs: BookRuns) -> pd.DataFrame:
    """``shift_table`` of the paper grid (every seed pair on every shifted test set, Fashion-MNIST as the far
    shift when it can be read), cached."""
    def compute():  # shift_table uses as many of the far set's test images as the run has test images
        return shift_table(runs.paper, runs.data, far=far_data(runs.data))
    return cached_table(runs, "paper", "shifts", compute)


def subset_table(runs: BookRuns) -> pd.DataFrame:
    """The subset-mode grid compared (parameters, every pair, both nulls), cached."""
    return cached_table(runs, "subset", "compare", lambda: underspec.compare(
        runs.subset, "all", targets=("params",), data=runs.data, null=NULLS))


def majority_accuracy(data: underspec.Dataset, classes, class_mode: str = "relabel") -> dict[int, float]:
    """{C: test accuracy of always answering the most frequent class} under ``class_mode``."""
    out = {}
    for c in classes:
        keep, labels = underspec.class_labels(data.y_test, int(c), class_mode)
        out[int(c)] = float(torch.bincount(labels[keep]).max() / int(keep.sum()))
    return out


def dataset_majority(name: str, classes, cache: Path | None) -> dict[int, float] | None:
    """``majority_accuracy`` of the full data set ``name`` (read once, then cached beside the runs), or None
    where it cannot be read offline."""
    path = None if cache is None else cache / "tables" / f"majority-{name}.json"
    if path is not None and path.is_file():
        stored = {int(k): v for k, v in json.loads(path.read_text()).items()}
        if set(map(int, classes)) <= set(stored):
            return stored
    try:
        data = underspec.load_dataset(name, download=False)
    except (UnderspecError, OSError, RuntimeError):
        return None
    found = majority_accuracy(data, range(2, 11))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(found)))
    return found


def degenerate(members: pd.DataFrame, majority: dict[int, float] | None,
               margin: float = DEGENERATE_MARGIN) -> pd.DataFrame:
    """The configurations with degenerate networks (test accuracy within ``margin`` of always answering the
    most frequent class): l1, n_classes, n (how many of its seeds), seeds, accuracy and the majority level."""
    columns = ["l1", "n_classes", "n", "seeds", "majority", "accuracy"]
    if majority is None or members.empty:
        return pd.DataFrame(columns=columns)
    level = members.n_classes.map(majority)
    flagged = members[members.test_acc <= level + margin]
    rows = [{"l1": lam, "n_classes": c, "n": len(part), "seeds": len(members[(members.l1 == lam)
                                                                            & (members.n_classes == c)]),
             "majority": majority[c], "accuracy": part.test_acc.mean()}
            for (lam, c), part in flagged.groupby(["l1", "n_classes"])]
    return pd.DataFrame(rows, columns=columns)


def degenerate_text(cells: pd.DataFrame) -> str:
    """The degenerate configurations in words: "λ = 0.05 at C = 2 (3 of 7 seeds), 3 (...)"."""
    if cells.empty:
        return "none"
    return "; ".join(f"λ = {fmt_l1(lam)} at C = " + ", ".join(f"{int(r.n_classes)} ({int(r.n)} of {int(r.seeds)} seeds)"
                                                            for r in part.itertuples())
                     for lam, part in cells.groupby("l1"))


# ------------------------------------------------------------------------------------------- regimes

@dataclass
class Regime:
    """One training regime's tables: ``metrics`` (compare, every pair, both nulls), ``members``
    (member_table), ``shifts`` (shift_table or None), and for this build's run the CKA inputs."""

    name: str
    dataset: str
    n_train: int
    grid: underspec.Grid  # with its epochs as trained (a steps budget resolved)
    metrics: pd.DataFrame
    members: pd.DataFrame
    shifts: pd.DataFrame | None
    majority: dict[int, float] | None
    cka: pd.DataFrame | None = None
    baselines: dict | None = None
    cache: Path | None = None  # where its verdicts are cached (under the name ``stem``), if anywhere
    stem: str | None = None

    @property
    def steps(self) -> int:
        return self.grid.epochs * steps_per_epoch(self.n_train, self.grid.batch_size)

    @property
    def degenerate(self) -> pd.DataFrame:
        return degenerate(self.members, self.majority)

    def verdicts(self) -> pd.DataFrame:
        """``claims.check_all`` on this regime's table; without embeddings, the representations claim is
        "not testable with this data" (cached with the regime's ``stem``)."""
        return _cached(self.cache if self.stem else None, self.stem or "", self._verdicts)

    def _verdicts(self) -> pd.DataFrame:
        out = claims.check_all(self.metrics, cka=self.cka, baselines=self.baselines, hidden=self.grid.hidden)
        if self.cka is None:
            out.loc[len(out)] = {"claim": "Representations look alike across seeds", "verdict": claims.VERDICTS[4],
                                 "statistic": "CKA between seeds minus the strongest baseline", "value": np.nan,
                                 "low": np.nan, "high": np.nan, "finding": "this regime's tables hold no "
                                 "representations (a study keeps tables, not embeddings)", "rule": "", "paper": ""}
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
        dead = m.dead_units.sum() / (len(m) * self.grid.hidden)
        cells = self.degenerate
        return {
            **head,
            f"test accuracy at λ = {fmt_l1(corner.l1.min())}, C = {corner.n_classes.max()}": f"{corner.test_acc.mean():.3f}",
            "test accuracy, mean over the grid": f"{m.test_acc.mean():.3f}",
            "distance from init ‖W1 − W1₀‖ / ‖W1₀‖ (mean)": f"{m.rel_change.mean():.2f}",
            "cosine of each unit to its init (mean)": f"{m.init_cosine.mean():.2f}",
            "dead units (share of all units)": f"{dead:.1%}",
            "degenerate networks (at the majority-class accuracy)":
                "unknown" if self.majority is None else f"{int(cells.n.sum())} of {len(m)}",
        }


def live_regime(runs: BookRuns) -> Regime:
    """This build's paper grid as a regime: its study table, member and shift tables and CKA inputs."""
    cka, baselines = study_cka(runs)
    grid = runs.grid.for_data(runs.n_train)
    name = f"(a) {runs.data.name}, {len(grid.seeds)} seeds, this build"
    return Regime(name, runs.data.name, runs.n_train, grid, study_table(runs), runs.members, live_shifts(runs),
                  majority_accuracy(runs.data, grid.n_classes, grid.class_mode), cka, baselines, runs.cache,
                  _verdicts_stem(runs))


def sweep_regime(sweep_dir: str | Path) -> Regime:
    """The results of ``underspec sweep --out sweep_dir`` as a regime (its complete shards)."""
    from underspec.sweeps.store import load_results

    results = load_results(sweep_dir)
    config = results.config
    data = underspec.load_dataset(config.dataset, root=config.data_root).take(config.n_train, config.n_test)
    grid = config.grid().for_data(len(data.y_train))
    members = results.tables.get("members", pd.DataFrame(columns=["seed", "l1", "n_classes", "test_acc"]))
    return Regime(f"(s) the sweep in {sweep_dir}", data.name, len(data.y_train), grid,
                  results.metrics[results.metrics.target.isin(TARGETS)], members, results.tables.get("shifts"),
                  majority_accuracy(data, grid.n_classes, grid.class_mode))


def committed_regime(study: str, root: str | Path, cache: Path | None = None) -> Regime | None:
    """The committed study ``results/<study>`` as a regime, or None while its tables do not exist yet."""
    from underspec.sweeps.config import SweepConfig

    folder = Path(root) / study
    if not all((folder / f"{t}.parquet").is_file() for t in ("metrics", "members")):
        return None
    config = SweepConfig.from_yaml(folder / "config.yaml")
    n_train = config.n_train or (len(underspec.load_dataset("mnist-5k").y_train) if config.dataset == "mnist-5k"
                                 else FULL_TRAIN[config.dataset])
    shifts = pd.read_parquet(folder / "shifts.parquet") if (folder / "shifts.parquet").is_file() else None
    metrics = pd.read_parquet(folder / "metrics.parquet")
    grid = config.grid().for_data(n_train)
    majority = (majority_accuracy(underspec.load_dataset("mnist-5k"), grid.n_classes) if config.dataset == "mnist-5k"
                else dataset_majority(config.dataset, grid.n_classes, cache))
    content = hashlib.sha256((folder / "metrics.parquet").read_bytes()).hexdigest()[:12]
    return Regime(STUDIES.get(study, study), config.dataset, n_train, grid,
                  metrics[metrics.target.isin(TARGETS)], pd.read_parquet(folder / "members.parquet"), shifts,
                  majority, cache=cache, stem=f"study-{study}-{content}-verdicts")


def not_yet_run(study: str) -> str:
    return f"not yet run: `python scripts/results.py {study}`"


# ------------------------------------------------------------------------------------- presentation

def interval(value: float, low: float, high: float, digits: int = 3, sign: bool = True) -> str:
    """"+0.032 [+0.026, +0.037]" (``sign=False``: "0.032 [0.026, 0.037]"), or "—" where there is no number."""
    f = f"{'+' if sign else ''}.{digits}f"
    if not np.isfinite(value):
        return "—"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{value:{f}}"
    return f"{value:{f}} [{low:{f}}, {high:{f}}]"


def verdict_table(verdicts: pd.DataFrame, regime: str | None = None) -> pd.DataFrame:
    """The verdicts as a reader's table: claim, verdict, statistic, its estimate with the 95% interval
    (seeds resampled, delete-one-seed jackknife) and, with ``regime``, the regime beside every verdict."""
    out = pd.DataFrame({"claim": verdicts.claim, "verdict": verdicts.verdict, "statistic": verdicts.statistic,
                        "estimate [95% interval]": [interval(v, lo, hi) for v, lo, hi in
                                                    zip(verdicts.value, verdicts.low, verdicts.high)]})
    if regime is not None:
        out["regime"] = regime
    return out


def show(table: pd.DataFrame, index: bool = False):
    """A table for the page: text left-aligned and wrapped, the index hidden unless ``index``."""
    styler = table.style.set_properties(**{"text-align": "left", "white-space": "normal"}).format(precision=3)
    return styler if index else styler.hide(axis="index")


def regime_label(runs_or_regime: BookRuns | Regime) -> str:
    """One line: data set, training images, SGD steps against the paper's, accuracy at lambda = 0 and the
    largest C (mean over seeds)."""
    r = runs_or_regime
    m = r.members
    text = f"{r.dataset}, {r.n_train:,} training images, {r.steps:,} of the paper's {PAPER_STEPS:,} SGD steps"
    if m.empty:
        return text
    corner = m[(m.l1 == m.l1.min()) & (m.n_classes == m.n_classes.max())]
    return (text + f", test accuracy {corner.test_acc.mean():.3f} at λ = {fmt_l1(corner.l1.min())}, C = "
            f"{corner.n_classes.max()}")


# ------------------------------------------------------------------------------ distribution shift

def shift_summary(regime: Regime, l1: float, n_classes: int) -> pd.DataFrame:
    """Seeds under shift at one configuration: per test set, the mean accuracy and its standard deviation
    over seeds, and the accuracy gap and the disagreement between two seeds with seed-level intervals
    (``summarize_shifts``: delete-one-seed jackknife)."""
    from underspec.metrics.shift import summarize_shifts

    part = regime.shifts[(regime.shifts.l1 == l1) & (regime.shifts.n_classes == n_classes)]
    out = summarize_shifts(part)
    per_seed = pd.concat([part[["shift", "seed_a", "acc_a"]].set_axis(["shift", "seed", "acc"], axis=1),
                          part[["shift", "seed_b", "acc_b"]].set_axis(["shift", "seed", "acc"], axis=1)])
    spread = per_seed.drop_duplicates(["shift", "seed"]).groupby("shift", sort=False).acc.std(ddof=1)
    return out.assign(accuracy_sd=out["shift"].map(spread))


def shift_table_for_page(summaries: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``shift_summary`` of several regimes side by side: rows test sets, columns (regime, quantity)."""
    columns = {}
    for name, s in summaries.items():
        s = s.set_index("shift")
        columns[(name, "accuracy (sd over seeds)")] = [
            "—" if not np.isfinite(a) else f"{a:.3f} ({sd:.3f})" for a, sd in zip(s.accuracy, s.accuracy_sd)]
        columns[(name, "accuracy gap between seeds")] = [
            interval(v, lo, hi, sign=False) for v, lo, hi in
            zip(s.acc_gap, s.acc_gap_low, s.acc_gap_high)]
        columns[(name, "disagreement between seeds")] = [
            interval(v, lo, hi, sign=False) for v, lo, hi in
            zip(s.disagreement, s.disagreement_low, s.disagreement_high)]
        columns[(name, "index")] = list(s.index)
    frames = [pd.DataFrame({k[1]: v for k, v in columns.items() if k[0] == name}).set_index("index")
              for name in summaries]
    table = pd.concat(frames, axis=1, keys=list(summaries)).fillna("—")  # a test set one regime lacks
    table.index.name = "test set"
    return table


def shift_effects(regime: Regime) -> dict:
    """Do L1 or C change how much more seeds disagree once the data move? Per seed pair, the disagreement on
    the shifted test sets (their mean; the far shift left out, since not every regime has one) minus that in
    distribution; then, with seed-level intervals (``claims.Evidence``, C ≥ 3): its mean, its change from
    lambda = 0 to the largest lambda without degenerate networks, and its slope per class."""
    s = regime.shifts
    keys = ["l1", "n_classes", "seed_a", "seed_b"]
    base = s[s["shift"] == "in distribution"].set_index(keys).disagreement
    moved = s[(s["shift"] != "in distribution") & ~s["shift"].str.startswith("far: ")]
    excess = (moved.groupby(keys).disagreement.mean() - base).rename("excess").reset_index().assign(target="params")
    cells = regime.degenerate
    unusable = set(cells[cells.n_classes >= 3].l1)
    l1s = sorted(excess.l1.unique())
    clean = [lam for lam in l1s if lam not in unusable]
    ev = claims.Evidence(excess[excess.l1.isin(clean or l1s)], "excess")
    out = {"top": (clean or l1s)[-1], "base": (clean or l1s)[0], "mean": ev.estimate(lambda m: float(m.mean()))}
    out["l1"] = (ev.estimate(lambda m: claims.by_l1(m).loc[clean[-1]] - claims.by_l1(m).loc[clean[0]])
                 if len(clean) > 1 else None)
    out["c"] = ev.estimate(lambda m: claims.slope(claims.by_c(m))) if excess.n_classes.nunique() > 1 else None
    return out


def _change(e, what: str) -> str:
    if e is None:
        return f"{what}: not testable with this grid (fewer than two values without degenerate networks)"
    if e.low > 0:
        word = "more"
    elif e.high < 0:
        word = "less"
    else:
        return f"{what}: no change the seeds can detect ({interval(e.value, e.low, e.high)})"
    return f"{what}: seeds disagree {word} under shift ({interval(e.value, e.low, e.high)})"


def shift_sentence(regime: Regime) -> str:
    """``shift_effects`` in words."""
    e = shift_effects(regime)
    m = e["mean"]
    return (f"{regime.name}: under the shifts, two seeds disagree on {m.value:+.3f} [{m.low:+.3f}, {m.high:+.3f}] "
            f"more of the images than in distribution (mean over C ≥ {min(claims.CLASSES)} and λ from "
            f"{fmt_l1(e['base'])} to {fmt_l1(e['top'])}); "
            + _change(e["l1"], f"from λ = {fmt_l1(e['base'])} to λ = {fmt_l1(e['top'])}" if e["l1"] is not None
                      else "the effect of λ") + "; "
            + _change(e["c"], "per added class") + ".")


def glue_md(name: str, text) -> None:
    """Glue a computed sentence as Markdown, for ``{glue:md}`name``` in the prose: it reads as ordinary text
    (``{glue:text}`` sets a value in bold, which suits a number, not a sentence)."""
    from myst_nb import glue

    glue(name, Markdown(str(text)), display=False)


# ------------------------------------------------------------------------------------------ first look

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


def first_look_experiments(init_seed: int) -> dict[str, tuple[list[dict], object]]:
    """The first look's experiments: {experiment: (the knobs of its grids, each changed from the paper's
    network, and the name of a setting: a function of a part's grid)}. Where an experiment is a product of
    axes it is one mixed grid (``Grid.parts``), trained in one call."""
    def seeds_varied(g):
        return "init only" if g.order_seed is not None else "order only" if g.init_seed is not None else "init and order"

    return {
        "width (depth 1)": ([{"hidden": WIDTHS}], lambda g: str(g.hidden)),
        f"width at train loss {EQUAL_LOSS}": ([{"hidden": WIDTHS[1:], "stop_loss": EQUAL_LOSS}], lambda g: str(g.hidden)),
        f"depth (width {DEPTH_WIDTH})": ([{"hidden": DEPTH_WIDTH, "depth": DEPTHS}], lambda g: str(g.depth)),
        "optimizer x learning rate (width 16)": ([{"optimizer": OPTIMIZERS, "lr": LEARNING_RATES}],
                                                 lambda g: f"{OPTIMIZER_NAMES[g.optimizer]}, lr {g.lr:g}"),
        "what the seeds vary (width 16)": ([{}, {"order_seed": init_seed}, {"init_seed": init_seed}], seeds_varied),
    }


@dataclass
class FirstLook:
    """The first look's data, the grid every setting changes (``base``) and the estimates: one row per
    (experiment, setting, metric) with ``value``, ``low``, ``high`` (95%, seeds resampled) and ``null``."""

    data: underspec.Dataset
    base: underspec.Grid
    estimates: pd.DataFrame
    pairs: dict  # (experiment, setting) -> its seed_similarity table (one row per seed pair)
    epochs: dict  # (experiment, setting) -> the epochs its seeds trained for (a stopping rule ends some early)
    layers: pd.DataFrame  # the deepest network's estimates layer by layer: experiment, setting ("layer l"), ...

    def settings(self, experiment: str) -> list[str]:
        return list(dict.fromkeys(self.estimates[self.estimates.experiment == experiment].setting))

    def change(self, experiment: str, metric: str) -> str:
        """The change of ``metric`` from the experiment's first setting to its last, per seed pair (the same
        seeds in both), with its seed-level 95% interval, in words: "lower (-0.031 [-0.044, -0.017])"."""
        settings = self.settings(experiment)
        first, last = (self.pairs[(experiment, s)] for s in (settings[0], settings[-1]))
        keys = ["seed_a", "seed_b"]
        both = first[keys + [metric]].merge(last[keys + [metric]], on=keys, suffixes=("_first", "_last"))
        both["change"] = both[f"{metric}_last"] - both[f"{metric}_first"]
        e = estimate(pair_array(both, "change", [])[2])
        word = ("no change the seeds can detect" if not (e.low > 0 or e.high < 0) or np.isnan(e.low)
                else "higher" if e.low > 0 else "lower")
        return f"{word} ({interval(e.value, e.low, e.high)})"

    def changes_in_words(self) -> str:
        """One line per experiment: how each metric changes from its first setting to its last."""
        named = {"disagreement": "disagreement", "cka": "CKA of the first hidden layer", "cka_last": "CKA of the last",
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
            lines.append(f"- {SETTING_METRICS[metric]}: " + "; ".join(x for x in said if x) + ".")
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


def first_look(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50,
               n_train: int | None = None, n_test: int | None = None, device: str = "auto",
               results_dir: str | None = "../runs/cache", steps=None) -> FirstLook:
    """Every setting of ``first_look_experiments`` trained (or loaded from the cache) for the chapter's first
    ``FIRST_LOOK_SEEDS`` seeds at its first lambda and largest C, and compared (``seed_similarity``)."""
    data = underspec.load_dataset(dataset).take(n_train, n_test)
    grid = underspec.Grid(PAPER_SEEDS if seeds is None else seeds, PAPER_L1 if l1 is None else l1,
                          PAPER_CLASSES if classes is None else classes, epochs=epochs, steps=steps)
    base = dataclasses.replace(grid, seeds=grid.seeds[:FIRST_LOOK_SEEDS], l1=grid.l1[:1],
                               n_classes=(max(grid.n_classes),))
    cache = Path(results_dir).resolve() if results_dir else None
    _map_from_disk()
    rows, pairs, epochs = [], {}, {}
    measured = {}  # part grid -> its table and epochs (settings that coincide, e.g. width 16 with SGD, once)
    for experiment, (grids, name) in first_look_experiments(base.seeds[0]).items():
        for knobs in grids:
            run = underspec.load_or_train(dataclasses.replace(base, **knobs), data, cache_dir=cache, device=device,
                                          progress=False, snapshots=False, embeddings=False)
            parts, run = run.parts, None  # measured one by one, each freed once measured: within 1 GB
            while parts:
                part = parts.pop(0)
                if part.grid not in measured:
                    stopped = part.members.get("stopped")  # a stopping rule's epochs (NA: trained to the end)
                    trained = ([part.grid.epochs] * len(part.grid) if stopped is None
                               else stopped.fillna(part.grid.epochs).astype(int).tolist())
                    measured[part.grid] = seed_similarity(part, data), trained
                    if part.grid.depth == max(DEPTHS):
                        deepest = layer_similarity(part, data)
                setting = name(part.grid)
                table, trained = measured[part.grid]
                pairs[(experiment, setting)], epochs[(experiment, setting)] = table, trained
                rows.append(similarity_estimates(table).assign(experiment=experiment, setting=setting))
    layers = pd.concat([similarity_estimates(part, metrics=LAYER_METRICS).assign(
        experiment=f"depth {max(DEPTHS)} (width {DEPTH_WIDTH}), layer by layer", setting=f"layer {layer}")
        for layer, part in deepest.groupby("layer")], ignore_index=True)
    return FirstLook(data, base, pd.concat(rows, ignore_index=True), pairs, epochs, layers)


def first_look_table(look: FirstLook) -> pd.DataFrame:
    """The estimates for the page: one row per (experiment, setting), per metric its mean and 95% interval
    (seeds resampled), and the nulls of disagreement and CKA."""
    e = look.estimates
    cell = {(r.experiment, r.setting, r.metric): interval(r.value, r.low, r.high, sign=r.metric == "apc1_excess")
            for r in e.itertuples()}
    null = {(r.experiment, r.setting, r.metric): r.null for r in e.itertuples()}
    rows = []
    for experiment, setting in dict.fromkeys(zip(e.experiment, e.setting)):
        key = (experiment, setting)
        trained = look.epochs[key]
        rows.append({"experiment": experiment, "setting": setting,
                     "epochs trained": f"{min(trained)}" if min(trained) == max(trained)
                     else f"{min(trained)}-{max(trained)}",
                     "test accuracy": cell[(*key, "accuracy")],
                     "disagreement": cell[(*key, "disagreement")],
                     "its null (independent errors)": f"{null[(*key, 'disagreement')]:.3f}",
                     "CKA": cell[(*key, "cka")], "its null (before training)": f"{null[(*key, 'cka')]:.3f}",
                     "CKA, last hidden layer": cell[(*key, "cka_last")],
                     "its null": f"{null[(*key, 'cka_last')]:.3f}",
                     "APC-1 above its structured null": cell[(*key, "apc1_excess")],
                     "loss barrier, units aligned": cell[(*key, "barrier")],
                     "as trained": f"{null[(*key, 'barrier')]:.3f}"})
    return pd.DataFrame(rows)

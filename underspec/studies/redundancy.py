"""The study of "Redundancy and width": which hidden units a network needs, how that changes with width, and
whether two seeds agree on them.

``redundancy_study(...)`` declares the runs for a chapter's parameters (``RedundancyStudy``): one mixed grid
over the widths at depth 1 (``"width"``), the same stopped at equal training loss (``"equal-loss"``), a deeper
line (``"depth"``), three runs of one width with per-epoch snapshots for the spectra over training
(``"spectra/..."``), and the unit-level tickets (``tickets.ticket_table``, trained by ``ensure()`` and cached as
a table). ``measure_part`` measures every network of one part (a width, a depth, a stopping rule) with the
pure metrics of ``metrics.redundancy``, ``pruning``, ``lowrank``, ``capacity``, ``spectra``, ``clustering`` and
``shared_units``; the study caches its tables beside the runs. Intervals and verdicts: ``redundancy_evidence``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from ..metrics import capacity as cap
from ..metrics.clustering import clustering, rotated_rows
from ..metrics.lowrank import low_rank_accuracy, rank_ks
from ..metrics.matching import match_units
from ..metrics.pruning import (FRACTIONS, agreement, compressibility, contribution_order, crossing, random_orders,
                               removal_masks, targeted_order)
from ..metrics.redundancy import (REPEATED_R, TOLERANCES, groups_of, parallel_units, repeated_counts, rotated,
                                  unit_correlations)
from ..metrics.shared_units import matched_overlap, repeated_pair_agreement
from ..metrics.spectra import esd, spectra_over_training, spectrum_summary
from ..metrics.units import dead_units
from ..training.data import Dataset, class_labels, load_dataset
from ..training.grid import PAPER_L1, PAPER_SEEDS, Grid
from ..training.model import forward, preactivations
from ..training.run import Run
from .study import RunSpec, Study
from .tables import table_path
from .tickets import ticket_table

WIDTHS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
QUICK_MAX_WIDTH = 128  # with fewer than QUICK_BELOW training images (a quick run) the widths stop here
QUICK_BELOW = 2000
SEEDS = 5  # seeds per width: the chapter's first five
DEEP_DEPTH, DEEP_MAX_WIDTH = 2, 256  # the deeper line
EPOCH_SHARE = 8  # the chapter trains an eighth of the chapters' epochs: 6 of 50, so that its runs train in minutes
# equal training loss: every network stops after the first epoch whose mean training cross-entropy is below this,
# a round value that widths from 32 on reach within the chapter's 6 epochs on mnist-5k (width 4 never does)
EQUAL_LOSS = 0.8
SPECTRA_WIDTH = 128  # >= 50 eigenvalues for a tail fit
SPECTRA_SETTINGS = {"SGD, lr 0.01": {}, "SGD, lr 0.1": {"lr": 0.1}, "Adam, lr 0.001": {"optimizer": "adam", "lr": 0.001}}
TICKET_WIDTH = 128  # the original network of the tickets; keep H/16 and H/4 of its units
PROBE = 1000  # held-out images the activation measures read (the first of the test set)
DRAWS = 5  # random knock-out orders per network
LOW_RANK_K = 16  # "effectively low-rank": the rank-16 update (Nagarajan and Kolter kept 16 of 1024)
CLUSTER_K = 4  # Brutzkus and Globerson cluster into four


def redundancy_grid(seeds=None, l1=None, classes=None, epochs=50, steps=None, n_train: int | None = None) -> Grid:
    """The width grid of a chapter's parameters on ``n_train`` training images (None: a full-size data set of
    60,000): its first ``SEEDS`` seeds, λ = its first value and its first positive one, C = its largest, an eighth
    of its epochs (at least 1; a steps budget counted in epochs of these images first), widths 4 to 1024 (to 128
    for a quick run on fewer than 2,000 images)."""
    base = Grid(PAPER_SEEDS if seeds is None else seeds, PAPER_L1 if l1 is None else l1,
                (10,) if classes is None else classes, epochs=epochs, steps=steps)
    n = 60_000 if n_train is None else n_train
    epochs = max(1, base.for_data(n).epochs // EPOCH_SHARE)
    positive = [v for v in base.l1 if v > 0]
    l1s = (base.l1[0],) + ((positive[0],) if positive and positive[0] != base.l1[0] else ())
    widths = tuple(w for w in WIDTHS if n >= QUICK_BELOW or w <= QUICK_MAX_WIDTH)
    return Grid(seeds=base.seeds[:SEEDS], l1=l1s, n_classes=(max(base.n_classes),), hidden=widths, epochs=epochs)


class RedundancyStudy(Study):
    """The chapter's runs (module doc) and its cached tables."""

    def __init__(self, data: Dataset, grid: Grid, cache=None, *, equal_loss: float = EQUAL_LOSS, **options):
        widths = grid.hidden
        deep = tuple(w for w in widths if w <= DEEP_MAX_WIDTH)
        one = dataclasses.replace(grid, l1=grid.l1[:1], hidden=min(SPECTRA_WIDTH, max(widths)))
        specs = {"width": RunSpec(grid), "equal-loss": RunSpec(dataclasses.replace(grid, stop_loss=equal_loss)),
                 "depth": RunSpec(dataclasses.replace(grid, hidden=deep, depth=DEEP_DEPTH)),
                 **{f"spectra/{name}": RunSpec(dataclasses.replace(one, **knobs), snapshots=True)
                    for name, knobs in SPECTRA_SETTINGS.items()}}
        super().__init__(data, specs, cache, **options)
        self.grid, self.equal_loss = grid, equal_loss
        self.ticket_width = min(TICKET_WIDTH, max(widths))

    @property
    def ticket_ks(self) -> tuple[int, int]:
        return (max(1, self.ticket_width // 16), self.ticket_width // 4)

    def ensure(self, progress=None, *, say: bool = False) -> list[str]:
        """Every run the cache lacks, then the tickets (trained here, kept as a table)."""
        done = super().ensure(progress, say=say)
        if self.cache is not None and not self._ticket_path().is_file():
            if say:
                print(f"training the unit-level tickets of width {self.ticket_width}", flush=True)
            self.tickets()
            done.append("tickets")
        return done

    def _ticket_path(self):
        return table_path(self.cache, self.table_stem("tickets", ("width",)))

    def tickets(self) -> pd.DataFrame:
        """``tickets.ticket_table`` for the first λ and every seed, width ``ticket_width``."""
        g = self.grid
        return self.table("tickets", lambda: ticket_table(self.data, g.seeds, hidden=self.ticket_width, ks=self.ticket_ks,
                                                          epochs=g.epochs, n_classes=g.n_classes[0], l1=g.l1[0],
                                                          lr=g.lr, batch_size=g.batch_size, progress=self.progress),
                          runs=("width",))

    def measures(self, name: str, *, full: bool = False) -> dict[str, pd.DataFrame]:
        """``measure_part`` over every part of run ``name``, concatenated, each table cached: {"members",
        "curves", and with ``full`` also "lowrank", "clusters", "pairs"}. What the cache lacks is computed once,
        part by part (each part freed once measured)."""
        kinds = ("members", "curves") + (("lowrank", "clusters", "pairs") if full else ())
        computed: dict[str, pd.DataFrame] = {}

        def get(kind):
            if not computed:
                parts = self.run(name).parts
                self.release(name)
                tables = []
                while parts:
                    tables.append(measure_part(parts.pop(0), self.data, full=full))
                computed.update({k: pd.concat([t[k] for t in tables], ignore_index=True) for k in kinds})
            return computed[kind]
        return {kind: self.table(f"{kind}{'-full' if full else ''}", lambda kind=kind: get(kind), runs=(name,))
                for kind in kinds}

    def spectra(self) -> pd.DataFrame:
        """``spectra_over_training`` of W1 for every member of the spectra runs: one row per setting, seed,
        epoch and matrix."""
        def compute():
            rows = []
            for name in SPECTRA_SETTINGS:
                run = self.run(f"spectra/{name}")
                for i, seed in enumerate(run.members.seed):
                    rows.append(spectra_over_training(run.snapshots["w1"][i]).assign(setting=name, seed=int(seed)))
                self.release(f"spectra/{name}")
            return pd.concat(rows, ignore_index=True)
        return self.table("spectra", compute, runs=tuple(f"spectra/{name}" for name in SPECTRA_SETTINGS))

    def summary(self) -> str:
        g, n = self.grid, len(self.data.y_train)
        widths = ", ".join(map(str, g.hidden))
        return (f"Data set **{self.data.name}** ({n:,} training / {len(self.data.y_test):,} test images). Widths "
                f"{widths} at depth 1, {len(g.seeds)} seeds each ({', '.join(map(str, g.seeds))}), "
                f"λ ∈ {{{', '.join(f'{v:g}' for v in g.l1)}}}, C = {g.n_classes[0]}, {g.epochs} epochs of batch "
                f"{g.batch_size} and lr {g.lr:g} (an eighth of the other chapters' epochs, so that these runs train "
                f"in minutes), or until the training loss is below {self.equal_loss} (equal loss); widths up to "
                f"{max(self.specs['depth'].grid.hidden)} at depth {DEEP_DEPTH}; spectra over training at width "
                f"{self.specs['spectra/SGD, lr 0.01'].grid.hidden} under {', '.join(SPECTRA_SETTINGS)}; unit-level "
                f"tickets of width {self.ticket_width} keeping {' and '.join(map(str, self.ticket_ks))} units.")


def redundancy_study(dataset: str = "mnist-5k", seeds=None, l1=None, classes=None, epochs=50,
                     n_train: int | None = None, n_test: int | None = None, device: str = "auto",
                     results_dir: str | None = "../runs/cache", steps=None, progress: bool = False,
                     threads: int | None = None) -> RedundancyStudy:
    """The chapter's study for its parameters (``redundancy_grid``), its runs cached under ``results_dir``."""
    data = load_dataset(dataset).take(n_train, n_test)
    grid = redundancy_grid(seeds, l1, classes, epochs, steps, len(data.y_train))
    return RedundancyStudy(data, grid, results_dir, device=device, progress=progress, threads=threads)


# ------------------------------------------------------------------------------------------ one part

def _hidden(params: dict, x: torch.Tensor) -> list[torch.Tensor]:
    """Every hidden layer's ReLU output: [(M, N, H)] * depth."""
    return [torch.relu(z) for z in preactivations(params, x.to(params["w1"].dtype))[:-1]]


def measure_part(part: Run, data: Dataset, *, full: bool = False, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every network of one part (one width, depth and stopping rule) measured (module doc): {"members": one row
    per member, "curves": its knock-out agreement at every level and order; with ``full`` (depth 1) also
    "lowrank" (accuracy and energy of the rank-k update, top and random), "clusters" (silhouette and angle
    against k: trained, init, rotated, and the update W - W0 alone with its own rotation null) and "pairs" (every seed pair of each λ: shared droppable units and
    repeated pairs after matching, with their chance levels)}."""
    g = part.grid
    gen = torch.Generator().manual_seed(seed)
    c = g.n_classes[0]
    keep_train, y_train = class_labels(data.y_train, c, g.class_mode)
    x_train, y_train = data.x_train[keep_train], y_train[keep_train]
    keep_test, y_test = class_labels(data.y_test, c, g.class_mode)
    x_test, y_test = data.x_test[keep_test], y_test[keep_test]
    x = x_test[:PROBE]
    final, init = part.final, part.init
    members = part.members
    m, depth, h = len(members), g.depth, g.hidden
    l1 = torch.tensor(members.l1.to_numpy(), dtype=torch.float64)
    acts, acts0 = _hidden(final, x), _hidden(init, x)
    on_train = preactivations(final, x_train.to(final["w1"].dtype))  # one pass over the training images
    silent = [(z <= 0).all(-2) for z in on_train[:-1]]
    dead = [dead_units(final["w1"], lr=g.lr, l1=l1) | silent[0]] + silent[1:]  # the package's policy
    row = {"hidden": h, "depth": depth, "stop_loss": np.nan if g.stop_loss is None else g.stop_loss, "seed": members.seed.to_numpy(),
           "l1": members.l1.to_numpy(), "units": depth * h,
           "epochs": (members.stopped.fillna(g.epochs).astype(int).to_numpy() if "stopped" in members
                      else np.full(m, g.epochs)),
           "reached": (members.stopped.notna().to_numpy() if "stopped" in members else np.zeros(m, dtype=bool)),
           "test_acc": (forward(final, x_test.to(final["w1"].dtype)).argmax(-1) == y_test).double().mean(-1).numpy(),
           "dead": sum(d.sum(-1) for d in dead).numpy()}
    counts, r_max, corr = [], [], []
    for layer in range(depth):
        r, excluded = unit_correlations(acts[layer], dead[layer])
        corr.append((r, excluded))
        counts.append((r.abs() >= REPEATED_R).sum(-1))
        r_max.append(r.abs().amax(-1))
    counts = torch.cat(counts, -1).double()
    row.update(repeated=counts.mean(-1).numpy(), repeated_sd=counts.std(-1).numpy(),
               repeated_frac=(counts > 0).double().mean(-1).numpy(),
               repeated_untrained=torch.cat([repeated_counts(a)[0] for a in acts0], -1).double().mean(-1).numpy(),
               repeated_rotated=torch.cat([repeated_counts(rotated(a, gen))[0] for a in acts], -1).double().mean(-1).numpy(),
               nonredundant=sum(groups_of(*corr[i]) for i in range(depth)).numpy(),
               compressibility=torch.stack([compressibility(a) for a in acts]).mean(0).numpy(),
               compressibility_untrained=torch.stack([compressibility(a) for a in acts0]).mean(0).numpy())
    # knock-out: random orders (averaged over draws), targeted (decreasing |r|), by contribution; the untrained
    orders = {"random": random_orders(m, DRAWS, depth * h, gen), "targeted": targeted_order(torch.stack(r_max, -2))[:, None],
              "contribution": contribution_order(final, acts)[:, None]}
    curves, p = [], np.asarray(FRACTIONS)
    for name, order in list(orders.items()) + [("random, untrained", orders["random"])]:
        params = init if name.endswith("untrained") else final
        keep = removal_masks(order, FRACTIONS, depth=depth)  # (M, R, P, L, H)
        agree = agreement(params, x, keep.flatten(1, 2)).view(m, order.shape[1], len(p)).mean(1).numpy()
        value, censored = crossing(p, agree)
        row[f"prunable_{name}"], row[f"censored_{name}"] = value, censored
        curves.append(pd.DataFrame({"hidden": h, "depth": depth, "stop_loss": row["stop_loss"], "order": name,
                                    "seed": np.repeat(row["seed"], len(p)), "l1": np.repeat(row["l1"], len(p)),
                                    "p": np.tile(p, m), "agreement": agree.ravel()}))
    row["nonprunable"] = (1 - row["prunable_random"]) * depth * h
    exact = [parallel_units(final[f"w{i}"], final[f"b{i}"]) for i in range(1, depth + 1)]
    for t, tol in enumerate(TOLERANCES):
        row[f"merged_{tol:g}"] = sum(e["merged"][:, t] for e in exact).numpy()
        row[f"flipped_{tol:g}"] = sum(e["flipped"][:, t] for e in exact).numpy()
    row["zero"] = sum(e["zero"] for e in exact).numpy()
    row.update({k: v.numpy() for k, v in cap.capacity(final, init, x_train, y_train, logits=on_train[-1]).items()})
    del on_train
    for name, matrix in (("w", final["w1"]), ("dw", final["w1"].double() - init["w1"].double())):
        summaries = [spectrum_summary(e) for e in esd(matrix)]
        row[f"alpha_{name}"] = np.array([s["alpha"] for s in summaries])
        row[f"stable_rank_{name}"] = np.array([s["stable_rank"] for s in summaries])
    table = pd.DataFrame(row)
    out = {"members": table, "curves": pd.concat(curves, ignore_index=True)}
    if full:
        out.update(_full(part, final, init, x, y_test[:PROBE], acts, corr, orders, table, gen))
    return out


def _full(part, final, init, x, y, acts, corr, orders, table, gen) -> dict[str, pd.DataFrame]:
    """The depth-1 measures that cost most: low-rank updates, clustering, seeds against seeds."""
    h = part.grid.hidden
    rank = min(final["w1"].shape[-2:])
    ks = rank_ks(rank)
    curve = low_rank_accuracy(final, init, x, y, ks, gen)
    low = [pd.DataFrame({"hidden": h, "seed": table.seed, "l1": table.l1, "k": k, "rank": rank, "kind": kind,
                         "energy": curve["energy"][:, j].numpy(), "acc": curve[kind][:, j].numpy()})
           for j, k in enumerate(ks) for kind in ("top", "random")]
    clusters = []
    for i in range(len(table)):
        update = (final["w1"][i] - init["w1"][i], final["b1"][i] - init["b1"][i])
        for which, (w, b) in (("trained", (final["w1"][i], final["b1"][i])), ("init", (init["w1"][i], init["b1"][i])),
                              ("rotated", rotated_rows(final["w1"][i], final["b1"][i], gen)), ("update", update),
                              ("update, rotated", rotated_rows(*update, gen))):
            for r in clustering(w, b):
                clusters.append({"hidden": h, "seed": int(table.seed[i]), "l1": float(table.l1[i]), "which": which, **r})
    # seeds against seeds: activation matching, then the units each can drop (by contribution, up to the crossing)
    rank_of = torch.empty_like(orders["contribution"][:, 0])
    rank_of.scatter_(-1, orders["contribution"][:, 0], torch.arange(h).expand_as(rank_of))
    drop = rank_of < torch.tensor(np.floor(table.prunable_contribution.to_numpy() * h)).unsqueeze(-1)
    pairs = []
    for l1, group in table.groupby("l1"):
        idx = group.index.to_numpy()
        for a_pos, i in enumerate(idx):
            for j in idx[a_pos + 1:]:
                perm = match_units(acts[0][i].T, acts[0][j].T, signed=True).perm
                overlap, chance = matched_overlap(drop[i], drop[j], perm)
                agree, agree_chance = repeated_pair_agreement(corr[0][0][i], corr[0][0][j], corr[0][1][j], perm)
                pairs.append({"hidden": h, "l1": float(l1), "seed_a": int(table.seed[i]), "seed_b": int(table.seed[j]),
                              "overlap": overlap.item(), "overlap_chance": chance.item(),
                              "repeated_agree": agree.item(), "repeated_chance": agree_chance.item()})
    return {"lowrank": pd.concat(low, ignore_index=True), "clusters": pd.DataFrame(clusters), "pairs": pd.DataFrame(pairs)}

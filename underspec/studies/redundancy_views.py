"""What the chapter "Redundancy and width" shows, as tables ready to draw or print: every figure's estimates
(``redundancy_evidence``), the verdicts, the growth factors, the paper's 16-unit network, the regime's facts,
and the committed full-size study of ``results/``, read if it is there."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..metrics.pruning import AGREEMENT
from ..text import fmt_l1, interval
from . import redundancy_evidence as ev
from .redundancy import EQUAL_LOSS, LOW_RANK_K, RedundancyStudy
from .regimes import PAPER_STEPS, PAPER_TRAIN, steps_per_epoch

COMMITTED = "fashion-mnist-redundancy"  # results/<this>: the committed full-size study
TABLES = ("members", "curves", "lowrank", "clusters", "pairs")


@dataclass
class RedundancyViews:
    """The study's tables: ``members`` (every run's networks), ``full`` (the width run's members, curves,
    low-rank, clusters and seed pairs), ``tickets``, ``spectra`` (may be None: a committed study without them),
    and the grid's facts."""

    data_name: str
    n_train: int
    members: pd.DataFrame
    full: dict
    tickets: pd.DataFrame | None
    spectra: pd.DataFrame | None
    epochs: int
    batch_size: int
    equal_loss: float = EQUAL_LOSS
    provenance: dict | None = None  # a committed study's provenance.json

    @classmethod
    def of(cls, study: RedundancyStudy) -> "RedundancyViews":
        study.ensure()
        full = study.measures("width", full=True)
        members = pd.concat([full["members"], study.measures("equal-loss")["members"],
                             study.measures("depth")["members"]], ignore_index=True)
        return cls(study.data.name, len(study.data.y_train), members, full, study.tickets(), study.spectra(),
                   study.grid.epochs, study.grid.batch_size, study.equal_loss)

    @classmethod
    def committed(cls, folder: str | Path) -> "RedundancyViews | None":
        """The committed study in ``folder`` (``scripts/redundancy_results.py`` writes it), None where it is
        not (yet) there."""
        folder = Path(folder)
        if not (folder / "provenance.json").is_file():
            return None
        meta = json.loads((folder / "provenance.json").read_text())
        full = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
        everyone = pd.read_parquet(folder / "everyone.parquet")
        tickets = pd.read_parquet(folder / "tickets.parquet") if (folder / "tickets.parquet").is_file() else None
        return cls(meta["dataset"], meta["n_train"], everyone, full, tickets, None, meta["epochs"], meta["batch_size"],
                   meta["equal_loss"], meta)

    # ------------------------------------------------------------------------------------------ facts

    @property
    def l1s(self) -> list[float]:
        return sorted(set(self.members.l1))

    @property
    def widest(self) -> int:
        return int(self.full["members"].hidden.max())

    @property
    def n_seeds(self) -> int:
        return int(self.full["members"].seed.nunique())

    def committed_text(self) -> str:
        """What a committed study reduced, how long it took, and what the full version would take."""
        p = self.provenance or {}
        hours = sum(p.get("train_seconds", {}).values()) / 3600
        return (f"Reduced from the chapter's design to fit the machine it ran on: {p.get('reduced', '?')}. It trained in "
                f"{hours:.1f} hours on {p.get('machine', '?')} (code {p.get('code_commit', '?')[:10]}); the full version "
                f"(widths 4-1024 at the paper's {PAPER_STEPS:,} steps, both stopping rules) would take about "
                f"{p.get('full_version_estimate_hours', float('nan')):.0f} hours there")

    def title(self, what: str, regime: str = "depth 1, fixed epochs") -> str:
        return (f"{self.data_name}, {self.n_seeds} seeds per width, C = 10, {self.epochs} epochs ({regime}): "
                f"{what}")

    def regime_text(self) -> str:
        """The regime in one sentence: images, SGD steps against the paper's, accuracy reached, distance from
        init."""
        m = self.full["members"]
        steps = self.epochs * steps_per_epoch(self.n_train, self.batch_size)
        acc = m.groupby("hidden").test_acc.mean()
        dist = m.groupby("hidden").rel_dist.mean()
        return (f"{self.data_name}, {self.n_train:,} training images, {self.epochs} epochs = {steps:,} SGD steps of "
                f"batch {self.batch_size} (the paper: {PAPER_STEPS:,} steps on {PAPER_TRAIN:,} images); test accuracy "
                f"from {acc.iloc[0]:.1%} at width {acc.index[0]} to {acc.iloc[-1]:.1%} at width {acc.index[-1]}; "
                f"the first layer moved {dist.iloc[0]:.1%} of its initial norm at width {dist.index[0]} and "
                f"{dist.iloc[-1]:.1%} at width {dist.index[-1]}")

    # ------------------------------------------------------------------------------------------ figures

    def _where(self, l1, rule=ev.FIXED, depth=1) -> dict:
        return {"rule": rule, "depth": depth, "l1": l1}

    def redundancy(self) -> pd.DataFrame:
        """Repeated count, prunability and compressibility against width, with their nulls."""
        l0 = self.l1s[0]
        by_l1 = [(f"λ = {fmt_l1(l1)}", self._where(l1)) for l1 in self.l1s]
        items = [{"panel": "repeated count per unit", "series": s, "column": "repeated", "where": w} for s, w in by_l1]
        items += [{"panel": "repeated count per unit", "series": "untrained (null)", "column": "repeated_untrained",
                   "where": self._where(l0), "null": True},
                  {"panel": "repeated count per unit", "series": "rotated (null)", "column": "repeated_rotated",
                   "where": self._where(l0), "null": True}]
        items += [{"panel": "prunability (random knock-out)", "series": s, "column": "prunable_random", "where": w}
                  for s, w in by_l1]
        items += [{"panel": "prunability (random knock-out)", "series": "untrained (null)",
                   "column": "prunable_random, untrained", "where": self._where(l0), "null": True}]
        items += [{"panel": "prunability, λ = 0: orders", "series": name, "column": column, "where": self._where(l0)}
                  for name, column in (("random", "prunable_random"), ("targeted (by |r|)", "prunable_targeted"),
                                       ("by contribution", "prunable_contribution"))]
        items += [{"panel": "compressibility", "series": s, "column": "compressibility", "where": w} for s, w in by_l1]
        items += [{"panel": "compressibility", "series": "untrained (null)", "column": "compressibility_untrained",
                   "where": self._where(l0), "null": True}]
        return ev.width_series(self.members, items)

    def parts(self) -> pd.DataFrame:
        """The non-prunable and the non-redundant counts against width."""
        items = []
        for l1 in self.l1s:
            items += [{"panel": "non-prunable units", "series": f"λ = {fmt_l1(l1)}", "column": "nonprunable",
                       "where": self._where(l1)},
                      {"panel": "non-redundant units (groups of repeats)", "series": f"λ = {fmt_l1(l1)}",
                       "column": "nonredundant", "where": self._where(l1)}]
        return ev.width_series(self.members, items)

    def knockout(self, widths=(16, 128, 1024)) -> pd.DataFrame:
        """Agreement with the intact network against the fraction knocked out, at a few widths, λ = the first."""
        c = self.full["curves"]
        shown = [w for w in widths if w in set(c.hidden)] or [self.widest]
        c = c[(c.l1 == self.l1s[0]) & c.hidden.isin(shown)].assign(panel=lambda t: "width " + t.hidden.astype(str))
        return ev.curve_series(c, x="p", value="agreement", panel="panel", series="order", null=("random, untrained",))

    def capacity(self) -> pd.DataFrame:
        items = []
        for l1 in self.l1s:
            s = f"λ = {fmt_l1(l1)}"
            items += [{"panel": "||W1 - W1_0|| / ||W1_0||", "series": s, "column": "rel_dist", "where": self._where(l1)},
                      {"panel": "sum of ||u_i - u_i^0||", "series": s, "column": "unit_dist", "where": self._where(l1)},
                      {"panel": "sum of ||v_i|| ||u_i - u_i^0||", "series": s, "column": "capacity_sum",
                       "where": self._where(l1)},
                      {"panel": "the same / 5th-percentile margin", "series": s, "column": "capacity",
                       "where": self._where(l1)},
                      {"panel": "5th-percentile margin", "series": s, "column": "margin5", "where": self._where(l1)}]
        return ev.width_series(self.members, items)

    def exact(self) -> pd.DataFrame:
        items = []
        for l1 in self.l1s:
            items.append({"panel": "dead units", "series": f"λ = {fmt_l1(l1)}", "column": "dead", "where": self._where(l1)})
        for tol in ("1e-06", "0.0001", "0.01"):
            items += [{"panel": "positively parallel units, λ = 0", "series": f"1 - cos ≤ {float(tol):g}",
                       "column": f"merged_{tol}", "where": self._where(self.l1s[0])},
                      {"panel": "sign-flipped pairs, λ = 0", "series": f"1 - |cos| ≤ {float(tol):g}",
                       "column": f"flipped_{tol}", "where": self._where(self.l1s[0])}]
        return ev.width_series(self.members, items)

    def spectra_by_width(self) -> pd.DataFrame:
        items = []
        for l1 in self.l1s:
            items += [{"panel": "alpha of W1's spectrum", "series": f"λ = {fmt_l1(l1)}", "column": "alpha_w",
                       "where": self._where(l1)},
                      {"panel": "alpha of W1 - W1_0", "series": f"λ = {fmt_l1(l1)}", "column": "alpha_dw",
                       "where": self._where(l1)},
                      {"panel": "stable rank of W1 - W1_0", "series": f"λ = {fmt_l1(l1)}", "column": "stable_rank_dw",
                       "where": self._where(l1)}]
        return ev.width_series(self.members, items)

    def spectra_over_training(self) -> pd.DataFrame:
        s = self.spectra
        parts = []
        for column, matrix, panel in (("outlier_ratio", "W", "largest eigenvalue of W1 / at init"),
                                      ("bulk_ratio", "W", "median eigenvalue of W1 / at init"),
                                      ("alpha", "W", "alpha of W1"), ("alpha", "W - W0", "alpha of W1 - W1_0")):
            part = s[s.matrix == matrix].assign(panel=panel, _v=lambda t, c=column: t[c])
            parts.append(ev.curve_series(part, x="epoch", value="_v", panel="panel", series="setting"))
        return pd.concat(parts, ignore_index=True)

    def lowrank(self, widths=(16, 128, 1024)) -> pd.DataFrame:
        low = self.full["lowrank"]
        shown = [w for w in widths if w in set(low.hidden)] or [self.widest]
        low = low[(low.l1 == self.l1s[0]) & low.hidden.isin(shown)].assign(
            panel=lambda t: "width " + t.hidden.astype(str),
            kind=lambda t: t.kind.map({"top": "top-k directions", "random": "k random directions, same energy"}))
        return ev.curve_series(low, x="k", value="acc", panel="panel", series="kind",
                               null=("k random directions, same energy",))

    def ticket_view(self) -> tuple[pd.DataFrame, tuple]:
        t = self.tickets
        orig = t[t.variant == "original"].test_acc.to_numpy()
        e = ev.seed_estimates(t[t.variant == "original"], "test_acc", ["k"]).iloc[0]
        return ev.ticket_series(t), (e.value, e.low, e.high) if len(orig) else None

    def seeds_agree(self) -> pd.DataFrame:
        pairs, items = self.full["pairs"], []
        for l1 in self.l1s:
            items += [{"panel": "droppable units shared after matching", "series": f"λ = {fmt_l1(l1)}",
                       "column": "overlap", "l1": l1},
                      {"panel": "repeated pairs shared after matching", "series": f"λ = {fmt_l1(l1)}",
                       "column": "repeated_agree", "l1": l1}]
        items += [{"panel": "droppable units shared after matching", "series": "chance", "column": "overlap_chance",
                   "l1": self.l1s[0], "null": True},
                  {"panel": "repeated pairs shared after matching", "series": "chance", "column": "repeated_chance",
                   "l1": self.l1s[0], "null": True}]
        return ev.pair_series(pairs, items)

    def clusters(self, widths=(16, 128, 1024)) -> pd.DataFrame:
        c = self.full["clusters"]
        shown = [w for w in widths if w in set(c.hidden)] or [self.widest]
        c = c[(c.l1 == self.l1s[0]) & c.hidden.isin(shown)].assign(panel=lambda t: "width " + t.hidden.astype(str))
        c = c.assign(which=lambda t: t.which.map({"trained": "trained W1", "init": "W1 at init", "rotated": "rotated (null)",
                                                  "update": "the update W1 - W1_0",
                                                  "update, rotated": "the update, rotated (null)"}))
        return ev.curve_series(c, x="k", value="silhouette", panel="panel", series="which",
                               null=("W1 at init", "rotated (null)", "the update, rotated (null)"))

    def regimes(self) -> pd.DataFrame:
        """Key measures against width in every regime, λ = the first."""
        items = []
        for name, part in ev.regime_slices(self.members).items():
            part = part[part.l1 == self.l1s[0]]
            for column, panel in (("repeated", "repeated count per unit"), ("prunable_random", "prunability"),
                                  ("rel_dist", "||W1 - W1_0|| / ||W1_0||"), ("test_acc", "test accuracy")):
                items.append(ev.width_series(part, [{"panel": panel, "series": name, "column": column}]))
        return pd.concat(items, ignore_index=True)

    # ------------------------------------------------------------------------------------------ words

    def verdicts(self, l1: float) -> pd.DataFrame:
        return ev.verdicts(self.members, self.full, self.tickets, l1)

    def growth(self) -> pd.DataFrame:
        return ev.growth_table(self.members)

    def profile(self, hidden: int = 16) -> pd.DataFrame:
        if hidden not in set(self.full["members"].hidden):
            return pd.DataFrame({"measure": [f"width {hidden} was not trained here"]})
        return ev.profile(self.members, hidden, self.l1s[0])

    def lowrank_text(self) -> str:
        low = self.full["lowrank"]
        low = low[(low.l1 == self.l1s[0]) & (low.hidden == self.widest)]
        k = min(LOW_RANK_K, int(low["rank"].max()))
        top = ev.seed_estimates(low[(low.kind == "top") & (low.k == k)], "acc", ["k"]).iloc[0]
        rnd = ev.seed_estimates(low[(low.kind == "random") & (low.k == k)], "acc", ["k"]).iloc[0]
        energy = ev.seed_estimates(low[(low.kind == "top") & (low.k == k)], "energy", ["k"]).iloc[0]
        full = ev.seed_estimates(self.full["members"][(self.full["members"].hidden == self.widest)
                                                      & (self.full["members"].l1 == self.l1s[0])], "test_acc", ["hidden"]).iloc[0]
        return (f"at width {self.widest}, the rank-{k} update keeps {interval(energy.value, energy.low, energy.high, sign=False)} "
                f"of the update's energy and reaches a test accuracy of {interval(top.value, top.low, top.high, sign=False)} "
                f"(the trained network: {interval(full.value, full.low, full.high, sign=False)}; {k} random directions "
                f"of the same energy: {interval(rnd.value, rnd.low, rnd.high, sign=False)})")

    def equal_loss_text(self) -> str:
        e = self.members[(self.members.stop_loss.map(ev.rule_of) == ev.EQUAL) & (self.members.depth == 1)]
        reached = e.groupby("hidden").reached.all()
        epochs = e.groupby("hidden").epochs.mean()
        widths = [str(h) for h, ok in reached.items() if ok]
        return (f"below {self.equal_loss} the widths {', '.join(widths) or 'none'} stopped (after "
                f"{', '.join(f'{epochs[int(h)]:.1f}' for h in widths)} epochs on average); the others trained all "
                f"{self.epochs} epochs and are left out of the equal-loss trends")

    def verdicts_in_words(self, l1: float) -> str:
        """One line per hypothesis: its outcome in every regime that measures it."""
        table = self.verdicts(l1)
        regimes = [c for c in table.columns if c not in ("hypothesis", "statistic, decided against")]
        lines = []
        for _, row in table.iterrows():
            said = [f"{row[r].split(':')[0]} ({r})" for r in regimes if not str(row[r]).startswith("—")]
            if said:
                lines.append(f"- **{row.hypothesis}**: {'; '.join(said)}.")
        return "\n".join(lines)

    def profile_text(self, hidden: int = 16) -> str:
        """The width-``hidden`` network in one sentence (λ = the first, depth 1, fixed epochs)."""
        m = self.full["members"]
        m = m[(m.hidden == hidden) & (m.l1 == self.l1s[0])]
        if m.empty:
            return f"width {hidden} was not trained here"
        return (f"its {hidden} units hold {m.nonredundant.mean():.1f} groups of repeats on average (a unit repeats "
                f"{m.repeated.mean():.2f} others, the untrained network's {m.repeated_untrained.mean():.2f}); random "
                f"knock-out removes {m.prunable_random.mean():.0%} of them before fewer than {AGREEMENT:.0%} of the test "
                f"predictions stay, so {m.nonprunable.mean():.1f} of {hidden} are needed; {m.dead.mean():.1f} are dead "
                f"and {m['merged_0.0001'].mean():.1f} exactly mergeable; its first layer moved "
                f"{m.rel_dist.mean():.0%} of its initial norm; and its {hidden} eigenvalues are too few for a tail fit")

    def capacity_text(self) -> str:
        """Where the 5th-percentile margin is positive (the capacity ratio defined), in words."""
        m = self.full["members"]
        positive = m.groupby("hidden").margin5.mean()
        widths = [str(h) for h, v in positive.items() if v > 0]
        if not widths:
            return ("here the 5th-percentile margin is negative at every width (more than 5% of the training images "
                    "are still misclassified after these epochs), so the ratio is undefined and only its numerator and "
                    "the margin are drawn")
        return f"the margin is positive, and the ratio defined, at widths {', '.join(widths)}"

    def clusters_text(self) -> str:
        c = self.full["clusters"]
        c = c[(c.l1 == self.l1s[0]) & (c.hidden == self.widest) & (c.k == 4)]
        said = []
        names = {"trained": "trained", "init": "at init", "rotated": "rotated null", "update": "the update W1 - W1_0",
                 "update, rotated": "the update rotated (its null)"}
        for which in names:
            e = ev.seed_estimates(c[c.which == which], "angle", ["k"])
            s = ev.seed_estimates(c[c.which == which], "silhouette", ["k"])
            if len(e):
                e, s = e.iloc[0], s.iloc[0]
                said.append(f"{names[which]}: silhouette {interval(s.value, s.low, s.high, sign=False)}, mean angle to the "
                            f"nearest centre {e.value:.1f}°")
        return "; ".join(said)


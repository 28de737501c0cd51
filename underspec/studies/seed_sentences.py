"""The sentences of the chapter "How many seeds?", every number computed from the tables of a ``SeedStudy``
(and of the committed full-size study) and written with its interval."""

from __future__ import annotations

import pandas as pd

from ..metrics.uncertainty import Estimate
from ..text import interval, number
from .evidence import MARGIN_SHARE, SHOWN, equivalence
from .seed_verdicts import committed_curves


def _at(curve: pd.DataFrame, kind: str, m: int) -> str:
    row = curve[(curve.kind == kind) & (curve.m == m)].iloc[0]
    return interval(row.value, row.low, row.high, sign=False)


def _reached(curve: pd.DataFrame, resolution: float) -> int | None:
    two = curve[curve.kind == "two references"].sort_values("m")
    for row in two.itertuples():
        if equivalence(Estimate(row.value, row.low, row.high, "", 0), resolution) == SHOWN:
            return int(row.m)
    return None


def curve_sentence(curve: pd.DataFrame, paper_seeds: int, resolution: float, where: str = "Here") -> str:
    """Where two references reach 0, what the paper's seeds give, and how the held-out curve flattens."""
    two, held = (curve[curve.kind == k].sort_values("m") for k in ("two references", "held-out"))
    reached = _reached(curve, resolution)
    said = [f"{where}, two references of one seed each are at alpha-hat {_at(curve, 'two references', 1)}"]
    said.append(f"two references of M seeds come within the grid's resolution of 0 (the whole 95% interval within "
                f"±{resolution:g}) from M = {reached}" if reached else
                f"no M up to {int(two.m.max())} brings two references within the grid's resolution of 0 (the whole "
                f"95% interval within ±{resolution:g})")
    if paper_seeds in set(two.m):
        said.append(f"with the paper's {paper_seeds} seeds on each side it is {_at(curve, 'two references', paper_seeds)}")
    first, last = held.iloc[0], held.iloc[-1]
    said.append(f"one held-out seed is at {_at(curve, 'held-out', int(first.m))} against one other seed and "
                f"{_at(curve, 'held-out', int(last.m))} against {int(last.m)}")
    return "; ".join(said) + " (95% intervals, seeds resampled)."


def committed_sentence(committed: dict | None, paper_seeds: int, resolution: float) -> str:
    if committed is None:
        return ("The full-size study (40 seeds of full-size Fashion-MNIST at the paper's 46,900 steps, "
                "`python scripts/seed_study.py`) is not yet run on this checkout.")
    s, p = committed["study"], committed["provenance"]
    curve = committed_curves(committed)
    where = (f"On full-size {s['dataset']} ({s['n_seeds']} seeds at λ = {s['l1']:g}, C = {s['n_classes']}, "
             f"{s['steps']:,} SGD steps, {s['n_test']:,} test images; committed, trained by package commit "
             f"{p['trained_with_package_code'][:12]} on {p['trained']})")
    return curve_sentence(curve, paper_seeds, resolution, where=where)


def separation_sentence(shares: pd.DataFrame) -> str:
    parts = []
    for metric in ("alpha_hat", "churn", "ece"):
        row = shares[(shares.metric == metric) & (shares.other == "accuracy")].iloc[0]
        name = {"alpha_hat": "alpha-hat", "churn": "churn", "ece": "ECE"}[metric]
        parts.append(f"{name} tells apart {number(row.share, sign=False)} of them "
                     f"(above the 5% of chance by {interval(row.excess, row.low, row.high)})")
    n = int(shares[(shares.metric == "alpha_hat") & (shares.other == "accuracy")].pairs.iloc[0])
    back = shares[(shares.metric == "accuracy") & (shares.other == "alpha_hat")].iloc[0]
    return (f"Of the {n} setting pairs that accuracy cannot tell apart, " + "; ".join(parts) + ". The other way "
            f"round, of the {int(back.pairs)} pairs alpha-hat cannot tell apart, accuracy tells apart "
            f"{number(back.share, sign=False)}.")


def laws_sentence(laws: pd.DataFrame, sources: pd.DataFrame) -> str:
    best = laws.sort_values("n_seeds").iloc[-1]
    grid = laws[laws.setting == "grid"]
    holds = sum(equivalence(Estimate(r.gap, r.gap_low, r.gap_high, "", 0), MARGIN_SHARE * r.error) == SHOWN
                for r in grid.itertuples())
    above = int((grid.gap_low > 0).sum())
    below = int((grid.gap_high < 0).sum())
    said = [f"At the configuration with {int(best.n_seeds)} seeds, disagreement minus test error is "
            f"{interval(best.gap, best.gap_low, best.gap_high)} at a test error of {number(best.error, sign=False)}; "
            f"over the {len(grid)} settings of the paper grid ({int(grid.n_seeds.iloc[0])} seeds each) the equality "
            f"holds within a tenth of the error in {holds} of them, seeds disagree more than they err in {above} and "
            f"less in {below}"]
    said.append(f"the observed seed standard deviation of accuracy is {number(best.observed_sd, 4, sign=False)} "
                f"against {number(best.predicted_sd, 4, sign=False)} predicted from independent images (ratio "
                f"{interval(best.ratio, best.ratio_low, best.ratio_high, sign=False)})")
    both = sources.iloc[0]
    others = "; ".join(f"{r.source} {interval(r.value, r.low, r.high, sign=False)}" for r in sources.iloc[1:].itertuples())
    said.append(f"seeds that vary both sources disagree on {interval(both.value, both.low, both.high, sign=False)} of "
                f"the test images; {others}")
    return ". ".join(s[0].upper() + s[1:] for s in said) + " (95% intervals, seeds and test images resampled)."


def kernel_sentence(alignment: pd.DataFrame, moved: pd.DataFrame) -> str:
    widths = sorted(alignment.hidden.unique())
    lo, hi = widths[0], widths[-1]

    def at(kernel, record, width):
        row = alignment[(alignment.kernel == kernel) & (alignment.record == record) & (alignment.hidden == width)].iloc[0]
        return interval(row.value, row.low, row.high, sign=False)

    moves = moved.groupby(["kernel", "hidden"]).movement.mean()
    dist = moved.groupby("hidden").distance.mean()
    if moves[("ntk", hi)] < moves[("ntk", lo)]:
        lazier = "the wider network's kernel moves less" + (", as in the lazy regime, where the kernel stays at its "
                                                              "initial value" if moves[("ntk", hi)] < 0.1 else
                                                              ", yet it is far from the lazy regime, where the kernel "
                                                              "would stay at its initial value")
    else:
        lazier = "the wider network's kernel moves no less"
    return (f"After training, two seeds' NTKs align {at('ntk', 'final', lo)} at width {lo} and "
            f"{at('ntk', 'final', hi)} at width {hi} (untrained: {at('ntk', 'init', lo)} and {at('ntk', 'init', hi)}); "
            f"their conjugate kernels {at('ck', 'final', lo)} and {at('ck', 'final', hi)} (untrained: "
            f"{at('ck', 'init', lo)} and {at('ck', 'init', hi)}); 95% intervals, seeds and probe images resampled. "
            f"The NTK moved from its initial value by {number(moves[('ntk', lo)], sign=False)} of its norm at width "
            f"{lo} and {number(moves[('ntk', hi)], sign=False)} at width {hi}, while the parameters moved "
            f"{number(dist[lo], sign=False)} and {number(dist[hi], sign=False)} of theirs: {lazier}.")


def surrogate_sentence(surrogates: pd.DataFrame) -> str:
    lines = []
    for layer, part in surrogates.groupby("layer"):
        per_seed = part.drop_duplicates("seed")
        knn, ncc = per_seed.needed_knn.to_numpy(), per_seed.needed_ncc.to_numpy()
        same = "the same k for every seed" if len(set(knn)) == 1 else f"k from {knn.min()} to {knn.max()} by seed"
        best = part.groupby("seed").knn.max().mean()
        lines.append(f"layer {layer}: k-NN reaches {number(best, sign=False)} and needs {same} (seeds: "
                     f"{', '.join(map(str, knn))}); nearest centre needs {', '.join(map(str, ncc))}")
    return ("The smallest k within one standard error of a seed's best accuracy: " + "; ".join(lines) + ". "
            + ("Two seeds need the same number of components in every layer." if
               all(part.drop_duplicates('seed').needed_knn.nunique() == 1 for _, part in surrogates.groupby("layer"))
               else "Two seeds do not always need the same number of components."))


def regimes_sentence(study, committed: dict | None) -> str:
    many = study.specs["many"].grid
    said = (f"This build: {study.data.name}, the paper grid with {len(study.grid.seeds)} seeds per setting and one "
            f"configuration with {len(many.seeds)}.")
    if committed is not None:
        s = committed["study"]
        said += (f" Committed: full-size {s['dataset']}, {s['n_seeds']} seeds of one configuration at "
                 f"{s['steps']:,} SGD steps (`results/fashion-mnist-40-seeds/`).")
    return said + " A margin of a claim of no effect is a tenth of its signal, or the grid's resolution for alpha-hat."



def regime_sentence(study, committed: dict | None) -> str:
    """The regime up front: data, SGD steps against the paper's, accuracy reached, distance from init."""
    r = study.regime()
    b = study.base
    said = (f"{study.data.name}: {len(study.data.y_train):,} training and {study.n_test:,} test images, "
            f"{r['steps']:,} SGD steps ({r['steps'] / r['paper_steps']:.0%} of the paper's {r['paper_steps']:,}); at "
            f"λ = {b.l1[0]:g}, C = {b.n_classes[0]} the {len(study.specs['many'].grid.seeds)} seeds reach a mean test "
            f"accuracy of {number(r['accuracy'], sign=False)}, their parameters {number(r['distance'], sign=False)} of "
            "their initial norm from init.")
    if committed is not None:
        s, m = committed["study"], committed["members"]
        said += (f" Committed: full-size {s['dataset']}, {s['n_train']:,} training and {s['n_test']:,} test images, "
                 f"{s['steps']:,} SGD steps (the paper's count); its {s['n_seeds']} seeds reach "
                 f"{number(m.test_acc.mean(), sign=False)} test accuracy, {number(m.rel_change.mean(), sign=False)} "
                 "from init.")
    return said

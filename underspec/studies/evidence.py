"""What every claim rule is built from (``claims``): the outcomes, a verdict, a metric of a compare table as
seed-pair arrays with its seed-level (and, with example blocks, seed-and-example) intervals, and the tests of an
effect and of no effect."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import UnderspecError
from ..metrics.uncertainty import Estimate, crossed_estimate, estimate, pair_array, pair_means
from ..text import interval

SHOWN, CONTRADICTED, INCONCLUSIVE = "shown", "contradicted", "inconclusive"
ARTEFACT, DEAD_ARTEFACT, PLATEAU = "artefact of the null", "artefact of dead units", "plateau: peak not identifiable"
NOT_TESTABLE = "not testable with this data"
VERDICTS = (SHOWN, CONTRADICTED, INCONCLUSIVE, ARTEFACT, DEAD_ARTEFACT, PLATEAU, NOT_TESTABLE)
# What the report states (its text and Figure 3.1), quoted here once.
PAPER_BEST_PE = 0.48
PAPER_BEST_PE_L1 = 0.001
PAPER_BEST_PE_C = 9
PAPER_PE_PEAK_L1 = 0.005
CLASSES = tuple(range(3, 11))  # C = 2 left out
MARGIN_SHARE = 0.1  # "barely" / "near": within a tenth of the signal at lambda = 0 (or of PE's range over the grid)


@dataclass
class Verdict:
    """One claim judged: the claim, what the paper says, the statistic with its value and interval, a sentence
    of what this run finds (numbers computed here), the rule, and the verdict (one of ``VERDICTS``)."""

    claim: str
    paper: str
    statistic: str
    value: float
    low: float
    high: float
    finding: str
    rule: str
    verdict: str
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        return {k: getattr(self, k) for k in ("claim", "verdict", "statistic", "value", "low", "high", "finding",
                                              "rule", "paper")}


class Evidence:
    """A metric of a compare table as seed-pair arrays over configurations (l1, C), C in ``classes``.

    ``minus``: a null column subtracted pair by pair (``"null"``: untrained networks, ``"null_structured"``,
    ``"live"``: PE's chance with the pair's k live units, 1/k); ``headroom``: (metric - null) / (1 - null), the
    share of the room above chance that is used. A table with a ``block`` column (``cka_table``, a shift
    table with blocks) holds the value on every example (block -1) and with each block of examples left out:
    its intervals resample the seeds and the examples together (``uncertainty.crossed_estimate``).
    """

    def __init__(self, table: pd.DataFrame, metric, *, target: str = "params", minus: str | None = None,
                 headroom: bool = False, classes=CLASSES):
        if not isinstance(table, pd.DataFrame) or not {"seed_a", "seed_b", "l1", "n_classes"} <= set(table):
            raise UnderspecError("the claim rules need a compare table (one row per seed pair), e.g. "
                                 "underspec.compare(run, 'all', null=('untrained', 'structured'))")
        part = table[(table.target == target) & table.n_classes.isin(classes)].copy()
        if part.empty:
            raise UnderspecError(f"no {target} rows with C in {list(classes)} in the table")
        if callable(metric):  # a derived value of each pair's row
            value = metric(part)
        else:
            if metric not in part:
                raise UnderspecError(f"the table has no {metric!r} column: compare with what the rule needs")
            value = part[metric]
            if minus == "live":
                null = live_chance(part)
            elif minus is not None:
                column = f"{metric}_{minus}" if minus in ("null", "null_structured", "random_pairing") else minus
                if column not in part:
                    raise UnderspecError(f"the table has no {column!r} column: compare with null={minus!r}")
                null = part[column]
            if minus is not None:
                value = (value - null) / (1 - null) if headroom else value - null
        part["_value"] = value
        self.blocks = None
        if "block" in part:
            blocks = [part[part.block == b] for b in sorted(set(part.block) - {-1})]
            part = part[part.block == -1]
            self.blocks = np.stack([pair_array(b, "_value", ["l1", "n_classes"])[2] for b in blocks]) if blocks else None
        self.index, self.seeds, self.v = pair_array(part, "_value", ["l1", "n_classes"])

    def means(self) -> pd.Series:
        """Mean over the pairs of every configuration, indexed by (l1, n_classes)."""
        return pd.Series(pair_means(self.v), index=self.index)

    def estimate(self, statistic, **options) -> Estimate:
        """``statistic(means: Series by (l1, n_classes)) -> float`` with its seed-level interval (seeds and
        examples, where the table has example blocks and the method is the default jackknife)."""
        def of_means(m):
            return statistic(pd.Series(m, index=self.index))
        if self.blocks is not None and options.get("method", "jackknife") == "jackknife":
            return crossed_estimate(self.v, self.blocks, of_means, level=options.get("level", 0.95))
        return estimate(self.v, of_means, **options)


def by_c(means: pd.Series) -> pd.Series:
    return means.groupby(level="n_classes").mean()


def by_l1(means: pd.Series) -> pd.Series:
    return means.groupby(level="l1").mean()


def slope(series: pd.Series) -> float:
    """Least-squares slope of a series against its (numeric) index; per unit of the index."""
    x, y = np.asarray(series.index, dtype=float), series.to_numpy(dtype=float)
    ok = np.isfinite(y)
    return float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 else float("nan")


def _peak_position(curve: pd.Series, l1s: list) -> float:
    """The position in ``l1s`` of the curve's maximum (NaN for a draw without pairs)."""
    return float(l1s.index(curve.idxmax())) if curve.notna().any() else float("nan")


def _null_name(column: str, alive: bool = False) -> str:
    name = {"null": "untrained null", "null_structured": "structured null", "live": "live-unit chance 1/k",
            "fixed": "fixed-similarity null"}.get(column, column)
    return f"{name} with the pair's live units" if alive and column != "live" else name


def _classes(classes) -> str:
    classes = sorted(classes)
    return f"{classes[0]}..{classes[-1]}" if len(classes) > 1 else str(classes[0])


def _interval(e: Estimate, digits: int = 3) -> str:
    return interval(e.value, e.low, e.high, digits)


def _direction(e: Estimate) -> int:
    """+1 / -1 when the interval lies above / below zero, 0 when it includes zero or is undefined."""
    if not np.isfinite(e.low) or not np.isfinite(e.high):
        return 0
    return 1 if e.low > 0 else -1 if e.high < 0 else 0


def _untestable(e: Estimate) -> bool:
    return not (np.isfinite(e.value) and np.isfinite(e.low) and np.isfinite(e.high))


def effect(e: Estimate, direction: int = 1) -> str:
    """Three outcomes for a claimed effect in ``direction`` (+1 a rise, -1 a fall): shown when the interval
    excludes no effect that way, contradicted when it excludes it the other way, inconclusive otherwise."""
    if _untestable(e):
        return NOT_TESTABLE
    found = _direction(e)
    return SHOWN if found == direction else CONTRADICTED if found == -direction else INCONCLUSIVE


def equivalence(e: Estimate, margin: float) -> str:
    """Three outcomes for a claim of no effect, within +-``margin``: shown when the whole interval lies inside,
    contradicted when it lies entirely outside, inconclusive when it straddles the margin."""
    if _untestable(e) or not np.isfinite(margin) or margin <= 0:
        return NOT_TESTABLE
    if -margin <= e.low and e.high <= margin:
        return SHOWN
    if e.low > margin or e.high < -margin:
        return CONTRADICTED
    return INCONCLUSIVE


def live_chance(part: pd.DataFrame) -> pd.Series:
    """PE's chance level over the units alive in both networks of each pair: 1/k for k such units (two
    unrelated matchings of k units agree on one of them on average); NaN with none alive."""
    if not {"dead_a", "dead_b"} <= set(part):
        raise UnderspecError("the table has no dead-unit counts: compare with data=... (its dead_a, dead_b)")
    hidden = part.attrs.get("hidden", 16)
    k = hidden - np.maximum(part.dead_a, part.dead_b)  # at least this many units are alive in both
    return (1.0 / k).where(k > 0)


def grid_margin(table: pd.DataFrame, metric: str, *, target: str = "params", classes=CLASSES,
                minus: str | None = None) -> float:
    """The margin of a claim of no effect: ``MARGIN_SHARE`` of the range of the configuration means over the
    grid (every lambda and C ≥ 3) of the statistic the claim judges (the metric minus the null ``minus`` that
    decides it): a change smaller than that is small next to how much that statistic moves in this study."""
    means = Evidence(table, metric, target=target, minus=minus, classes=classes).means()
    return float(MARGIN_SHARE * (means.max() - means.min()))


def _level_null(table: pd.DataFrame, metric: str) -> str:
    """The null that decides the level of a trained network's metric: the structured null where the table has
    it (PROTOCOL section 6), else the untrained one (older tables)."""
    return "null_structured" if f"{metric}_null_structured" in table else "null"


def _live_null(table: pd.DataFrame, metric: str) -> str:
    """The null of a live-unit metric: the structured null with the pair's live units, else the untrained one
    with the pair's live counts, else (older tables, PE only) chance 1/k."""
    for null in ("null_structured", "null"):
        if f"{metric}_{null}" in table:
            return null
    if metric == "pe_alive":
        return "live"
    raise UnderspecError(f"the table has no null for {metric}: compare with null=('untrained', 'structured')")


def _who(alive: bool) -> str:
    return "units alive in both networks" if alive else "all units"

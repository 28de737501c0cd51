"""Seeds as a statistic: how many seeds a study needs (the alpha-trimming level against references of M seeds),
how well the alpha-trimming level separates settings beside accuracy, churn and calibration, and the laws of
seed variance, each with intervals that resample the seeds and the test images.

- ``seeds_curve`` / ``curve_estimates``: alpha-hat between two disjoint M-seed references (their mixtures) and
  between a held-out model and an M-seed reference, for M = 1, 2, 4, ... (arXiv 2406.08307). An ensemble of M
  seeds represents "the" trained model once the first reaches 0; the second plateaus at the level that
  separates one model from the population.
- ``replicates`` / ``replicate_estimate`` / ``separations``: a statistic of seeds measured on test images with
  its delete-one-seed and delete-a-block-of-images jackknife replicates, kept so that differences between
  settings get intervals too (the same seeds in both: the replicates subtract).
- ``gde_gap``: the generalisation disagreement equality (Jiang et al. 2022): expected disagreement between two
  seeds minus their expected test error, per seed pair and test image (mean 0 when the law holds).
- ``jordan_spread``: the seed standard deviation of test accuracy predicted from per-example error rates as if
  the examples were independent (Jordan 2024), beside the observed one.
- ``twin_disagreement``: disagreement between each seed and its one-ulp twin, the rounding floor's diversity
  (Summers and Dinneen 2021 compare it with every other source).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..errors import UnderspecError
from .predictions import expected_calibration_error
from .trimming import alpha_hats, alpha_hats_loo, scalar_outputs
from .uncertainty import Estimate

KINDS = ("two references", "held-out")
LEVEL = 0.95


def doubling(n_max: int) -> list[int]:
    """1, 2, 4, ... up to ``n_max`` (and ``n_max`` itself when it is not a power of two)."""
    out = [1]
    while out[-1] * 2 <= n_max:
        out.append(out[-1] * 2)
    return out + ([n_max] if n_max > out[-1] else [])


def seeds_curve(values, *, ms=None, n_draws: int = 20, n_boot: int = 100, eps: float = 0.01,
                seed: int = 0) -> pd.DataFrame:
    """alpha-hat against references of M seeds, for every M of ``ms`` (default ``doubling``: up to S // 2 for two
    references, S - 1 for a held-out model), ``n_draws`` random draws of the seeds each (every draw of
    disjoint seed sets; fewer where there are fewer distinct ones).

    values: (S, T) every seed's scalar output on the test images (``trimming.scalar_outputs``). One row per
    draw: ``kind`` ("two references": the mixture of M seeds trimmed against the mixture of M others;
    "held-out": one seed against the mixture of M others), ``m``, ``draw``, ``seeds_a``, ``seeds_b`` (positions
    in the seed axis), ``alpha_hat``."""
    x = torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values).double()
    if x.dim() != 2 or x.shape[0] < 2:
        raise UnderspecError(f"seeds_curve needs the values of at least 2 seeds on the test images, (S, T), got "
                             f"shape {tuple(x.shape)}")
    s = x.shape[0]
    rng = np.random.default_rng(seed)
    rows = []
    for kind in KINDS:
        top = s // 2 if kind == "two references" else s - 1
        for m in (doubling(top) if ms is None else [m for m in ms if m <= top]):
            size_a = m if kind == "two references" else 1
            drawn = (rng.permutation(s)[:size_a + m] for _ in range(4 * n_draws))
            unique = dict.fromkeys(tuple(sorted(d[:size_a])) + tuple(sorted(d[size_a:])) for d in drawn)
            draws = list(unique)[:n_draws]  # distinct draws, in the order drawn
            a = torch.tensor([d[:size_a] for d in draws])  # (D, size_a)
            b = torch.tensor([d[size_a:] for d in draws])  # (D, m)
            found = alpha_hats(x[a], x[b], n_boot=n_boot, eps=eps, seed=seed)
            rows += [{"kind": kind, "m": m, "draw": i, "seeds_a": list(map(int, d[:size_a])),
                      "seeds_b": list(map(int, d[size_a:])), "alpha_hat": float(v)}
                     for i, (d, v) in enumerate(zip(draws, found))]
    return pd.DataFrame(rows)


def curve_difference(draws: pd.DataFrame, kind: str, m: int, other: int, n_seeds: int, *,
                     level: float = LEVEL) -> Estimate:
    """The mean alpha-hat of ``kind`` at M = ``m`` minus that at M = ``other``, from a ``seeds_curve`` table,
    with the delete-one-seed jackknife interval (for each seed, the two means over the draws that avoid it;
    NaN where fewer than 3 seeds leave draws at both)."""
    parts = [draws[(draws.kind == kind) & (draws.m == x)] for x in (m, other)]
    if any(p.empty for p in parts):
        raise UnderspecError(f"the curve has no {kind!r} draws at M = {m} and {other}")
    used = [[set(a) | set(b) for a, b in zip(p.seeds_a, p.seeds_b)] for p in parts]
    values = [p.alpha_hat.to_numpy() for p in parts]
    value = float(values[0].mean() - values[1].mean())
    loo = []
    for k in range(n_seeds):
        keep = [np.array([k not in u for u in us]) for us in used]
        if all(x.any() for x in keep):
            loo.append(values[0][keep[0]].mean() - values[1][keep[1]].mean())
    if len(loo) < 3:
        return Estimate(value, np.nan, np.nan, "jackknife", n_seeds)
    loo = np.array(loo)
    half = stats.t.ppf((1 + level) / 2, len(loo) - 1) * math.sqrt((len(loo) - 1) / len(loo)
                                                                  * ((loo - loo.mean()) ** 2).sum())
    return Estimate(value, value - half, value + half, "jackknife", n_seeds)


def curve_estimates(draws: pd.DataFrame, n_seeds: int, *, level: float = LEVEL) -> pd.DataFrame:
    """The mean alpha-hat of every (kind, M) of a ``seeds_curve`` table with its interval, and the spread of
    the draws. Interval: the delete-one-seed jackknife over the seeds (the mean over the draws that avoid
    seed k, for every k; t quantile with one degree of freedom fewer than the deletions that leave draws), as
    the seed-pair intervals of ``uncertainty.estimate`` (pairs are the draws with M = 1); the test images are
    resampled inside each alpha-hat (bootstrap halves). NaN interval where fewer than 3 deletions leave draws.
    ``spread_low`` / ``spread_high``: the 2.5% and 97.5% quantiles of the draws (what one study with M seeds
    may see)."""
    rows = []
    for (kind, m), part in draws.groupby(["kind", "m"], sort=False):
        used = [set(a) | set(b) for a, b in zip(part.seeds_a, part.seeds_b)]
        v = part.alpha_hat.to_numpy()
        loo = np.array([v[[k not in u for u in used]].mean() for k in range(n_seeds)
                        if any(k not in u for u in used)])
        value = float(v.mean())
        low = high = float("nan")
        if len(loo) >= 3:
            half = stats.t.ppf((1 + level) / 2, len(loo) - 1) * math.sqrt(
                (len(loo) - 1) / len(loo) * ((loo - loo.mean()) ** 2).sum())
            low, high = value - half, value + half
        rows.append({"kind": kind, "m": int(m), "value": value, "low": low, "high": high,
                     "spread_low": float(np.quantile(v, 0.025)), "spread_high": float(np.quantile(v, 0.975)),
                     "n_draws": len(v)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ statistics of seeds on images, replicated

def _blocks(n_examples: int, n_blocks: int) -> np.ndarray:
    if n_examples < 2 * n_blocks:
        raise UnderspecError(f"{n_examples} test images are too few for {n_blocks} blocks")
    return np.arange(n_examples) * n_blocks // n_examples


def replicates(statistic, n_seeds: int, n_examples: int, *, n_blocks: int = 10) -> np.ndarray:
    """``statistic(keep_seeds, keep_examples)`` (bool (S,), bool (N,) -> float) on everything, then with each seed
    left out, then with each of ``n_blocks`` contiguous blocks of examples left out: (1 + S + B,). The
    replicates of ``uncertainty.seed_image_estimate``, kept: two settings measured with the same seeds and
    images give the replicates of their difference by subtraction (``replicate_estimate``)."""
    if n_seeds < 3:
        raise UnderspecError(f"intervals over seeds need at least 3 seeds, got {n_seeds}")
    block = _blocks(n_examples, n_blocks)
    seeds, examples = np.ones(n_seeds, dtype=bool), np.ones(n_examples, dtype=bool)
    out = [statistic(seeds, examples)]
    out += [statistic(np.arange(n_seeds) != k, examples) for k in range(n_seeds)]
    out += [statistic(seeds, block != b) for b in range(n_blocks)]
    return np.array(out, dtype=float)


def replicate_estimate(reps: np.ndarray, n_seeds: int, *, level: float = LEVEL) -> Estimate:
    """The value (reps[0]) with its crossed jackknife interval (seeds' and image blocks' variances added, t
    quantile with S - 1 degrees of freedom), from ``replicates`` (or a difference of two)."""
    reps = np.asarray(reps, dtype=float)
    by_seed, by_block = reps[1:1 + n_seeds], reps[1 + n_seeds:]
    if not np.isfinite(reps).all():
        return Estimate(float(reps[0]), np.nan, np.nan, "crossed jackknife", n_seeds)
    variance = sum((len(d) - 1) / len(d) * ((d - d.mean()) ** 2).sum() for d in (by_seed, by_block))
    half = stats.t.ppf((1 + level) / 2, n_seeds - 1) * math.sqrt(variance)
    return Estimate(float(reps[0]), float(reps[0] - half), float(reps[0] + half), "crossed jackknife", n_seeds)


def separations(reps: np.ndarray, n_seeds: int, *, level: float = LEVEL) -> np.ndarray:
    """Which settings a metric tells apart: (K, K) bool, True where the interval of the difference between
    settings i and j (the same seeds and images, ``replicate_estimate`` of the replicates' difference) excludes
    0. reps: (K, 1 + S + B), one row of ``replicates`` per setting."""
    k = len(reps)
    out = np.zeros((k, k), dtype=bool)
    for i in range(k):
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = replicate_estimate(reps[i] - reps[j], n_seeds, level=level).excludes(0.0)
    return out


def check_seed_logits(logits, labels, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The seeds' logits (S, T, C) as float64 and the labels (T,), or one clear error for what no statistic of
    seeds can use: NaN or infinite logits (a diverged seed), an empty test set, a single seed."""
    logits, labels = torch.as_tensor(logits).double(), torch.as_tensor(labels)
    if logits.dim() != 3 or labels.dim() != 1 or logits.shape[1] != len(labels):
        raise UnderspecError(f"{what} needs logits (S, T, C) and labels (T,), got {tuple(logits.shape)} and "
                             f"{tuple(labels.shape)}")
    if logits.shape[1] == 0:
        raise UnderspecError(f"{what} needs at least one test image, got an empty test set")
    if logits.shape[0] < 2:
        raise UnderspecError(f"{what} compares seeds: it needs the logits of at least 2 seeds, got "
                             f"{logits.shape[0]}; train more seeds")
    if not bool(torch.isfinite(logits).all()):
        raise UnderspecError(f"{what}: the logits hold NaN or infinite values (a diverged model?): leave that "
                             f"model out")
    return logits, labels


def setting_metrics(logits, labels, *, output: str = "margin", n_boot: int = 30, n_blocks: int = 10,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """The replicates (``replicates``) of four summaries of the S seeds of one setting on its T test images:
    ``accuracy`` (mean over seeds), ``churn`` (mean disagreement over seed pairs), ``ece`` (mean expected
    calibration error) and ``alpha_hat`` (mean over seeds of each seed against the mixture of the others, on
    the scalar ``output``). logits (S, T, C), labels (T,) -> {metric: (1 + S + B,)}."""
    logits, labels = check_seed_logits(logits, labels, "setting_metrics")
    values = scalar_outputs(logits, labels, output) if output != "ovr" else None
    if values is None:
        raise UnderspecError("setting_metrics compares one scalar per image: use output 'margin' or 'top2'")
    pred = logits.argmax(-1)
    correct = (pred == labels).double().numpy()  # (S, T)
    differ = (pred[:, None] != pred[None]).double().numpy()  # (S, S, T)
    s, t = correct.shape

    def churn(keep, images):
        d = differ[np.ix_(keep, keep, images)].mean(-1)
        return d[np.triu_indices(len(d), 1)].mean()

    def ece(keep, images):
        idx = torch.as_tensor(np.flatnonzero(images))
        return float(expected_calibration_error(logits[keep][:, idx], labels[idx]).mean())

    def level(keep, images):
        v = values[torch.as_tensor(np.flatnonzero(keep))][:, torch.as_tensor(np.flatnonzero(images))]
        return float(alpha_hats_loo(v, n_boot=n_boot, seed=seed).mean())

    return {"accuracy": replicates(lambda k, i: correct[np.ix_(k, i)].mean(), s, t, n_blocks=n_blocks),
            "churn": replicates(churn, s, t, n_blocks=n_blocks), "ece": replicates(ece, s, t, n_blocks=n_blocks),
            "alpha_hat": replicates(level, s, t, n_blocks=n_blocks)}


# ------------------------------------------------------------------------------------ laws of seed variance

def gde_gap(pred, labels) -> np.ndarray:
    """Disagreement minus test error, per seed pair and test image: d_ij(t) - (e_i(t) + e_j(t)) / 2, (S, S, T)
    (the diagonal NaN). pred (S, T) predicted classes, labels (T,). Its mean over pairs and images is 0 when
    the generalisation disagreement equality holds (Jiang et al. 2022); ``uncertainty.multibootstrap`` gives
    it an interval over seeds and images."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.ndim != 2 or labels.ndim != 1 or pred.shape[1] != len(labels):
        raise UnderspecError(f"gde_gap needs predictions (S, T) and labels (T,), got {pred.shape} and {labels.shape}")
    if len(pred) < 2:
        raise UnderspecError(f"gde_gap compares seeds: it needs the predictions of at least 2 seeds, got {len(pred)}")
    if pred.shape[1] == 0:
        raise UnderspecError("gde_gap needs at least one test image, got an empty test set")
    error = (pred != labels).astype(float)
    gap = (pred[:, None] != pred[None]).astype(float) - (error[:, None] + error[None]) / 2
    gap[np.arange(len(pred)), np.arange(len(pred))] = np.nan
    return gap


def jordan_spread(correct) -> tuple[float, float]:
    """The seed standard deviation of test accuracy, (predicted, observed), from correct (S, T) (1 where seed s
    classifies image t right). Predicted as if every image were an independent coin with its own error rate
    (Jordan 2024): var = sum_t q_t (1 - q_t) / T^2, q_t estimated by the seeds' mean and made unbiased by
    S / (S - 1). Observed: the standard deviation of the seeds' accuracies (ddof 1). Equal in expectation when
    the errors are independent."""
    c = np.asarray(correct, dtype=float)
    if c.ndim != 2 or c.shape[0] < 2 or c.shape[1] < 1 or not np.isfinite(c).all():
        raise UnderspecError(f"jordan_spread needs finite 0/1 correctness of at least 2 seeds, (S, T), got {c.shape}")
    s, t = c.shape
    q = c.mean(0)
    predicted = math.sqrt(max(float((q * (1 - q)).sum()) * s / (s - 1), 0.0)) / t
    return predicted, float(c.mean(1).std(ddof=1))


def twin_disagreement(pred, twin_pred) -> np.ndarray:
    """Per seed and test image, whether a seed and its one-ulp twin predict differently: (S, T) from two (S, T)
    prediction arrays (the same seeds in the same order)."""
    pred, twin_pred = np.asarray(pred), np.asarray(twin_pred)
    if pred.shape != twin_pred.shape or pred.ndim != 2:
        raise UnderspecError(f"twin_disagreement needs two (S, T) prediction arrays, got {pred.shape} and "
                             f"{twin_pred.shape}")
    return (pred != twin_pred).astype(float)

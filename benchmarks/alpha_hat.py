"""alpha-hat at the scale of a seed study: every one of 40 models against the mixture of the other 39 on 10,000
test images with 100 bootstrap halves, the vectorised estimator (``underspec.metrics.trimming.alpha_hats_loo``:
every model at once, the others' halves pooled and sorted once per bootstrap, every level of the grid read from
one pass over the CDFs) against a straightforward loop (per model, per bootstrap, per level:
``underspec.alpha_trimmed_ks`` on 1-D samples, stopping at the first level reached), on the same bootstrap
draws, in one run; the two must agree exactly. ``--general``: also the general vectorised form
(``alpha_hats``, each model against its own reference, which sorts every model's reference separately).

    python alpha_hat.py [--models 40] [--images 10000] [--boot 100] [--loop-models 40] [--committed] [--general]

``--committed``: the top-2 gaps of the committed full-size seed study (results/fashion-mnist-40-seeds) instead of
synthetic outputs (a normal per image, shifted a little per model). ``--loop-models``: how many of the models the
loop measures (its time is scaled to all of them; the estimates of those it measures are compared).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

import underspec
from underspec.metrics.trimming import ALPHAS, NOT_REACHED, alpha_hats, alpha_hats_loo, bound
from common import append_result

ROOT = Path(__file__).resolve().parent.parent


def outputs(models: int, images: int, committed: bool) -> torch.Tensor:
    if committed:
        import pandas as pd

        table = pd.read_parquet(ROOT / "results" / "fashion-mnist-40-seeds" / "outputs.parquet")
        values = table.pivot(index="seed", columns="image", values="top2").to_numpy(np.float64)
        return torch.from_numpy(values[:models, :images])
    g = torch.Generator().manual_seed(0)
    return torch.randn(models, images, generator=g, dtype=torch.float64) + 0.05 * torch.randn(
        models, 1, generator=g, dtype=torch.float64)


def loop(values: torch.Tensor, others: torch.Tensor, n_boot: int, models: int, seed: int = 0) -> list[float]:
    """alpha-hat model by model, bootstrap by bootstrap, level by level (the same draws as ``alpha_hats``)."""
    t = values.shape[1]
    half = t // 2
    g = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randint(0, t, (t,), generator=g) for _ in range(n_boot)])
    delta = bound(half)
    out = []
    for k in range(models):
        total = 0.0
        for b in range(n_boot):
            x = values[k, order[b, :half]].numpy()
            reference = values[others[k]][:, order[b, half:2 * half]].reshape(-1).numpy()
            level = NOT_REACHED
            for alpha in ALPHAS:
                if underspec.alpha_trimmed_ks(x, reference, alpha) <= delta:
                    level = alpha
                    break
            total += level
        out.append(total / n_boot)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--boot", type=int, default=100)
    parser.add_argument("--loop-models", type=int, default=40)
    parser.add_argument("--committed", action="store_true")
    parser.add_argument("--general", action="store_true")
    args = parser.parse_args()
    values = outputs(args.models, args.images, args.committed)
    s = len(values)
    others = torch.tensor([[j for j in range(s) if j != i] for i in range(s)])
    started = time.perf_counter()
    fast = alpha_hats_loo(values, n_boot=args.boot)
    vectorised = time.perf_counter() - started
    general = None
    if args.general:
        started = time.perf_counter()
        assert alpha_hats(values, values[others], n_boot=args.boot).tolist() == fast.tolist()
        general = time.perf_counter() - started
    started = time.perf_counter()
    slow = loop(values, others, args.boot, min(args.loop_models, s))
    looped = time.perf_counter() - started
    scaled = looped * s / len(slow)
    worst = max(abs(a - b) for a, b in zip(fast.tolist(), slow))
    source = "the committed study's top-2 gaps" if args.committed else "synthetic outputs"
    lines = [f"{s} models x {values.shape[1]:,} test images x {args.boot} bootstraps, each model against the "
             f"mixture of the other {s - 1} ({source}); mean alpha-hat {fast.mean():.4f}",
             f"vectorised (`alpha_hats_loo`, all models at once, the pool sorted once per bootstrap): "
             f"**{vectorised:.1f} s**"]
    if general is not None:
        lines.append(f"general vectorised form (`alpha_hats`, every reference sorted on its own): {general:.1f} s")
    lines += [
             f"loop (per model, bootstrap and level, `alpha_trimmed_ks` on 1-D samples): {looped:.1f} s for "
             f"{len(slow)} models" + (f", {scaled:.0f} s scaled to {s}" if len(slow) < s else ""),
             f"ratio {scaled / vectorised:.1f}x; largest difference between the two estimates "
             f"{worst:.1e} (the same draws)"]
    for line in lines:
        print(line)
    assert math.isclose(worst, 0.0, abs_tol=1e-12), "the loop and the vectorised estimator disagree"
    append_result("alpha-hat: vectorised against a per-model loop (issue 22)", "cpu", lines)


if __name__ == "__main__":
    main()

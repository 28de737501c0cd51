"""Do a layer's weight vectors cluster? (Brutzkus and Globerson 2019.)

Each unit of a layer is its normalised row (w_i, b_i) / ||(w_i, b_i)||, a point on the unit sphere; units whose
row is all zero (erased by L1) have no direction and are left out. ``spherical_kmeans`` groups the points by
cosine (each centre the normalised mean of its points; the best of several starts), and ``clustering`` reads,
for every k, the silhouette of that grouping under the cosine distance (scikit-learn's ``silhouette_score``:
near 1 when the points sit in tight, well-separated groups, near 0 when they do not) and the mean angle from
each unit to its nearest centre (small: the units sit close to a few directions). The nulls: the same layer at
initialisation, and ``rotated_rows``: the rows mixed by a uniform random rotation of the units, which keeps the
layer's row space and energy and removes any grouping of single rows.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UnderspecError, shown
from .chance import random_orthogonal

KS = (2, 4, 8, 16)  # the numbers of clusters tried


def unit_directions(w: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """One layer's units as unit vectors: w (H, D), b (H,) -> (H', D + 1) float64, the all-zero rows left out."""
    if w.dim() != 2 or b.shape != w.shape[:1]:
        raise UnderspecError(f"unit_directions takes one layer, w (H, D) and b (H,), got {tuple(w.shape)} and "
                             f"{tuple(b.shape)}")
    rows = torch.cat([w.double(), b.double()[:, None]], 1).cpu().numpy()
    norms = np.linalg.norm(rows, axis=1)
    return rows[norms > 0] / norms[norms > 0, None]


def spherical_kmeans(x: np.ndarray, k: int, *, n_init: int = 3, iters: int = 100,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means of unit rows x (N, D): labels (N,) and unit centres (k, D), the start (of ``n_init``)
    with the largest summed cosine to the centres. An emptied cluster restarts at the point farthest from its
    centre, so every label is used."""
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k < len(x):
        raise UnderspecError(f"k must be from 2 to {len(x) - 1} for {len(x)} units, got {shown(k)}")
    rng = np.random.default_rng(seed)
    best, best_score = None, -np.inf
    for _ in range(n_init):
        centres = x[rng.choice(len(x), k, replace=False)]
        labels = None
        for _ in range(iters):
            sim = x @ centres.T
            new = sim.argmax(1)
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            sums = _cluster_sums(labels, x, k)
            for empty in np.nonzero(np.bincount(labels, minlength=k) == 0)[0]:
                far = int(sim.max(1).argmin())
                sums[empty], labels[far] = x[far], empty  # the point moves: its old cluster loses it
                sums = _cluster_sums(labels, x, k)
                sim[far] = np.inf  # not taken twice
            centres = sums / np.linalg.norm(sums, axis=1, keepdims=True)
        score = float((x @ centres.T).max(1).sum())
        if score > best_score:
            best, best_score = (labels, centres), score
    return best


def _cluster_sums(labels: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """The sum of the points of every cluster: (k, D), as one matrix product (np.add.at is slow)."""
    member = np.zeros((k, len(x)))
    member[labels, np.arange(len(x))] = 1.0
    return member @ x


def clustering(w: torch.Tensor, b: torch.Tensor, *, ks=KS, seed: int = 0) -> list[dict]:
    """For every k of ``ks`` below the number of live units: {"k", "silhouette", "angle"} of one layer (w (H, D),
    b (H,)): the cosine silhouette of its spherical k-means and the mean angle (degrees) from each unit to its
    nearest centre."""
    from sklearn.metrics import silhouette_score

    x = unit_directions(w, b)
    distance = np.clip(1 - x @ x.T, 0, 2)  # cosine distances, once for every k
    np.fill_diagonal(distance, 0)
    rows = []
    for k in ks:
        if k >= len(x):
            continue
        labels, centres = spherical_kmeans(x, k, seed=seed)
        angle = np.degrees(np.arccos(np.clip((x @ centres.T).max(1), -1, 1))).mean()
        rows.append({"k": k, "silhouette": float(silhouette_score(distance, labels, metric="precomputed")),
                     "angle": float(angle)})
    return rows


def rotated_rows(w: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The random-rotation null of one layer: Q [w b] with Q a uniform random rotation of the H units."""
    q = random_orthogonal(w.shape[0], (), generator)
    rows = q @ torch.cat([w.double(), b.double()[:, None]], 1)
    return rows[:, :-1], rows[:, -1]

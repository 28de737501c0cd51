"""How much of a layer decides the prediction (after the PCA-surrogate paper on ResNet-18 layers): k-nearest-
neighbour and nearest-class-centre classifiers on the top-k principal components of a hidden layer's
representation, against k, and the smallest k that does as well as every component. scikit-learn fits PCA and
the classifiers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ..errors import UnderspecError

N_NEIGHBORS = 5


def _array(x, what: str) -> np.ndarray:
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise UnderspecError(f"pca_surrogate: {what} must be (images, units), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise UnderspecError(f"pca_surrogate: {what} holds NaN or infinite values (a diverged network?)")
    return x


def pca_surrogate(train, train_labels, test, test_labels, ks, *, n_neighbors: int = N_NEIGHBORS) -> pd.DataFrame:
    """Accuracy on ``test`` of a k-NN (``n_neighbors``, Euclidean) and a nearest-class-centre classifier fitted on
    ``train``, both on the top-k principal components (PCA fitted on ``train``), for every k of ``ks``.

    train (N, H), train_labels (N,), test (M, H), test_labels (M,): a hidden layer's representation of training
    and test images and their classes. One row per k: ``k``, ``variance`` (the share of the training variance
    the k components hold), ``knn``, ``ncc``."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier, NearestCentroid

    train, test = _array(train, "train"), _array(test, "test")
    y_train, y_test = np.asarray(train_labels), np.asarray(test_labels)
    if train.shape[1] != test.shape[1] or len(y_train) != len(train) or len(y_test) != len(test):
        raise UnderspecError(f"pca_surrogate: train {train.shape} and test {test.shape} need the same units and a "
                             f"label per image ({len(y_train)} and {len(y_test)} labels)")
    ks = sorted({int(k) for k in ks})
    top = min(train.shape)
    if not ks or ks[0] < 1 or ks[-1] > top:
        raise UnderspecError(f"pca_surrogate: every k must be in 1..{top} (the rank of the training "
                             f"representation at most), got {ks}")
    if len(np.unique(y_train)) < 2 or len(train) <= n_neighbors:
        raise UnderspecError(f"pca_surrogate needs at least 2 classes and more than {n_neighbors} training images")
    pca = PCA(n_components=ks[-1], svd_solver="full").fit(train)
    a, b = pca.transform(train), pca.transform(test)
    shares = np.cumsum(pca.explained_variance_ratio_)
    rows = []
    for k in ks:
        knn = KNeighborsClassifier(n_neighbors=n_neighbors).fit(a[:, :k], y_train).score(b[:, :k], y_test)
        with warnings.catch_warnings():  # a component constant within a class (dead units): harmless here
            warnings.filterwarnings("ignore", "self.within_class_std_dev_", UserWarning)
            ncc = NearestCentroid().fit(a[:, :k], y_train).score(b[:, :k], y_test)
        rows.append({"k": k, "variance": float(shares[k - 1]), "knn": float(knn), "ncc": float(ncc)})
    return pd.DataFrame(rows)


def needed_k(table: pd.DataFrame, column: str, n_test: int) -> int:
    """The smallest k of a ``pca_surrogate`` table whose accuracy ``column`` is within one binomial standard
    error (sqrt(a (1 - a) / n_test), a the best accuracy over k) of the best: fewer components than that lose
    accuracy the test set can detect."""
    if column not in table or table.empty:
        raise UnderspecError(f"needed_k needs a pca_surrogate table with a {column!r} column")
    best = float(table[column].max())
    margin = math.sqrt(best * (1 - best) / n_test)
    return int(table[table[column] >= best - margin].k.min())

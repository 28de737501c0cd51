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


# ------------------------------------------------- IDX files checked (synthetic: no Debian package needed)

def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file: the magic number, each dimension (big-endian int32), then the uint8 values."""
    return np.array([magic, *array.shape], dtype=">i4").tobytes() + array.astype(np.uint8).tobytes()


def idx_files(n_train: int = 6, n_test: int = 4) -> dict[str, bytes]:
    """The four IDX files of a tiny 28 x 28 data set, by name, uncompressed."""
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        files[f"{split}-images-idx3-ubyte"] = idx_bytes(rng.integers(0, 256, (n, 28, 28)), 2051)
        files[f"{split}-labels-idx1-ubyte"] = idx_bytes(np.arange(n) % 10, 2049)
    return files


def write_idx(folder, files: dict[str, bytes], gz: bool) -> None:
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / (name + ".gz" * gz)).write_bytes(gzip.compress(data) if gz else data)


LABELS, IMAGES = "train-labels-idx1-ubyte", "train-images-idx3-ubyte"


def damage(files: dict[str, bytes], how: str) -> tuple[dict[str, bytes], str, str]:
    """``files`` damaged ``how``; the file that must be named and what the message must say."""
    files = dict(files)
    if how == "bad-magic":
        files[IMAGES] = (2049).to_bytes(4, "big") + files[IMAGES][4:]
        return files, IMAGES, "not an IDX image file (its magic number is not 2051)"
    if how == "truncated-images":
        files[IMAGES] = files[IMAGES][:-100]
        return files, IMAGES, "4,620 bytes where 6 images take 4,720 (truncated?)"
    if how == "label-42":
        files[LABELS] = files[LABELS][:9] + bytes([42]) + files[LABELS][10:]
        return files, LABELS, "a label of 42 (labels are 0..9)"
    if how == "one-label-short":
        files[LABELS] = idx_bytes(np.arange(5) % 10, 2049)
        return files, LABELS, "5 labels for 6 images"
    raise ValueError(how)


CONTENT_DAMAGE = ["bad-magic", "truncated-images", "label-42", "one-label-short"]


def test_synthetic_idx_files_check(tmp_path):
    from underspec.training.data import idx_folder_problem, idx_problem

    files = idx_files()
    assert idx_problem(files[IMAGES], images=True) == (None, 6)
    assert idx_problem(files[LABELS], images=False) == (None, 6)
    write_idx(tmp_path / "raw", files, gz=False)
    write_idx(tmp_path / "gz", files, gz=True)
    assert idx_folder_problem(tmp_path / "raw") is None and idx_folder_problem(tmp_path / "gz", ".gz") is None


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("how", CONTENT_DAMAGE)
def test_a_damaged_idx_file_is_named_with_its_problem(tmp_path, how, gz):
    from underspec.training.data import idx_folder_problem

    files, name, said = damage(idx_files(), how)
    write_idx(tmp_path, files, gz)
    problem = idx_folder_problem(tmp_path, ".gz" if gz else "")
    assert problem == f"{tmp_path / (name + '.gz' * gz)}: {said}", problem


@pytest.mark.parametrize("how, said", [
    ("random bytes", "cannot be read (not gzip data: BadGzipFile)"),
    ("truncated gzip", "cannot be read (the gzip data ends early, truncated: EOFError)"),
    ("a folder", "cannot be read (not a regular file: a folder, a FIFO or a device)"),
    ("a link", "cannot be read (a link, not the file itself)"),
])
def test_an_unreadable_gz_source_is_named_with_why(tmp_path, how, said):
    import gzip

    from underspec.training.data import idx_folder_problem

    write_idx(tmp_path, idx_files(), gz=True)
    path = tmp_path / f"{LABELS}.gz"
    if how == "random bytes":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 200, dtype=np.uint8).tobytes())
    elif how == "truncated gzip":
        path.write_bytes(gzip.compress(idx_files()[LABELS])[:-12])
    elif how == "a folder":
        path.unlink()
        path.mkdir()
    else:
        path.rename(tmp_path / "elsewhere.gz")
        path.symlink_to(tmp_path / "elsewhere.gz")
    assert idx_folder_problem(tmp_path, ".gz") == f"{path}: {said}"


def test_a_raw_idx_file_that_is_a_folder_is_named(tmp_path):
    from underspec.training.data import idx_folder_problem

    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, idx_files(), gz=False)
    (raw / LABELS).unlink()
    (raw / LABELS).mkdir()
    assert idx_folder_problem(raw) == f"{raw / LABELS}: cannot be read (not a regular file: a folder, a FIFO or a device)"
    with pytest.raises(underspec.UnderspecError, match=f"{LABELS} is not a regular file .*remove it") as err:
        underspec.load_dataset("mnist", root=tmp_path, download=False)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("how", CONTENT_DAMAGE)
def test_a_damaged_cached_mnist_file_is_named_in_one_line(tmp_path, how):
    """Full MNIST's unpacked files (torchvision's, no copy to rebuild them from here) are checked before
    torchvision reads them: a damaged one is named, with what is wrong and what to do."""
    files, name, said = damage(idx_files(), how)
    write_idx(tmp_path / "MNIST" / "raw", files, gz=False)
    with pytest.raises(underspec.UnderspecError) as err:
        underspec.load_dataset("mnist", root=tmp_path, download=False)
    assert str(err.value) == (f"{tmp_path / 'MNIST' / 'raw' / name}: {said}: remove it (torchvision downloads it "
                              "again) or pass the right root")


@pytest.fixture
def debian_copy(tmp_path, monkeypatch):
    """A tiny synthetic stand-in for Debian's dataset-fashion-mnist (its four .gz files)."""
    from underspec.training import data as datasets

    folder = tmp_path / "debian"
    write_idx(folder, idx_files(), gz=True)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", folder)
    return folder


@pytest.mark.parametrize("how", CONTENT_DAMAGE + ["random bytes", "a folder"])
def test_a_damaged_unpacked_fashion_file_is_unpacked_again(tmp_path, debian_copy, how):
    data = underspec.load_dataset("fashion-mnist", root=tmp_path / "cache", download=False)
    assert (len(data.y_train), len(data.y_test)) == (6, 4)
    raw = tmp_path / "cache" / "FashionMNIST" / "raw"
    if how == "random bytes":
        (raw / LABELS).write_bytes(np.random.default_rng(2).integers(0, 256, 14, dtype=np.uint8).tobytes())
    elif how == "a folder":
        (raw / LABELS).unlink()
        (raw / LABELS).mkdir()
        with pytest.raises(underspec.UnderspecError, match="is not a regular file"):
            underspec.load_dataset("fashion-mnist", root=tmp_path / "cache", download=False)
        return
    else:
        files, name, _ = damage(idx_files(), how)
        (raw / name).write_bytes(files[name])
    again = underspec.load_dataset("fashion-mnist", root=tmp_path / "cache", download=False)
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_train, data.y_train)
    assert sorted(p.name for p in raw.iterdir()) == sorted(idx_files()), "a temporary file was left behind"


@pytest.mark.parametrize("how", CONTENT_DAMAGE + ["truncated gzip"])
def test_a_damaged_fashion_source_is_named_and_nothing_is_unpacked(tmp_path, debian_copy, how):
    import gzip

    if how == "truncated gzip":
        path = debian_copy / f"{LABELS}.gz"
        path.write_bytes(path.read_bytes()[:-12])
        said = "cannot be read (the gzip data ends early, truncated: EOFError)"
    else:
        files, name, said = damage(idx_files(), how)
        path = debian_copy / f"{name}.gz"
        path.write_bytes(gzip.compress(files[name]))
    with pytest.raises(underspec.UnderspecError) as err:
        underspec.load_dataset("fashion-mnist", root=tmp_path / "cache", download=False)
    assert str(err.value).startswith(f"{path}: {said}: reinstall Debian's dataset-fashion-mnist"), str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "cache").exists()

"""The first layer's two products with a batch of images, in the engine's stacked layout (see ``engine``).

Per step, for S streams of M members with H hidden units each and a batch X (S, B, D') of each stream's
images: the forward product Z1 = W1 X^T + b1 and the weight gradient dZ1 X. ``DenseProducts`` computes them as
batched matmuls (what a GPU does best); ``SparseProducts`` as sums over each image's non-zero pixels (MNIST's
values are about 80% zeros), about 2.5x cheaper on a CPU. Both give the same sums up to float rounding.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time

import torch
import torch.nn.functional as F

from ..errors import UnderspecError
from ..files import atomic_text, read_text
from .code import training_code_hash
from .data import cache_dir


class DenseProducts:
    """The two products of a step with the batch X as dense batched matmuls (what a GPU does best).

    x (N, D') images with the first D' of W1's D pixels (live pixels first; D' = D for test images).
    W1 is kept as (S, M*H, D).
    """

    pixel_axis = 2

    @staticmethod
    def layout(w1: torch.Tensor) -> torch.Tensor:
        """W1 between the engine's (S, M*H, D) and this class's layout: here the same."""
        return w1

    @staticmethod
    def member_norms(w1: torch.Tensor, scratch: torch.Tensor, s: int, m: int) -> torch.Tensor:
        """(S, M*H, D) -> the norm of each member's W1 (S, M)."""
        return w1.view(s, m, -1).norm(dim=-1)

    def __init__(self, x: torch.Tensor, d: int):
        self.images, self.d, self.grad = x, d, None
        self.x = self.z1 = None  # work buffers: the batch (S, B, D') and Z1 (S, M*H, B)

    def set_batch(self, idx: torch.Tensor, backward: bool = True) -> None:
        """idx (S, B): the images of each stream's batch (``backward``: nothing extra to prepare here)."""
        self.x = _buffer(self.x, (*idx.shape, self.images.shape[1]), self.images)
        torch.index_select(self.images, 0, idx.reshape(-1), out=self.x.view(-1, self.images.shape[1]))

    def forward(self, w1: torch.Tensor, b1: torch.Tensor) -> torch.Tensor:
        """w1 (S, M*H, D), b1 (S, M*H) -> Z1 (S, M*H, B) = W1[..., :D'] @ X^T + b1."""
        self.z1 = _buffer(self.z1, (*b1.shape, self.x.shape[1]), b1)
        return torch.baddbmm(b1.unsqueeze(-1), w1[..., :self.x.shape[2]], self.x.transpose(1, 2), out=self.z1)

    def weight_gradient(self, d_z1: torch.Tensor) -> torch.Tensor:
        """d_z1 (S, M*H, B) -> dZ1 @ X (S, M*H, D), the data gradient of W1 (a buffer reused every step)."""
        live = self.x.shape[2]
        if self.grad is None or self.grad.shape[:2] != d_z1.shape[:2]:
            self.grad = d_z1.new_empty(*d_z1.shape[:2], self.d)
        self.grad[..., :live].baddbmm_(d_z1, self.x, beta=0)
        self.grad[..., live:] = 0  # the caller adds the L1 term in place: clear the dead pixels each step
        return self.grad


class SparseProducts:
    """The same two products as sums over each image's non-zero pixels, via ``embedding_bag`` on W1's rows.

    Forward: Z1 of image b is the sum over its non-zero pixels p of x[b, p] * W1[p] (one bag per image).
    Backward: the data gradient of W1[p] is the sum over the batch's images b with x[b, p] != 0 of
    x[b, p] * dZ1[b] (one bag per pixel). W1 is stacked as (S*D, M*H), stream s's pixel p on row s*D + p.
    Indices are int32, which embedding_bag and the sort by pixel handle faster than int64.
    """

    pixel_axis = 1

    @staticmethod
    def layout(w1: torch.Tensor) -> torch.Tensor:
        """W1 between the engine's (S, M*H, D) and this class's pixel-major (S, D, M*H), either way."""
        return w1.transpose(1, 2)

    @staticmethod
    def member_norms(w1: torch.Tensor, scratch: torch.Tensor, s: int, m: int) -> torch.Tensor:
        """(S, D, M*H) -> the norm of each member's W1 (S, M); ``scratch`` (S, D, M*H) is overwritten.

        One member per stream: its whole (D, H) block, one read. Else a member's units are not contiguous, and
        torch's norm over two strided axes is slower than: square, sum over pixels, then over its units.
        """
        if m == 1:
            return torch.linalg.vector_norm(w1, dim=(1, 2)).unsqueeze(1)
        return torch.mul(w1, w1, out=scratch).sum(1).view(s, m, -1).sum(-1).sqrt()

    def __init__(self, x: torch.Tensor, d: int):
        nz = torch.nonzero(x)  # (nnz, 2), image-major, so each image's pixels are contiguous and sorted
        self.pixel, self.value = nz[:, 1].int(), x[nz[:, 0], nz[:, 1]]  # (nnz,) each
        self.count = torch.bincount(nz[:, 0], minlength=len(x))  # (N,) non-zero pixels per image
        self.start = torch.cumsum(self.count, 0) - self.count  # (N,) where each image's pixels begin
        self.d = d
        self.z1 = self.d_z1 = None  # work buffers of forward and weight_gradient, (S, M*H, B) and (S, B, M*H)

    def set_batch(self, idx: torch.Tensor, backward: bool = True) -> None:
        """idx (S, B): the images of each stream's batch -> the bags of the forward product, and of the
        backward one unless ``backward`` is False."""
        s, b = idx.shape
        image = idx.reshape(-1)  # (S*B,) stream-major
        count = self.count.index_select(0, image)
        offset = torch.cumsum(count, 0) - count  # (S*B,) where each image's bag begins
        slot = torch.repeat_interleave(torch.arange(s * b, device=idx.device, dtype=torch.int32), count)
        entry = (self.start.index_select(0, image) - offset).index_select(0, slot) + torch.arange(
            len(slot), device=idx.device)  # (nnz_b,) each bag entry's place in the image-major arrays
        row = self.pixel.index_select(0, entry) + slot.div(b, rounding_mode="floor") * self.d  # row of W1
        value = self.value.index_select(0, entry)
        self.image_bags = (row, offset.int(), value)
        self.shape = (s, b)
        if not backward:
            return
        row, by_row = torch.sort(row, stable=True)
        per_row = torch.bincount(row, minlength=s * self.d)
        self.pixel_bags = (slot.index_select(0, by_row), (torch.cumsum(per_row, 0) - per_row).int(),
                           value.index_select(0, by_row))

    def forward(self, w1: torch.Tensor, b1: torch.Tensor) -> torch.Tensor:
        """w1 (S, D, M*H), b1 (S, M*H) -> Z1 (S, M*H, B)."""
        s, b = self.shape
        row, offset, value = self.image_bags
        z1 = F.embedding_bag(row, w1.view(-1, w1.shape[2]), offset, mode="sum", per_sample_weights=value)
        self.z1 = _buffer(self.z1, (s, w1.shape[2], b), z1)  # the bias added in the transposing pass
        return torch.add(z1.view(s, b, -1).transpose(1, 2), b1.unsqueeze(-1), out=self.z1)

    def weight_gradient(self, d_z1: torch.Tensor) -> torch.Tensor:
        """d_z1 (S, M*H, B) -> the data gradient of W1 (S, D, M*H); pixels no image of the batch uses get 0."""
        s, units, b = d_z1.shape
        slot, offset, value = self.pixel_bags
        self.d_z1 = _buffer(self.d_z1, (s, b, units), d_z1)
        rows = self.d_z1.copy_(d_z1.transpose(1, 2)).view(-1, units)  # (S*B, M*H)
        return F.embedding_bag(slot, rows, offset, mode="sum", per_sample_weights=value).view(s, self.d, units)


def _buffer(buf: torch.Tensor | None, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """``buf`` if it has ``shape`` (and ``like``'s dtype and device), else a new buffer of that shape."""
    if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = like.new_empty(shape)
    return buf


# ----------------------------------------------------------------------------------- choosing, by measuring

@functools.cache
def code_hash() -> str:
    """``code.training_code_hash()``, read once per process (it reads every source file of the training code;
    a train call used it three times)."""
    return training_code_hash()


CALIBRATION_STEPS = 8
CALIBRATION_REPEATS = 3
SPARSE_MARGIN = 0.9  # sparse is chosen only when clearly faster (its time below 90% of dense's): else dense
KEPT_CHOICES = 256  # products.json keeps this many newest choices: several checkouts of other code share it


def choose_products(x: torch.Tensor, d: int, *, streams: int, units: int, batch_size: int) -> tuple[type, dict]:
    """The faster of ``SparseProducts`` and ``DenseProducts`` for training images ``x`` (N, D') on this CPU.

    Which one wins depends on the machine as much as on the data (on one 2-core machine sparse won on MNIST's
    20% density, on another dense did), so it is measured, not guessed: a few steps of both on the first
    images, at the program's shape (streams x units), in CPU time, the minimum over repeats, alternated (other
    processes on the machine add to a time, never subtract: the minimum is the least disturbed). Dense wins
    unless sparse is clearly faster (``SPARSE_MARGIN``). The decision is remembered per machine, torch version,
    code version, thread count, density band, shape and allocator setting (``<data cache>/products.json``, a derived file: ignored
    and rebuilt when it is not what this code writes), so every later training on this machine takes the same
    path and gives the same bits. Returns (class, {"sparse", "dense_ms", "sparse_ms", "density", "measured"}).
    """
    density = float(torch.count_nonzero(x)) / max(x.numel(), 1)
    streams, units = min(streams, 8), min(units, 4096)  # the program's shape (capped: timing, not training)
    key = "|".join([_cpu_model(), torch.__version__, f"code {code_hash()}",
                    f"{torch.get_num_threads()} threads", f"density {round(density, 1):.1f}", f"batch {batch_size}",
                    f"{streams} x {units}", *_allocator()])
    path = cache_dir() / "products.json"
    try:
        known = json.loads(read_text(path))
    except (OSError, ValueError, RecursionError, UnderspecError):
        known = {}
    if not isinstance(known, dict):  # derived data in a shape this code never writes: rebuilt
        known = {}
    entry = known.get(key)
    if isinstance(entry, dict) and isinstance(entry.get("sparse"), bool):
        return (SparseProducts if entry["sparse"] else DenseProducts), {**entry, "measured": False}
    sample = x[:min(len(x), 16 * batch_size)]
    times = {DenseProducts: [], SparseProducts: []}
    for _ in range(CALIBRATION_REPEATS):
        for cls in times:
            times[cls].append(_time_steps(cls, sample, d, streams, units, batch_size))
    dense, sparse = min(times[DenseProducts]), min(times[SparseProducts])
    choice = {"sparse": sparse < SPARSE_MARGIN * dense, "dense_ms": round(dense, 3), "sparse_ms": round(sparse, 3),
              "density": round(density, 3)}
    # Another code version's choices stay (its key never matches this code's): checkouts of several versions on
    # one machine would otherwise erase each other's and measure again at every call; the oldest go first.
    kept = dict(list(known.items())[-(KEPT_CHOICES - 1):])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_text(path, json.dumps({**kept, key: choice}, indent=1))
    except OSError:
        pass  # cannot remember: measure again next time
    return (SparseProducts if choice["sparse"] else DenseProducts), {**choice, "measured": True}


def _time_steps(cls, x: torch.Tensor, d: int, streams: int, units: int, batch_size: int) -> float:
    """CPU milliseconds of one step's two products (forward and weight gradient) with ``cls``: the minimum
    over ``CALIBRATION_STEPS`` steps, after two that warm up allocators and caches."""
    g = torch.Generator().manual_seed(0)
    products = cls(x, d)
    w1 = cls.layout(torch.randn(streams, units, d, generator=g, dtype=x.dtype)).contiguous()
    b1 = torch.zeros(streams, units, dtype=x.dtype)
    times = []
    for step in range(CALIBRATION_STEPS + 2):
        idx = torch.randint(0, len(x), (streams, batch_size), generator=g)
        start = time.process_time()
        products.set_batch(idx)
        z1 = products.forward(w1, b1)
        products.weight_gradient(z1)
        if step >= 2:
            times.append(time.process_time() - start)
    return 1000 * min(times)


def _allocator() -> list[str]:
    """glibc's memory-map threshold when the environment fixes it (the book's kernels: 1 MiB), as part of the
    choice's key: there every fresh block of a megabyte or more is mapped and faulted in again, which costs
    the sparse products' new weight gradient of every step far more than the dense products' buffers (paper
    grid: +55% against +5% an epoch), so the choice is measured apart for it."""
    threshold = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    return [f"mmap threshold {threshold}"] if threshold else []


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

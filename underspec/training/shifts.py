"""Shifted test sets: the same test images under stress (rotation, noise, lower contrast, translation), and a
far shift (another data set), for the underspecification that D'Amour et al. define: networks equally good in
distribution that disagree once the data move.

Every shift is deterministic: a fixed transform, or noise from a seeded generator. Images are flattened
(N, 784) in [0, 1], as every data set of the package.
"""

from __future__ import annotations

import torch

from ..errors import UnderspecError
from .data import Dataset

SHIFT_SEED = 2024  # the noise of the noisy test set never changes


def _images(x: torch.Tensor, shape) -> torch.Tensor:
    return x.reshape(len(x), 1, *shape)


def rotate(x: torch.Tensor, degrees: float, shape=(28, 28)) -> torch.Tensor:
    """Rotated by ``degrees`` counter-clockwise about the centre (bilinear, zero fill): (N, D) -> (N, D)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import rotate as tv_rotate

    return tv_rotate(_images(x, shape), degrees, interpolation=InterpolationMode.BILINEAR).reshape(len(x), -1)


def translate(x: torch.Tensor, pixels: tuple[int, int], shape=(28, 28)) -> torch.Tensor:
    """Moved by (right, down) whole pixels, zero fill: (N, D) -> (N, D)."""
    dx, dy = pixels
    images = _images(x, shape)
    moved = torch.zeros_like(images)
    h, w = shape
    moved[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return moved.reshape(len(x), -1)


def gaussian_noise(x: torch.Tensor, std: float, seed: int = SHIFT_SEED) -> torch.Tensor:
    """Additive Gaussian noise of ``std``, clipped to [0, 1], from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return (x + std * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


def contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Contrast scaled by ``factor`` around mid-grey 0.5 (factor < 1: lower contrast)."""
    return (0.5 + factor * (x - 0.5)).clamp(0, 1)


SHIFTS = {  # name -> transform of (N, D) test images
    "rotate 15°": lambda x: rotate(x, 15.0),
    "rotate 30°": lambda x: rotate(x, 30.0),
    "noise σ=0.3": lambda x: gaussian_noise(x, 0.3),
    "contrast ×0.3": lambda x: contrast(x, 0.3),
    "shift 2 px": lambda x: translate(x, (2, 1)),
}


def shifted_test_sets(data: Dataset, *, far: Dataset | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"in distribution": (x_test, y_test), each shift of ``SHIFTS``: (x, y_test)}, and with ``far`` (another
    data set of the same image shape, e.g. Fashion-MNIST for MNIST-trained networks) its test images under
    the name ``"far: <name>"``, labelled with its own labels (only disagreement between seeds is meaningful
    there: the classes are not the same)."""
    if not isinstance(data, Dataset):
        raise UnderspecError(f"shifted_test_sets needs a Dataset, got {type(data).__name__}")
    sets = {"in distribution": (data.x_test, data.y_test)}
    sets.update({name: (shift(data.x_test), data.y_test) for name, shift in SHIFTS.items()})
    if far is not None:
        if far.x_test.shape[1] != data.x_test.shape[1]:
            raise UnderspecError(f"the far data set has {far.x_test.shape[1]} pixels an image, not "
                                 f"{data.x_test.shape[1]}: use one of the same image shape")
        sets[f"far: {far.name}"] = (far.x_test[:len(data.y_test)], far.y_test[:len(data.y_test)])
    return sets

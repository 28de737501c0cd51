"""Where a training runs: the device, and exact float32 products on a GPU while it trains."""

from __future__ import annotations

import contextlib

import torch

from ..errors import UnderspecError
from .choices import check_device_name


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU. The engine runs on ``"cpu"`` and ``"cuda"`` / ``"cuda:N"``."""
    device = check_device_name(str(device) if isinstance(device, torch.device) else device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UnderspecError("device 'cuda' was asked for but no GPU is visible: use --device cpu or auto")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UnderspecError(f"there is no {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


@contextlib.contextmanager
def matmul_precision(device: torch.device, tf32: bool):
    """On CUDA, float32 matrix products in TF32 (``tf32``) or exact IEEE float32 inside the block; the global
    setting is restored on exit. Nothing to do on a CPU, whose float32 products are always IEEE."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    before, matmul.fp32_precision = matmul.fp32_precision, "tf32" if tf32 else "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision = before

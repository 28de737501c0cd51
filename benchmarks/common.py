"""Shared by the benchmarks: data, peak memory, and appending a result to benchmarks/RESULTS.md."""

from __future__ import annotations

import datetime
import platform
import resource
import sys
from pathlib import Path

import torch

import underspec

RESULTS = Path(__file__).with_name("RESULTS.md")


def load(name: str) -> underspec.Dataset:
    """A data set by name; ``synthetic-60k`` is random data of full MNIST's shape (60,000 + 10,000 x 784)."""
    if name == "synthetic-60k":
        g = torch.Generator().manual_seed(0)
        return underspec.Dataset("synthetic-60k", torch.rand(60000, 784, generator=g),
                                 torch.randint(0, 10, (60000,), generator=g), torch.rand(10000, 784, generator=g),
                                 torch.randint(0, 10, (10000,), generator=g))
    return underspec.load_dataset(name)


def add_engine_options(parser) -> None:
    """--sparse and --tf32, passed on to ``underspec.train`` by ``engine_options``."""
    parser.add_argument("--sparse", default="auto", choices=["auto", "on", "off"],
                        help="the engine's first-layer products: sparse sums (on), dense matmuls (off) or auto")
    parser.add_argument("--tf32", action="store_true", help="TF32 matrix products on a GPU (not exact float32)")


def engine_options(args) -> dict:
    return {"sparse": {"auto": "auto", "on": True, "off": False}[args.sparse], "tf32": args.tf32}


def peak_memory(device: str) -> str:
    """Peak resident host memory of this process, and peak device memory on CUDA."""
    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    text = f"host {host:.2f} GiB"
    if torch.device(device).type == "cuda":
        text += f", device {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    return text


def describe_machine(device: str) -> str:
    if torch.device(device).type == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    return f"{name}; torch {torch.__version__}, python {platform.python_version()}"


def append_result(title: str, device: str, lines: list[str]) -> None:
    """Print the result and append it, dated, to RESULTS.md."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = [f"## {title}", "", f"- {stamp}; {describe_machine(device)}", f"- command: `{' '.join(sys.argv)}`",
             *[f"- {line}" for line in lines], ""]
    print("\n".join(block))
    with RESULTS.open("a") as f:
        f.write("\n".join(block) + "\n")

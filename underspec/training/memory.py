"""What a training holds in memory, and how a grid too large for its budget is split into blocks that train
one after the other (each member exactly as in one block).

``memory_plan`` counts a uniform grid's bytes: the records every member keeps to the end, the working memory
of one member in training, and what each stream adds; ``block_sizes`` turns a plan and a budget into how many
streams, and members of each, train at once (or refuses the grid in one line, before any work); ``split``
cuts a program into those blocks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from ..errors import UnderspecError
from .grid import Grid
from .run import history_columns

@dataclass
class MemoryPlan:
    """What a training holds, roughly, in bytes: ``records`` (init, final, gradient sum, history and the
    per-epoch records asked for, of every member, kept until the end), ``per_member`` (the working memory of
    one member being trained: parameters, gradients, their sum, the optimizer's state, its activations on a
    batch and on the test set) and ``per_stream`` (what each stream of a block adds: its copy of the test
    images); ``networks``: how many networks the records are of."""

    records: int
    per_member: int
    per_stream: int
    networks: int


def memory_plan(grid: Grid, n_inputs: int, n_test: int, *, probe_size: int, snapshots: bool, embeddings: bool,
                itemsize: int = 4, n_members: int | None = None) -> MemoryPlan:
    """The ``MemoryPlan`` of training ``n_members`` networks (default: every member) of the uniform ``grid``
    on images of ``n_inputs`` pixels with ``n_test`` test images."""
    e, k = grid.epochs, max(grid.n_classes)
    n_params = n_parameters(grid, n_inputs)
    snapshot_bytes, embedding_bytes = per_epoch_record_bytes(grid, n_inputs, probe_size, itemsize)
    per_record = 3 * n_params * itemsize + e * len(history_columns(grid)) * 8
    per_record += snapshot_bytes * snapshots + embedding_bytes * embeddings
    # parameters, two generations of gradients, their sum, up to two optimizer states, the stopping rule's
    # held copy, W1-sized scratch; activations (pre, post, their gradients) on a batch and on the test set
    working = 8 * n_params * itemsize + (4 * sum(grid.layer_widths()) + 3 * k) * (grid.batch_size + n_test) * itemsize
    n = len(grid) if n_members is None else n_members
    return MemoryPlan(n * per_record, working, n_test * n_inputs * itemsize, n)


def per_epoch_record_bytes(grid: Grid, n_inputs: int, probe_size: int, itemsize: int) -> tuple[int, int]:
    """Bytes of one member's per-epoch snapshots and of its per-epoch probe embeddings of every hidden layer
    (init included)."""
    e = grid.epochs + 1
    return e * n_parameters(grid, n_inputs) * itemsize, e * probe_size * sum(grid.layer_widths()) * itemsize


def default_memory_budget(device: torch.device) -> int | None:
    """Bytes a training may use on ``device``: 90% of a GPU's free memory, 80% of the host's available
    memory (None where the host does not say)."""
    if device.type == "cuda":
        return int(0.9 * torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # not POSIX: no budget
            return None
    return int(0.8 * available)


def n_parameters(grid: Grid, n_inputs: int) -> int:
    """Parameters of one member (the output layer padded to the grid's largest C)."""
    widths, k = grid.layer_widths(), max(grid.n_classes)
    return (widths[0] * (n_inputs + 1) + sum(b * (a + 1) for a, b in zip(widths, widths[1:]))
            + k * (widths[-1] + 1))


def width_for_parameters(budget: int, depth: int, *, n_inputs: int = 784, n_classes: int = 10) -> int:
    """The widest network of ``depth`` hidden layers of equal width whose parameter count (``n_parameters``,
    C = ``n_classes``) is at most ``budget``: 200,000 gives width 251 at depth 1 (199,555 parameters) and 157
    at depth 4 (199,243). Refuses a budget that not even width 1 fits."""
    def count(width: int) -> int:
        return n_parameters(Grid(hidden=width, depth=depth, n_classes=(n_classes,)), n_inputs)

    if count(1) > budget:
        raise UnderspecError(f"{budget:,} parameters do not fit one unit per layer at depth {depth} "
                             f"({count(1):,} needed)")
    low, high = 1, 2
    while count(high) <= budget:  # the count grows with the width: double until past the budget
        low, high = high, 2 * high
    while high - low > 1:  # then bisect: count(low) <= budget < count(high)
        mid = (low + high) // 2
        low, high = (mid, high) if count(mid) <= budget else (low, mid)
    return low


def block_sizes(plan: MemoryPlan, budget: int | None, n_streams: int, n_columns: int,
                device: torch.device) -> tuple[int, int]:
    """How many streams, and how many members of each stream, to train at once within ``budget`` bytes: all
    of them if they fit; else whole streams, as many as fit; else one stream's members in groups. Refuses a
    grid whose records and one member's training alone exceed the budget, before any work."""
    if budget is None:
        return n_streams, n_columns
    free = budget - plan.records - plan.per_stream
    if free < plan.per_member:
        n = plan.networks
        fit = budget // (plan.records // n + plan.per_member + plan.per_stream)
        fits = f"about {fit:,} such networks would fit" if fit else "not even one such network fits"
        raise UnderspecError(
            f"this grid needs at least {_size(plan.records + plan.per_member + plan.per_stream)} (records of "
            f"{_size(plan.records)} for {n:,} network{'s' * (n > 1)}, and {_size(plan.per_member)} to train one at "
            f"a time), more than the {_size(budget)} free on this {device.type}; {fits}: train fewer networks, "
            "fewer hidden units or epochs, or without per-epoch records")
    stream = n_columns * plan.per_member + plan.per_stream
    if budget - plan.records >= stream:
        return min(n_streams, (budget - plan.records) // stream), n_columns
    return 1, min(n_columns, free // plan.per_member)


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.1f} MiB"


def split(program, streams: int, columns: int) -> list:
    """``program`` (the engine's: ``orders`` (S,), ``members`` (S, M) lists) as blocks of at most ``streams``
    streams and ``columns`` members of each stream: every member trains exactly as in the whole program
    (streams and members do not interact)."""
    return [replace(program, orders=program.orders[i:i + streams],
                    members=[row[j:j + columns] for row in program.members[i:i + streams]])
            for j in range(0, len(program.members[0]), columns) for i in range(0, len(program.orders), streams)]

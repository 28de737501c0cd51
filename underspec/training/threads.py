"""How many threads a training uses: the cores this process may run on, not the machine's.

``os.cpu_count()`` counts the machine; a process pinned to some cores (``taskset``, Slurm's ``--cpus-per-task``)
or limited by a cgroup CPU quota (containers, CI runners) may use fewer, and torch's default of one thread per
core then oversubscribes them. ``usable_cores`` reads both limits; ``default_threads`` divides them among the
jobs that run at once (a sweep's ``jobs``); ``$OMP_NUM_THREADS``, where set, is the user's choice and wins.

The other half of a shared machine is how idle threads wait. OpenMP's default lets them spin for a while
after each parallel region, which is fast on idle cores and collapses when another process wants the same
core (every region then waits for a thread that is not running). ``PASSIVE_WAIT`` is the environment under
which the package's own processes start (the CLI, sweep workers, the book's kernels): threads sleep instead
of spinning. It must be set before torch is first imported, so it is set where a process starts.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

from ..errors import UnderspecError, shown

PASSIVE_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}
CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path | None = None) -> float | None:
    """The CPU quota of this process's cgroup, in cores (cgroup v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us``; ``root``: the cgroup folder, default ``CGROUP``); None where there is no quota or it
    cannot be read."""
    root = CGROUP if root is None else root
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by its cgroup's quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def default_threads(jobs: int = 1) -> int:
    """Threads for one of ``jobs`` trainings that run at once: ``$OMP_NUM_THREADS`` where set, else this
    process's usable cores divided among the jobs (at least 1)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, usable_cores() // max(1, int(jobs)))


def check_threads(threads) -> int | None:
    """``threads`` if it is None or a whole number >= 1, else the one-line error."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1 or threads > 4096:
        raise UnderspecError(f"threads must be a whole number from 1 to 4096 (or None for the usable cores), "
                             f"got {shown(threads)}")
    return threads


@contextlib.contextmanager
def torch_threads(threads: int):
    """torch's intra-op threads set to ``threads`` inside the block, restored on exit."""
    import torch  # here, not above: the command line checks a thread count before it loads torch

    before = torch.get_num_threads()
    if threads != before:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)

"""Threads that fit the machine: the cores this process may use (affinity, cgroup quota), $OMP_NUM_THREADS
where set, an explicit option above both, divided among a sweep's jobs; recorded in the run."""

from __future__ import annotations

import pytest
import torch

import underspec
from underspec import Grid, UnderspecError
from underspec.training import threads


def test_the_default_is_the_cores_this_process_may_use(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    monkeypatch.setattr(threads, "CGROUP", tmp_path)  # no cgroup limit
    assert threads.usable_cores() == 6 and threads.default_threads() == 6 and threads.default_threads(jobs=4) == 1
    (tmp_path / "cpu.max").write_text("250000 100000\n")  # a quota of 2.5 cores: 3 threads
    assert threads.cgroup_cpu_limit(tmp_path) == 2.5 and threads.usable_cores() == 3
    assert threads.default_threads(jobs=2) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.usable_cores() == 6
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.default_threads() == 2  # the user's choice wins


def test_an_explicit_thread_count_is_used_recorded_and_restored(small):
    before = torch.get_num_threads()
    run = underspec.train(Grid(epochs=1), small, progress=False, threads=1)
    assert run.meta["threads"] == 1 and torch.get_num_threads() == before
    for bad in (0, -2, 1.5, "2", True, 10_000):
        with pytest.raises(UnderspecError, match="threads must be a whole number"):
            underspec.train(Grid(epochs=1), small, progress=False, threads=bad)


def test_a_sweep_divides_the_cores_among_its_jobs(monkeypatch, tmp_path):
    from underspec.sweeps.config import SweepConfig

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(threads, "CGROUP", tmp_path)
    config = SweepConfig(seeds=(0, 1), jobs=4)
    assert config.threads is None and threads.default_threads(config.jobs) == 2
    assert SweepConfig(seeds=(0, 1), threads=3).threads == 3
    with pytest.raises(UnderspecError, match="threads must be a positive integer"):
        SweepConfig(seeds=(0, 1), threads=0)

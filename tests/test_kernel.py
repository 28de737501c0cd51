"""The book's kernel: its spec carries the environment the chapters run under (passive OpenMP waits, glibc's
fixed mmap threshold), and a kernel started from it has them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


def test_the_projects_kernel_runs_with_its_environment():
    jupyter_client = pytest.importorskip("jupyter_client")
    installed = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    if not installed.is_file():
        pytest.skip("the project's kernel is installed by make (python -m ipykernel install --sys-prefix)")
    spec = json.loads(installed.read_text())
    assert spec["env"] == {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_MMAP_THRESHOLD_": "1048576"}
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3", startup_timeout=180)
    try:
        seen = []
        kc.execute_interactive("import os; print(os.environ['OMP_WAIT_POLICY'], os.environ['MALLOC_MMAP_THRESHOLD_'])",
                               timeout=120, output_hook=lambda m: seen.append(m["content"].get("text", "")))
        assert "PASSIVE 1048576" in "".join(seen)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

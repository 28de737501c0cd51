"""The book's kernel: its spec carries the environment (passive OpenMP waits, glibc's fixed mmap threshold)
and the guard against a lost wake-up in its shell channel, and a kernel started from it runs the guard."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from underspec import kernel_wake


def test_the_guard_is_added_to_a_kernel_spec_once(tmp_path):
    spec = tmp_path / "kernel.json"
    spec.write_text(json.dumps({"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]}))
    kernel_wake.add_to_kernel_spec(spec)
    kernel_wake.add_to_kernel_spec(spec)
    assert json.loads(spec.read_text())["argv"].count(kernel_wake.ARGUMENT) == 1


def test_the_projects_kernel_runs_the_guard_with_its_environment():
    jupyter_client = pytest.importorskip("jupyter_client")
    installed = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    if not installed.is_file():
        pytest.skip("the project's kernel is installed by make (python -m ipykernel install --sys-prefix)")
    spec = json.loads(installed.read_text())
    assert kernel_wake.ARGUMENT in spec["argv"]
    assert spec["env"] == {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_MMAP_THRESHOLD_": "1048576"}
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3", startup_timeout=180)
    try:
        seen = []
        kc.execute_interactive("import os; k = get_ipython().kernel; "
                               "print(k._underspec_wake.is_running(), os.environ['OMP_WAIT_POLICY'])",
                               timeout=120, output_hook=lambda m: seen.append(m["content"].get("text", "")))
        assert "True PASSIVE" in "".join(seen)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

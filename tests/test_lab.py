"""A newcomer's JupyterLab: started from the project's environment, it opens a chapter as a notebook (jupytext's
contents manager) and its default viewer for Markdown is the notebook (the settings the project ships)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "underspec-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``make lab`` itself, as a newcomer runs it (as root here, as in containers and CI), on a free port with a
    known token; the environment is not rebuilt (``-o``: the install stamp counts as up to date)."""
    pytest.importorskip("jupyterlab")
    port = free_port()
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path_factory.mktemp("runtime"))}
    args = f"--no-browser --port={port} --ServerApp.token={TOKEN}"
    proc = subprocess.Popen(["make", "-s", "-C", str(ROOT), "-o", f"{venv}/.installed-stamp", "lab", f"VENV={venv}",
                             f"LAB_ARGS={args}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        for _ in range(240):
            try:
                get(port, "/api/status")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"make lab exited: {proc.stderr.read()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("make lab did not start within two minutes")
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_chapter_opens_as_a_notebook(lab):
    model = get(lab, "/api/contents/matching.md")  # make lab serves book/
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert any(c["cell_type"] == "code" and "parameters" in c["metadata"].get("tags", []) for c in cells)
    assert model["content"]["metadata"]["kernelspec"]["name"] == "python3"


def test_markdown_opens_in_the_notebook_view_by_default(lab):
    settings = get(lab, "/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    viewers = settings["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("markdown") == "Jupytext Notebook" and viewers.get("myst") == "Jupytext Notebook"

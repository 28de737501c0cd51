"""A newcomer's JupyterLab: started from the project's environment, it opens a chapter as a notebook (jupytext's
contents manager) and its default viewer for Markdown is the notebook (the settings the project ships)."""

from __future__ import annotations

import json
import os
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
    pytest.importorskip("jupyterlab")
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(ROOT / "jupyter"), "JUPYTER_RUNTIME_DIR":
           str(tmp_path_factory.mktemp("runtime"))}
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
                             f"--ServerApp.token={TOKEN}", "--ServerApp.open_browser=False", f"--ServerApp.root_dir={ROOT}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(120):
            try:
                get(port, "/api/status")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {proc.stderr.read()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not start within a minute")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_chapter_opens_as_a_notebook(lab):
    model = get(lab, "/api/contents/book/matching.md")
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert any(c["cell_type"] == "code" and "parameters" in c["metadata"].get("tags", []) for c in cells)
    assert model["content"]["metadata"]["kernelspec"]["name"] == "python3"


def test_markdown_opens_in_the_notebook_view_by_default(lab):
    settings = get(lab, "/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    viewers = settings["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("markdown") == "Jupytext Notebook" and viewers.get("myst") == "Jupytext Notebook"

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


def command_lines(group: int) -> list[list[str]]:
    """The command lines of the processes of process group ``group`` (Linux: read from /proc)."""
    lines = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
            if int(fields[2]) == group:
                lines.append((stat.parent / "cmdline").read_bytes().decode(errors="replace").split("\0"))
        except (OSError, IndexError, ValueError):  # a process that ended meanwhile
            continue
    return lines


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """``make lab`` itself, as a newcomer runs it (as root here, as in containers and CI), on a free port with a
    known token; the environment is not rebuilt (``-o``: the install stamp counts as up to date). Yields the
    port and the process (``make``, leader of its own process group)."""
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
        yield port, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def lab(lab_server):
    """The port of the JupyterLab that ``make lab`` started."""
    return lab_server[0]


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads command lines from Linux's /proc")
def test_as_root_the_lab_is_started_with_allow_root(lab_server):
    """The server that answers was started by ``make lab`` with ``--allow-root`` exactly when the user is root
    (JupyterLab refuses root without it): the root path of the Makefile is the one this test exercises when it
    runs as root."""
    port, proc = lab_server
    servers = [argv for argv in command_lines(proc.pid) if f"--port={port}" in argv]
    assert servers, "no process of make lab's group serves the port"
    assert all(("--allow-root" in argv) == (os.geteuid() == 0) for argv in servers), servers


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

"""Pyflakes-level lint (ruff's F rules) over the package, tests, benchmarks and scripts, and, through
jupytext, over the code cells of every chapter and sweep notebook. Exit code: ruff's (0 when clean).

    python scripts/lint.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["underspec", "tests", "benchmarks", "scripts", "book/bookrun.py", "book/_ext"]


def ruff(*paths) -> int:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", "--output-format", "concise",
                           *map(str, paths)], cwd=ROOT).returncode


def main() -> int:
    status = ruff(*SOURCES)
    notebooks = [p for p in sorted(ROOT.glob("book/**/*.md")) if "_build" not in p.parts
                 and "```{code-cell}" in p.read_text()]
    with tempfile.TemporaryDirectory() as tmp:
        for path in notebooks:  # one .py per notebook, named after it so ruff's messages point home
            name = str(path.relative_to(ROOT / "book").with_suffix("")).replace("/", "__")
            jupytext.write(jupytext.read(path), Path(tmp) / f"{name}.py", fmt="py:percent")
        print(f"chapters ({len(notebooks)}, as {tmp}/<chapter>.py):", flush=True)
        status |= ruff(tmp)
    return status


if __name__ == "__main__":
    sys.exit(main())

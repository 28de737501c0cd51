"""Peak memory of every chapter: each chapter of the book executed with its default parameters (the runs and
tables cached in runs/cache, as a rebuild finds them) through papermill, and its kernel's peak resident memory.

A final cell, appended to each chapter, prints the kernel's ``ru_maxrss`` (the peak resident set of the kernel
process since it started: the whole chapter). The target is under 1 GB per chapter. The floor is what the
kernel imports before any chapter code runs (torch, scipy, pandas, matplotlib, the package): measured here too,
as an empty notebook with the same imports.

    python chapter_memory.py                 # every chapter of book/_toc.yml (run from this folder)
    python chapter_memory.py study intro     # some of them
    python chapter_memory.py --cells study   # the peak after every cell (where a chapter's memory goes)

Run it after a book build (or any run of the chapters), so that the runs are cached: otherwise the first chapter
trains them and its peak is the training's.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
import papermill

from common import append_result

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
TARGET_GB = 1.0  # 10^9 bytes
PEAK = ("import resource, sys\n"
        "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
FLOOR = ("%matplotlib inline\nimport matplotlib.pyplot, pandas, scipy, torch\nimport underspec\n"
         "from underspec.report import pictures, widgets\nfrom underspec.studies import claims\nimport bookrun")


def chapters() -> list[str]:
    names = re.findall(r"(?:root|file):\s*(\S+)", (BOOK / "_toc.yml").read_text())
    return [n for n in names if "```{code-cell}" in (BOOK / f"{n}.md").read_text()]


def peak_of(nb: nbformat.NotebookNode, folder: Path, name: str, cells: bool = False) -> tuple[float, float]:
    """Execute ``nb`` (with the peak cell appended) in book/; its kernel's peak RSS in GB and the seconds.
    ``cells``: print the peak after every code cell too."""
    if cells:
        code = [c for c in nb.cells if c.cell_type == "code"]
        for k, cell in enumerate(code):
            cell.source += (f"\nimport resource as _r; print('CELL {k} PEAK', "
                            f"_r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1e6, 'GB')") if "parameters" not in \
                cell.metadata.get("tags", []) else ""
    nb.cells.append(nbformat.v4.new_code_cell(PEAK))
    source, out = folder / f"{name}.ipynb", folder / f"{name}.out.ipynb"
    nbformat.write(nb, source)
    start = time.perf_counter()
    papermill.execute_notebook(str(source), str(out), cwd=str(BOOK), kernel_name="python3", progress_bar=False,
                               request_save_on_cell_execute=False)
    seconds = time.perf_counter() - start
    done = nbformat.read(out, as_version=4)
    if cells:
        for cell in done.cells:
            for o in cell.get("outputs", []):
                for line in o.get("text", "").splitlines():
                    if line.startswith("CELL "):
                        print(f"   {line}   <- {cell.source.splitlines()[0][:70] if cell.source else ''}")
    text = "".join(o.get("text", "") for o in done.cells[-1].get("outputs", []))
    kib = int(re.search(r"PEAK_RSS_KIB (\d+)", text).group(1))
    return kib * 1024 / 1e9, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="chapters (default: every chapter of the book)")
    parser.add_argument("--cells", action="store_true", help="print the peak after every cell; record nothing")
    args = parser.parse_args(argv)
    names = args.names or chapters()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor, _ = peak_of(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FLOOR)]), folder, "floor")
        print(f"{'imports only':16s} {floor:.2f} GB ({floor * 1e9 / 2**30:.2f} GiB)", flush=True)
        for name in names:
            gb, seconds = peak_of(jupytext.read(BOOK / f"{name}.md"), folder, name, args.cells)
            rows.append((name, gb, seconds))
            print(f"{name:16s} {gb:.2f} GB ({gb * 1e9 / 2**30:.2f} GiB)  {seconds:.0f} s  "
                  f"{'ok' if gb < TARGET_GB else 'ABOVE TARGET'}", flush=True)
    if args.cells:
        return 0
    lines = [f"the kernel's imports alone (torch, scipy, pandas, matplotlib, underspec, bookrun): {floor:.2f} GB "
             f"({floor * 1e9 / 2**30:.2f} GiB)"]
    lines += [f"{name}: {gb:.2f} GB ({gb * 1e9 / 2**30:.2f} GiB) peak RSS, {seconds:.0f} s "
              f"({'under' if gb < TARGET_GB else 'ABOVE'} the {TARGET_GB:g} GB target)" for name, gb, seconds in rows]
    append_result("chapter_memory: each chapter's kernel, default parameters, cached runs (GB = 10^9 bytes)",
                  "cpu", lines)
    return 0 if all(gb < TARGET_GB for _, gb, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

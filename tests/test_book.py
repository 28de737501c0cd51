"""The book's chapters execute: every chapter in book/_toc.yml runs top to bottom with tiny parameters
(papermill), draws its figures, and has no error output. A broken chapter fails here, before the slow build.

The tiny grid (3 seeds, 2 lambdas, 2 class counts, 2 epochs on 500 images) is trained once into a temporary
cache that all chapters share, as the real build does with runs/cache.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
TINY = {"dataset": "mnist-5k", "seeds": [0, 42, 1337], "l1": [0.0, 0.01], "classes": [5, 10], "epochs": 2,
        "n_train": 500, "n_test": 200, "device": "cpu"}


def toc_chapters() -> list[str]:
    """The notebook chapters of the table of contents, in order (pages without code cells are skipped)."""
    names = re.findall(r"(?:root|file):\s*(\S+)", (BOOK / "_toc.yml").read_text())
    return [n for n in names if "```{code-cell}" in (BOOK / f"{n}.md").read_text()]


CHAPTERS = toc_chapters()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("runs-cache")


def execute(name: str, cache: Path, out_dir: Path):
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    from nbclient.exceptions import CellTimeoutError

    nb = jupytext.read(BOOK / f"{name}.md")
    source = out_dir / f"{name}.ipynb"
    jupytext.write(nb, source)
    has_parameters = any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    params = {**TINY, "results_dir": str(cache)} if has_parameters else {}
    # A tiny chapter runs in seconds. Rarely the kernel's reply is lost and nbclient waits forever (papermill
    # issue 711): a cell that takes 5 minutes is that hang, and the chapter is run once more.
    for attempt in (1, 2):
        try:
            return papermill.execute_notebook(str(source), str(out_dir / f"{name}.out.ipynb"), parameters=params,
                                              cwd=str(BOOK), kernel_name="python3", progress_bar=False,
                                              execution_timeout=300, request_save_on_cell_execute=False)
        except CellTimeoutError:
            if attempt == 2:
                raise


def test_every_chapter_is_listed_and_parameterised():
    assert len(CHAPTERS) >= 8, CHAPTERS
    for name in CHAPTERS:
        if name == "intro":
            continue
        text = (BOOK / f"{name}.md").read_text()
        assert ":tags: [parameters" in text, f"{name}.md has no papermill parameters cell"
        for key in ("dataset", "epochs", "device", "results_dir", "seeds"):
            assert re.search(rf"^{key}\s*=", text, re.M), f"{name}.md: parameter {key} missing"


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_executes(name, cache, tmp_path):
    nb = execute(name, cache, tmp_path)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    figure_cells = sum("figure:" in cell.source or "mystnb" in str(cell.get("metadata", {}))
                       for cell in nb.cells if cell.cell_type == "code")
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    if name != "intro":
        assert len(pngs) >= max(1, figure_cells), f"{name}: {len(pngs)} images for {figure_cells} figure cells"
        for o in pngs:  # each image is a real, non-empty PNG
            assert base64.b64decode(o["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ explorers

LIVE_BUILD = r"""
import underspec
from underspec.report import widgets
data = underspec.load_dataset("mnist-5k").take(300, 100)
grid = underspec.Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(5, 10), epochs=2)
run = underspec.train(grid, data, progress=False, probe_size=50, snapshots=True, embeddings=True)
labels = data.y_test[run.probe_index]
boxes = [ex.widget for ex in (widgets.training_explorer(run), widgets.permutation_explorer(run, data.x_test[:50]),
                              widgets.matching_explorer(run), widgets.gradient_explorer(run),
                              widgets.representation_explorer(run, labels))]
"""
# between cells the front end (nbclient) hands the Output widgets' captured images back to the kernel
LIVE_MOVE = r"""
def images(box):
    return [o["data"]["image/png"] for o in box.children[1].outputs if "image/png" in o.get("data", {})]
before = [images(box) for box in boxes]
for box in boxes:
    for control in box.children[0].children:       # move every control to another value
        options = getattr(control, "options", None)
        if options:
            control.value = options[-1][1] if control.value != options[-1][1] else options[0][1]
        elif hasattr(control, "max"):
            control.value = control.min if control.value != control.min else control.max
        else:
            control.value = not control.value
"""
LIVE_CHECK = r"""
after = [images(box) for box in boxes]
report = [(len(b), len(a), b != a) for b, a in zip(before, after)]
print(report)
assert all(nb == 1 and na == 1 and changed for nb, na, changed in report), report
"""


@pytest.mark.slow
def test_explorers_redraw_live_in_a_kernel():
    """In a real kernel with a front end (nbclient), each explorer shows one figure, and moving its
    controls replaces it by a different one."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (LIVE_BUILD, LIVE_MOVE, LIVE_CHECK)])
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300).execute()  # a failed assert raises here


def test_explorer_static_fallbacks():
    """Without a kernel an explorer shows its default figure as PNG (or the precomputed HTML slider)."""
    import underspec
    from underspec.report import widgets

    data = underspec.load_dataset("mnist-5k").take(300, 100)
    grid = underspec.Grid(seeds=(0, 42), l1=(0.0,), n_classes=(10,), epochs=2)
    run = underspec.train(grid, data, progress=False, probe_size=40, snapshots=True, embeddings=True)
    ex = widgets.representation_explorer(run, data.y_test[run.probe_index], static_epochs=[0, 1, 2])
    bundle = ex._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert bundle["text/html"].count('"iVBORw0KGgo') == 3 and 'type="range"' in bundle["text/html"]  # 3 frames
    assert "application/vnd.jupyter.widget-view+json" not in bundle  # no kernel here: no widget view
    with pytest.raises(underspec.UnderspecError):
        widgets.training_explorer(run, seed=7)  # a default outside the grid is refused, clearly

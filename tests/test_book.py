"""The book's chapters execute: every chapter in book/_toc.yml runs top to bottom with tiny parameters
(papermill), draws its figures, and has no error output. A broken chapter fails here, before the slow build.

The tiny grid (3 seeds, 2 lambdas, 2 class counts, 2 epochs on 500 images) is trained once into a temporary
cache that all chapters share, as the real build does with runs/cache. The study chapter also reads a tiny
committed study (tables written here the way scripts/results.py writes them) beside the missing ones, so both
of its paths run: tables present, and "not yet run". One chapter runs through papermill's own command line,
with every list given as the text ``-p`` passes.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from underspec.studies import book_study

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
TINY = {"dataset": "mnist-5k", "seeds": [0, 42, 1337], "l1": [0.0, 0.01], "classes": [5, 10], "epochs": 2,
        "n_train": 500, "n_test": 200, "device": "cpu"}


def toc_chapters() -> list[str]:
    """The notebook chapters of the table of contents, in order (pages without code cells are skipped)."""
    names = re.findall(r"(?:root|file):\s*(\S+)", (BOOK / "_toc.yml").read_text())
    return [n for n in names if "```{code-cell}" in (BOOK / f"{n}.md").read_text()]


CHAPTERS = toc_chapters()


STUDY = "mnist5k-paper-steps"  # the committed study the tiny results folder holds (the others are missing)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("runs-cache")


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """A results folder with one tiny committed study: its config and the tables scripts/results.py writes."""
    import yaml

    import underspec

    root = tmp_path_factory.mktemp("results")
    folder = root / STUDY
    folder.mkdir()
    data = underspec.load_dataset("mnist-5k").take(400, 150)
    grid = underspec.Grid(seeds=(0, 42, 1337), l1=(0.0, 0.01), n_classes=(5, 10), epochs=1)
    run = underspec.train(grid, data, progress=False, snapshots=False, embeddings=False)
    far = underspec.load_dataset("fashion-mnist", download=False).take(1, 150)
    for name, table in underspec.study_tables(run, data, far=far).items():
        table.to_parquet(folder / f"{name}.parquet", index=False)
    run.history.to_parquet(folder / "history.parquet", index=False)
    config = {"dataset": "mnist-5k", "seeds": list(grid.seeds), "l1": list(grid.l1), "n_classes": list(grid.n_classes),
              "epochs": grid.epochs, "n_train": 400, "n_test": 150, "pairs": "all", "out": str(root / "scratch")}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def execute(name: str, cache: Path, out_dir: Path, extra: dict | None = None):
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")

    nb = jupytext.read(BOOK / f"{name}.md")
    source = out_dir / f"{name}.ipynb"
    jupytext.write(nb, source)
    has_parameters = any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    params = {**TINY, "results_dir": str(cache), **(extra or {})} if has_parameters else {}
    # A tiny chapter runs in seconds, its first one (which trains the shared runs) in about a minute; the
    # limits leave room for a loaded machine (a kernel starting under load, a cell waiting for a core), and a
    # failure is reported once, never retried.
    with static_explorers():  # as the book builds them (Makefile): the live view is not on the pages
        return papermill.execute_notebook(str(source), str(out_dir / f"{name}.out.ipynb"), parameters=params,
                                          cwd=str(BOOK), kernel_name="python3", progress_bar=False,
                                          execution_timeout=CELL_TIMEOUT, start_timeout=START_TIMEOUT,
                                          request_save_on_cell_execute=False)


@contextlib.contextmanager
def static_explorers():
    """The explorers' static view in the kernels started inside the block (``widgets.STATIC_ENV``)."""
    from underspec.report.widgets import STATIC_ENV

    before = os.environ.get(STATIC_ENV)
    os.environ[STATIC_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STATIC_ENV, None)
        else:
            os.environ[STATIC_ENV] = before


CELL_TIMEOUT, START_TIMEOUT = 600, 180  # seconds


def execute_in_kernel(nb):
    """Run a notebook in place with nbclient, with the limits of ``execute``."""
    nbclient = pytest.importorskip("nbclient")
    return nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                                   startup_timeout=START_TIMEOUT).execute()


def bookrun():
    """book/bookrun.py, the chapters' shared configuration, imported from its file."""
    spec = importlib.util.spec_from_file_location("bookrun", BOOK / "bookrun.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_parameters_cell_is_the_shared_one():
    """Each chapter's papermill parameters cell is exactly ``bookrun.parameters_cell(chapter)`` (the shared
    ``PARAMETERS`` plus the chapter's own lines), papermill reads every parameter of it without a warning,
    and the copy shown in running.md is the same text."""
    jupytext = pytest.importorskip("jupytext")
    from papermill.translators import PythonTranslator

    book = bookrun()
    shared = ["dataset", "seeds", "l1", "classes", "epochs", "steps", "n_train", "n_test", "device", "results_dir"]
    for name in CHAPTERS:
        cells = [c for c in jupytext.read(BOOK / f"{name}.md").cells
                 if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(cells) == 1, f"{name}.md has {len(cells)} parameters cells"
        assert cells[0].source == book.parameters_cell(name), f"{name}.md: the parameters cell differs from bookrun"
        names = [p.name for p in PythonTranslator.inspect(cells[0])]  # it logs "Unable to parse" and skips
        assert names == shared + (["sweep_dir", "studies_dir"] if name == "study" else []), (name, names)
    assert f"```python\n{book.PARAMETERS}\n```" in (BOOK / "running.md").read_text()


def test_book_study_reads_parameter_strings(tmp_path):
    """papermill's -p passes lists as text: book_study hands the raw values to Grid, which reads them."""
    book = bookrun()
    runs = book_study("mnist-5k", seeds="[0, 42]", l1="0 0.01", classes="4-5", epochs=1, n_train=200,
                          n_test=32, device="cpu", results_dir=str(tmp_path), steps="None")
    assert runs.paper.grid.seeds == (0, 42) and runs.paper.grid.l1 == (0.0, 0.01)
    assert runs.paper.grid.n_classes == (4, 5) and runs.detail.grid.n_classes == (5,)  # C = 5 has per-epoch records
    assert runs.detail.embeddings.shape[:2] == (len(runs.detail.grid), 2)  # init + 1 epoch
    banner = book.what_was_run(runs).data
    assert banner.startswith("```{admonition} What was run for this page\n") and runs.summary() in banner


def test_book_study_takes_a_steps_budget(tmp_path):
    """``steps`` (a string, as papermill passes it) sets the epochs: the fewest whole epochs that reach it; the
    subset-mode grid trains as many epochs (a steps budget is refused in subset mode)."""
    # C = 10 only: its subset-mode grid keeps all 64 images, one batch (a batch larger than the images is refused)
    runs = book_study("mnist-5k", seeds="[0]", l1="0", classes="10", n_train=64, n_test=32, device="cpu",
                          results_dir=str(tmp_path), steps="3")
    assert runs.epochs == 3 and runs.steps == 3 and runs.paper.grid.epochs == 3  # one step an epoch
    assert runs.subset.grid.class_mode == "subset" and runs.subset.grid.epochs == 3
    assert "3 epochs = 3 SGD steps" in runs.summary()


def test_every_chapter_is_listed_and_parameterised():
    assert len(CHAPTERS) >= 8, CHAPTERS
    for name in CHAPTERS:
        text = (BOOK / f"{name}.md").read_text()
        assert ":tags: [parameters" in text, f"{name}.md has no papermill parameters cell"
        for key in ("dataset", "epochs", "device", "results_dir", "seeds"):
            assert re.search(rf"^{key}\s*=", text, re.M), f"{name}.md: parameter {key} missing"


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_executes(name, cache, studies, tmp_path):
    nb = execute(name, cache, tmp_path, {"studies_dir": str(studies)} if name == "study" else None)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    figure_cells = sum("figure:" in cell.source or "mystnb" in str(cell.get("metadata", {}))
                       for cell in nb.cells if cell.cell_type == "code")
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    if name != "intro":
        assert len(pngs) >= max(1, figure_cells), f"{name}: {len(pngs)} images for {figure_cells} figure cells"
        for o in pngs:  # each image is a real, non-empty PNG
            assert base64.b64decode(o["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_chapter_runs_from_papermills_command_line_with_text_parameters(tmp_path):
    """`papermill ... -p seeds "[0, 42]" -p classes "5 10"`: every value arrives as the text (or number) that
    papermill's command line makes of it; the chapter reads them, papermill parses the parameters cell without
    an "Unable to parse" warning, and knows every parameter passed."""
    jupytext = pytest.importorskip("jupytext")
    pytest.importorskip("papermill")
    source = tmp_path / "symmetry.ipynb"
    jupytext.write(jupytext.read(BOOK / "symmetry.md"), source)
    params = {"seeds": "[0, 42]", "classes": "5 10", "l1": "0 0.01", "steps": "10", "n_train": "300",
              "n_test": "100", "device": "cpu", "results_dir": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "papermill", str(source), str(tmp_path / "out.ipynb"), "--cwd", str(BOOK),
               "-k", "python3", "--no-progress-bar", "--log-level", "INFO"]
    for key, value in params.items():
        command += ["-p", key, value]
    with static_explorers():
        done = subprocess.run(command + ["--execution-timeout", str(CELL_TIMEOUT), "--start-timeout",
                                         str(START_TIMEOUT)], capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "Unable to parse" not in log and "Passed unknown parameter" not in log, log[-3000:]
    nb = __import__("nbformat").read(tmp_path / "out.ipynb", as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'seeds = "[0, 42]"' in injected.source and "steps = 10" in injected.source, injected.source


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
    pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (LIVE_BUILD, LIVE_MOVE, LIVE_CHECK)])
    execute_in_kernel(nb)  # a failed assert raises here


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


def test_every_figure_of_a_notebook_is_shown_not_only_the_first():
    """The per-figure style (style.styled) must leave the backend's own state alone: in a kernel, the inline
    backend turns interactive mode on while the first figure is drawn, and every later figure needs it."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    code = ("import numpy as np, pandas as pd\nfrom underspec.report import curves\n"
            "values = pd.DataFrame({'kind': ['a', 'a', 'b'], 'v': [1.0, 2.0, 3.0]})\n")
    draw = "curves.bars_with_points(values, x='kind', y='v', title='t', ylabel='v');"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(draw),
                                         nbformat.v4.new_code_cell(draw), nbformat.v4.new_code_cell(draw)])
    execute_in_kernel(nb)
    pngs = [o for cell in nb.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pngs) == 3


def test_the_running_pages_commands_work_in_a_fresh_shell_once_the_environment_is_active():
    """Every command of book/running.md's shell blocks: a make target the Makefile has, or a program that the
    project's environment provides and that answers in a fresh shell after `. .venv/bin/activate` (as the
    page says)."""
    text = (BOOK / "running.md").read_text()
    assert ". .venv/bin/activate" in text
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    commands = [line for line in lines if line]
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.M))
    venv = Path(sys.executable).parent.parent
    programs = set()
    for command in commands:
        words = [w for w in command.replace("&&", " ").split() if "=" not in w.split("/")[0]]
        if words[0] == "make":
            assert words[1] in targets, command
        elif words[0] not in (".", "python", "pip", "conda"):
            programs.add(words[0])
    assert programs <= {"jupytext", "papermill", "underspec", "jupyter"}, programs
    for program in sorted(programs):
        check = f". {venv}/bin/activate && cd {ROOT} && {program} --help >/dev/null"
        done = subprocess.run(["bash", "-c", check], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, (program, done.stderr[-500:])


def test_explorers_show_their_static_view_when_the_build_asks(monkeypatch):
    """In a kernel an explorer adds its live widget view, except where ``STATIC_ENV`` is set (the book's build
    and these tests): its Output widget had the executing client send comm messages on the shell socket it was
    waiting on, which hung builds."""
    ipywidgets = pytest.importorskip("ipywidgets")
    import IPython

    from underspec.report import widgets

    class Kernelish:
        kernel = object()

    from matplotlib.figure import Figure

    ex = widgets.Explorer(lambda v: Figure(figsize=(1, 1)), {"v": ("v", [1, 2])}, {"v": 1})
    ex._widget = ipywidgets.Label("live")  # a live view that needs no drawing in this fake kernel
    monkeypatch.setattr(IPython, "get_ipython", lambda: Kernelish())
    monkeypatch.delenv(widgets.STATIC_ENV, raising=False)
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()
    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" not in bundle and "image/png" in bundle

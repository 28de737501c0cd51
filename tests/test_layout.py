"""The house rules: imports run one way along the data flow, importing changes nothing global, and a new knob
declared on Grid reaches every place that derives from it without further edits."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import underspec

PACKAGE = Path(underspec.__file__).parent
# Each layer may import only from the layers listed for it (besides itself).
ALLOWED = {
    "base": set(),  # errors.py, files.py, progress.py, text.py
    "training": {"base"},
    "metrics": {"base", "training"},
    "tuning": {"base", "training", "sweep files"},  # Optuna searches, each batch of trials one grid of the engine
    "studies": {"base", "training", "metrics", "tuning", "sweep files"},
    "report": {"base", "training", "metrics", "studies"},
    "sweeps": {"base", "training", "metrics", "studies", "report", "sweep files"},
    "sweep files": {"base", "training"},  # sweeps/config.py and store.py: what a sweep writes, and how to read it
    "cli": {"base", "training", "metrics", "tuning", "studies", "report", "sweeps", "sweep files"},
    "face": {"base", "training", "metrics"},  # __init__.py: the public names of the first two layers
}
SWEEP_FILES = ("underspec.sweeps.config", "underspec.sweeps.store")
# Modules of one idea: none of the package's over this many lines; the book's own helpers stay small (the
# chapters' analyses belong in the package, tested).
MODULE_LINES = 500
BOOK_HELPERS = {"bookrun.py": 200}


def layer_of(module: str) -> str:
    """'underspec.training.engine' -> 'training'; 'underspec.errors' -> 'base'."""
    parts = module.split(".")
    if parts == ["underspec"]:
        return "face"
    if module in SWEEP_FILES:
        return "sweep files"
    if parts[1] in ("training", "metrics", "tuning", "studies", "report", "sweeps"):
        return parts[1]
    return "cli" if parts[1] == "cli" else "base"


def package_imports():
    """(importing module, imported module, is at module top level, enclosing function) for every import of
    the package's own modules, resolved to dotted names."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = module if rel.name == "__init__" else module.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        functions = {id(n): f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                targets = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # from . import a, b
                    targets = [f"{targets[0]}.{alias.name}" for alias in node.names]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                targets = [n for n in names if n and n.split(".")[0] == "underspec"]
            else:
                continue
            for target in targets:
                found.append((module, target, id(node) in top, functions.get(id(node))))
    return found


def test_imports_run_one_way_along_the_data_flow():
    bad = [(a, b) for a, b, _, _ in package_imports()
           if layer_of(b) != layer_of(a) and layer_of(b) not in ALLOWED[layer_of(a)]]
    assert not bad, f"imports against the data flow: {bad}"


def test_every_layer_is_known_and_every_module_is_one_idea():
    """Every package folder is a layer of ALLOWED; no module is longer than MODULE_LINES; the book's helper
    modules (outside the package) stay under their limits."""
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders <= set(ALLOWED), folders - set(ALLOWED)
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MODULE_LINES}
    assert not long, f"modules over {MODULE_LINES} lines (split them by idea): {long}"
    book = PACKAGE.parent / "book"
    for name, limit in BOOK_HELPERS.items():
        n = len((book / name).read_text().splitlines())
        assert n <= limit, f"book/{name} has {n} lines (limit {limit}): move analysis into underspec.studies"
    assert sorted(p.name for p in book.glob("*.py")) == sorted(BOOK_HELPERS), "a new helper module in book/"


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for a, b, _, _ in package_imports():
        graph.setdefault(a, set()).add(b)

    def visit(node, path):
        if node in path:
            return path[path.index(node):] + [node]
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt, path + [node])
            if cycle:
                return cycle
        return None

    for start in graph:
        cycle = visit(start, [])
        assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_lazy_imports_only_one_per_command_in_the_cli():
    lazy = [(a, b, fn) for a, b, top, fn in package_imports() if not top]
    assert all(a == "underspec.cli" and fn and fn.startswith("cmd_") for a, _, fn in lazy), lazy
    per_command = {}
    for _, _, fn in lazy:
        per_command[fn] = per_command.get(fn, 0) + 1
    assert all(n == 1 for n in per_command.values()), per_command


def test_underspec_train_does_not_load_matplotlib_or_papermill():
    code = ("import sys, underspec.cli; underspec.cli.build_parser(); "
            "print(sorted(m for m in ('matplotlib', 'papermill', 'submitit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_importing_the_package_changes_no_global_state():
    """Every module imported: matplotlib's rcParams, torch's RNG and defaults, numpy's RNG stay as they were."""
    code = """
import json, sys
import matplotlib, numpy, torch
before = (dict(matplotlib.rcParams), torch.random.get_rng_state().sum().item(), str(torch.get_default_dtype()),
          numpy.random.get_state()[1].sum().item(), torch.get_num_threads())
import pkgutil, importlib, underspec
for info in pkgutil.walk_packages(underspec.__path__, "underspec."):
    importlib.import_module(info.name)
after = (dict(matplotlib.rcParams), torch.random.get_rng_state().sum().item(), str(torch.get_default_dtype()),
         numpy.random.get_state()[1].sum().item(), torch.get_num_threads())
changed = [k for k in before[0] if str(before[0][k]) != str(after[0][k])]
print(json.dumps({"rc": changed, "rest": [str(b) == str(a) for b, a in zip(before[1:], after[1:])]}))
"""
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout.strip().splitlines()[-1])
    assert out == {"rc": [], "rest": [True, True, True, True]}


# ------------------------------------------------------------------------------------------- one list of knobs

@pytest.fixture
def throwaway_knob(monkeypatch):
    """Grid with one extra knob, ``throwaway``, put in place of Grid everywhere the package names it."""
    from underspec.training.grid import Grid, knob, parse_int

    Extended = dataclasses.make_dataclass(
        "Grid", [("throwaway", int, knob(0, "a knob for this test only", parse=parse_int, label="throwaway {}"))],
        bases=(Grid,), frozen=True)
    for name, module in list(sys.modules.items()):
        if name.startswith("underspec") and getattr(module, "Grid", None) is Grid:
            monkeypatch.setattr(module, "Grid", Extended)
    return Extended


def test_a_new_grid_field_reaches_the_cli_the_sweep_config_and_the_cache_key(throwaway_knob, small):
    from underspec.cli import build_parser, config_from_args, grid_from_args
    from underspec.report.style import describe
    from underspec.sweeps.config import SweepConfig
    from underspec.training.cache import run_key

    args = build_parser().parse_args(["train", "--throwaway", "3", "--seeds", "0-2"])
    grid = grid_from_args(args)
    assert grid.throwaway == 3 and grid.seeds == (0, 1, 2)
    config = config_from_args(build_parser().parse_args(["sweep", "--throwaway", "5", "--seeds", "0-2"]))
    assert config.throwaway == 5 and config.grid().throwaway == 5 and config.to_dict()["throwaway"] == 5
    assert "throwaway" in SweepConfig.science_keys()
    assert config.fingerprint() != config.replace(throwaway=6).fingerprint()
    shard = config.plan()[0]
    assert config.notebook_parameters(shard)["knobs"]["throwaway"] == 5
    assert run_key(grid, small) != run_key(grid.__class__(seeds=(0, 1, 2), throwaway=4), small)
    assert "throwaway 3" in describe(grid, "mnist-5k")


def test_an_optional_knob_at_its_default_leaves_keys_and_fingerprints_as_they_were(small):
    """Momentum and weight decay are optional knobs (the paper uses neither): at their defaults they are absent
    from the cache key, the sweep fingerprint and the banner, so runs cached and sweeps half-done before they
    existed are still found and resumed; set, they change all three."""
    from underspec.report.style import describe
    from underspec.sweeps.config import SweepConfig
    from underspec.training.cache import run_key

    paper = underspec.Grid.paper()
    assert {"momentum", "weight_decay"}.isdisjoint(paper.to_dict(science_only=True))
    assert {"momentum", "weight_decay"} <= set(paper.to_dict())  # a config written out still shows them
    config = SweepConfig(seeds=(0, 1))
    for knob, value in (("momentum", 0.9), ("weight_decay", 0.001)):
        changed = dataclasses.replace(paper, **{knob: value})
        assert run_key(changed, small) != run_key(paper, small)
        assert config.replace(**{knob: value}).fingerprint() != config.fingerprint()
        assert knob.replace("_", " ") in describe(changed, "mnist-5k")
        assert knob.replace("_", " ") not in describe(paper, "mnist-5k")

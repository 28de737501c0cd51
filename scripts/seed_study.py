"""The committed seed study: 40 seeds of one configuration (lambda = 0, C = 10) of full-size Fashion-MNIST at the
paper's 46,900 SGD steps, for the chapter "How many seeds?" (book/seeds.md). Too heavy for every build, so its
tables are committed under results/<name>/ (never the weights):

    results/<name>/study.json          what was trained (data set, seeds, lambda, C, steps)
    results/<name>/outputs.parquet     every network on every test image: its prediction, confidence (largest
                                       softmax probability), true-class margin and top-2 gap (clipped at +-15)
    results/<name>/members.parquet     every network: test accuracy, ECE, distance from init
    results/<name>/seeds.parquet       the how-many-seeds curves, draw by draw (alpha-hat between two disjoint
                                       M-seed references, and of a held-out network against M), and the same on
                                       each image's outputs shuffled across the seeds (null = True)
    results/<name>/laws.parquet        the disagreement equality and Jordan's spread for the 40 seeds
    results/<name>/history.parquet     every network's learning curve (every epoch)
    results/<name>/provenance.json     the package commit that trained it and that made the tables, torch,
                                       machine, wall time, first-layer products
    results/<name>/check/*.parquet     every seed trained one epoch: its learning curves, its members table and
                                       its outputs on the first 1,000 test images:
                                       tests/test_seed_study.py retrains it and finds it equal, and finds the
                                       study's own epoch-1 curves equal to the check's

    python scripts/seed_study.py               # train (or load the saved run), write the tables and the check
    python scripts/seed_study.py --train-only  # only train (and save the run)
    python scripts/seed_study.py --check       # only rewrite the check tables

The trained run is kept under runs/studies/<name>/run (ignored by git) so the tables can be rewritten without
training again. Run it at low priority: ``nice -n 19 env OMP_NUM_THREADS=1 python scripts/seed_study.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "fashion-mnist-40-seeds"
STUDY = {"dataset": "fashion-mnist", "seeds": "0-39", "l1": [0.0], "n_classes": [10], "steps": 46900}
CHECK_EPOCHS = 1


def results_dir() -> Path:
    return ROOT / "results" / NAME


def run_dir() -> Path:
    return ROOT / "runs" / "studies" / NAME / "run"


def grid(epochs_only: int | None = None):
    """The study's grid; ``epochs_only``: the same networks trained that many epochs (the check)."""
    from underspec import Grid

    knobs = {k: v for k, v in STUDY.items() if k != "dataset"}
    if epochs_only is not None:
        knobs = {**knobs, "steps": None, "epochs": epochs_only}
    return Grid(**knobs)


def data():
    import underspec

    return underspec.load_dataset(STUDY["dataset"], download=False)


def code_version() -> str:
    """The commit of the package this process imports: a clean export carries its commit in a COMMIT file
    beside the package; a checkout gives git's HEAD, marked when the package has uncommitted changes."""
    import underspec

    package = Path(underspec.__file__).resolve().parent
    stamp = package.parent / "COMMIT"
    if stamp.is_file():
        return f"{stamp.read_text().strip()} (clean export)"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "underspec"], cwd=package.parent,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    import torch

    model = "cpu"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()}, {torch.get_num_threads()} threads, {model}"


def train_study(progress: bool = True):
    """Train the study (or load the run saved by an earlier call) and say what trained it."""
    import torch

    import underspec

    marker = run_dir().parent / "trained.json"
    if marker.is_file() and (run_dir() / "run.json").is_file():
        return underspec.load_run(run_dir()), json.loads(marker.read_text())
    started, version = time.time(), code_version()
    run = underspec.train(grid(), data(), device="cpu", progress=progress, snapshots=False, embeddings=False)
    seconds = round(time.time() - started, 1)
    if run_dir().exists():
        import shutil

        shutil.rmtree(run_dir())
    run.save(run_dir())
    trained = {"trained_with_package_code": version, "torch": torch.__version__,
               "python": platform.python_version(), "machine": machine(), "train_seconds": seconds,
               "trained": time.strftime("%Y-%m-%d %H:%M:%S"), "sparse": bool(run.meta.get("sparse")),
               "epochs": run.grid.for_data(60000).epochs}
    marker.write_text(json.dumps(trained, indent=2) + "\n")
    return run, trained


def outputs_table(run, data, n_test: int | None = None):
    """Every network on every test image (the first ``n_test``): prediction, confidence, margin and top-2 gap;
    with the logits (S, T, C) and labels (T,) they come from."""
    import numpy as np
    import pandas as pd

    from underspec.metrics.trimming import scalar_outputs
    from underspec.training.model import forward

    g = run.grid
    x, y = data.x_test[:n_test].double(), data.y_test[:n_test]
    logits = forward({k: v.double() for k, v in run.stack(g.l1[0], g.n_classes[0]).items()}, x)  # (S, T, C)
    confidence, pred = logits.softmax(-1).max(-1)
    s, t = pred.shape
    return pd.DataFrame({"seed": np.repeat(np.array(g.seeds), t), "image": np.tile(np.arange(t), s),
                         "label": np.tile(y.numpy(), s).astype(np.int8), "pred": pred.numpy().ravel().astype(np.int8),
                         "confidence": confidence.numpy().ravel().astype(np.float32),
                         "margin": scalar_outputs(logits, y, "margin").numpy().ravel().astype(np.float32),
                         "top2": scalar_outputs(logits, y, "top2").numpy().ravel().astype(np.float32)}), logits, y


def members_table(run, logits, labels):
    """Every network: test accuracy, expected calibration error, distance of its parameters from init."""
    import pandas as pd
    import torch

    from underspec.metrics.predictions import accuracy, expected_calibration_error

    init, final = run.stack(run.grid.l1[0], run.grid.n_classes[0], "init"), run.stack(run.grid.l1[0],
                                                                                         run.grid.n_classes[0])
    distance = torch.sqrt(sum(((final[k] - init[k]).double() ** 2).flatten(1).sum(1) for k in init)
                          / sum((init[k].double() ** 2).flatten(1).sum(1) for k in init))
    return pd.DataFrame({"seed": list(run.grid.seeds), "test_acc": accuracy(logits, labels).numpy(),
                         "ece": expected_calibration_error(logits, labels).numpy(), "rel_change": distance.numpy()})


def derived_tables(run, data) -> dict:
    """The tables the chapter reads: outputs, members, the how-many-seeds curves (and their null), the laws."""
    import pandas as pd

    from underspec.metrics.seed_laws import seeds_curve
    from underspec.studies.seeds import N_BOOT, N_DRAWS, OUTPUT, curve_ms, laws_row, null_values
    from underspec.metrics.trimming import scalar_outputs
    from underspec.training.grid import PAPER_SEEDS

    outputs, logits, labels = outputs_table(run, data)
    values = scalar_outputs(logits, labels, OUTPUT)
    ms = curve_ms(len(values), len(PAPER_SEEDS))
    draws = pd.concat([seeds_curve(v, ms=ms, n_draws=N_DRAWS, n_boot=N_BOOT).assign(null=flag)
                       for v, flag in ((values, False), (null_values(values), True))], ignore_index=True)
    g = run.grid
    laws = pd.DataFrame([{"setting": "many", "l1": g.l1[0], "n_classes": g.n_classes[0], **laws_row(logits, labels)}])
    return {"outputs": outputs, "members": members_table(run, logits, labels), "seeds": draws, "laws": laws,
            "history": run.history}


def check_tables(sparse: bool) -> dict:
    """The check: every seed trained ``CHECK_EPOCHS`` epoch(s) on the CPU with the study's products; its
    learning curves, members and its outputs on the first 1,000 test images."""
    import underspec

    d = data()
    run = underspec.train(grid(epochs_only=CHECK_EPOCHS), d, device="cpu", progress=False, snapshots=False,
                          embeddings=False, sparse=sparse)
    outputs, logits, labels = outputs_table(run, d, 1000)
    return {"history": run.history, "outputs": outputs, "members": members_table(run, logits, labels)}


def write(table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)


def publish(check_only: bool = False) -> None:
    folder = results_dir()
    if not check_only:
        run, trained = train_study()
        started, version = time.time(), code_version()
        d = data()
        for name, table in derived_tables(run, d).items():
            write(table, folder / f"{name}.parquet")
        from underspec.studies.seeds import N_BOOT, N_DRAWS, OUTPUT

        study = {"dataset": STUDY["dataset"], "seeds": list(run.grid.seeds), "n_seeds": len(run.grid.seeds),
                 "l1": run.grid.l1[0], "n_classes": run.grid.n_classes[0], "steps": STUDY["steps"],
                 "epochs": run.grid.for_data(len(d.y_train)).epochs, "n_train": len(d.y_train),
                 "n_test": len(d.y_test), "output": OUTPUT, "n_draws": N_DRAWS, "n_boot": N_BOOT}
        (folder / "study.json").write_text(json.dumps(study, indent=2) + "\n")
        provenance = {**trained, "tables_written_with_package_code": version,
                      "tables_machine": machine(), "tables_seconds": round(time.time() - started, 1),
                      "written": time.strftime("%Y-%m-%d %H:%M:%S")}
        (folder / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    provenance = json.loads((folder / "provenance.json").read_text())
    for name, table in check_tables(bool(provenance["sparse"])).items():
        write(table, folder / "check" / f"{name}.parquet")
    print(f"{NAME}: tables written to {folder}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-only", action="store_true", help="only train and save the run")
    parser.add_argument("--check", action="store_true", help="only rewrite the check tables")
    args = parser.parse_args(argv)
    from underspec.errors import UnderspecError

    try:
        if args.train_only:
            train_study()
        else:
            publish(check_only=args.check)
    except UnderspecError as exc:
        print(f"seed_study: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

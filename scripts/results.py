"""The results store: studies too heavy for every book build, run by `underspec sweep` from a config committed
under results/<study>/config.yaml, and kept as tidy tables beside it (never the weights):

    results/<study>/config.yaml        the sweep config (its out: is a scratch folder under runs/, ignored by git)
    results/<study>/metrics.parquet    compare(): every seed pair, configuration and target, with the nulls
    results/<study>/members.parquet    every network: accuracy, distance from init, dead units, divergence
    results/<study>/shifts.parquet     every seed pair on every shifted test set
    results/<study>/history.parquet    every network's learning curve (epochs after 50: every 10th and the last)
    results/<study>/cka.parquet        cka_table(): every seed pair's CKA and its baselines, probe images left out
                                       block by block (the representations verdict and its crossed interval)
    results/<study>/mechanism.parquet  gradient_mechanism(): APC-1 of the summed gradients beside that of the
                                       initial weights and the distance from init, per configuration
    results/<study>/twins.parquet      twin_pairs(): the study's first seeds at its largest C retrained one
                                       ulp apart (perturb_ulp=1) against themselves: the rounding floor
    results/<study>/provenance.json    the code version, torch version, device, machine and wall time behind it
    results/<study>/check/*.parquet    the same tables for the study's first configuration trained one epoch:
                                       tests/test_results.py recomputes them and finds them equal, and finds
                                       the study's own epoch-1 curves equal to theirs

    python scripts/results.py                 # every study (resumes a sweep that stopped)
    python scripts/results.py NAME ...        # some of them
    python scripts/results.py --check NAME    # only rewrite the check tables
    python scripts/results.py --twins NAME    # only rewrite the twins (from the shards' runs on this machine)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

import underspec
from underspec import Grid
from underspec.sweeps.config import SweepConfig
from underspec.sweeps.execute import run_sweep
from underspec.sweeps.store import MARKER, SHARDS_DIR, load_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
TABLES = ("metrics", "members", "shifts")  # the sweep's own tables, gathered from its shards
DERIVED = ("cka", "mechanism", "shifts")  # computed from each shard's run after the sweep (shifts: again, with blocks)
TWIN_SEEDS = 7  # the study's first seeds get one-ulp twins (at its largest C): the rounding floor


def studies(names=()) -> list[Path]:
    found = sorted(p.parent for p in RESULTS.glob("*/config.yaml"))
    if names:
        found = [p for p in found if p.name in names]
        missing = set(names) - {p.name for p in found}
        if missing:
            sys.exit(f"no study {sorted(missing)} under {RESULTS}: each needs results/<name>/config.yaml")
    return found


def config_of(study: Path) -> SweepConfig:
    config = SweepConfig.from_yaml(study / "config.yaml")
    return config.replace(out=str(ROOT / config.out)) if not Path(config.out).is_absolute() else config


def thin_history(history: pd.DataFrame) -> pd.DataFrame:
    """Every epoch up to 50, then every 10th and the last (a 46,900-step study has 745 epochs)."""
    last = history.epoch.max()
    keep = (history.epoch <= 50) | (history.epoch % 10 == 0) | (history.epoch == last)
    return history[keep].reset_index(drop=True)


def check_grid(config: SweepConfig) -> underspec.Grid:
    """The study's first configuration (first shard, first lambda and C), every seed, one epoch."""
    shard = config.plan()[0]
    return Grid.from_dict({**config.grid().to_dict(), "l1": [shard.l1[0]], "n_classes": [shard.n_classes[0]],
                           "epochs": 1, "steps": None})


def study_sparse(config: SweepConfig, study: Path) -> bool:
    """Which first-layer products the study's networks were trained with: recorded in its first shard's run,
    or, where the sweep's scratch folder is not on this machine (a fresh checkout), in its provenance."""
    from underspec.training.run import read_run_header

    shard = Path(config.out) / SHARDS_DIR / config.plan()[0].id / "run"
    if (shard / "run.json").is_file():
        return bool(read_run_header(shard)["meta"]["sparse"])
    recorded = json.loads((study / "provenance.json").read_text()).get("sparse") \
        if (study / "provenance.json").is_file() else None
    if not isinstance(recorded, bool):
        sys.exit(f"{study.name}: neither its shards ({shard}) nor its provenance.json say which products trained "
                 f"it: run `python scripts/results.py {study.name}` (the whole study) first")
    return recorded


def check_tables(config: SweepConfig, sparse: bool) -> dict[str, pd.DataFrame]:
    """The check: ``check_grid`` trained and tabled exactly as a shard of the study is (on the CPU, with the
    study's own first-layer products: the two paths agree only to float rounding)."""
    data = underspec.load_dataset(config.dataset, root=config.data_root).take(config.n_train, config.n_test)
    far = far_of(config)
    run = underspec.train(check_grid(config), data, device="cpu", progress=False, snapshots=False, embeddings=False,
                          sparse=sparse)
    tables = underspec.study_tables(run, data, pairs=config.pairs, far=far)
    return {**tables, **derived_tables(run, data, tables["metrics"], far, config.pairs), "history": run.history}


def derived_tables(run, data, metrics: pd.DataFrame, far, pairs: str) -> dict[str, pd.DataFrame]:
    """The tables computed from a trained run beside the sweep's own: its CKA table, its gradient mechanism,
    and its shift table again with the test images left out block by block (seeds and images resampled)."""
    from underspec.metrics.representations import cka_table
    from underspec.metrics.shift import shift_table
    from underspec.studies.book import IMAGE_BLOCKS, gradient_mechanism

    return {"cka": cka_table(run, data), "mechanism": gradient_mechanism(run, metrics),
            "shifts": shift_table(run, data, far=far, pairs=pairs, n_blocks=IMAGE_BLOCKS)}


def far_of(config: SweepConfig):
    """The far shift of a study: Fashion-MNIST for MNIST-trained networks (as the shards take it)."""
    return underspec.load_dataset("fashion-mnist", download=False) if config.dataset.startswith("mnist") else None


def shard_runs(config: SweepConfig):
    """Each shard's saved run, in plan order."""
    for shard in config.plan():
        yield shard, underspec.load_run(Path(config.out) / SHARDS_DIR / shard.id / "run")


def twin_grid(config: SweepConfig) -> underspec.Grid:
    """The study's first ``TWIN_SEEDS`` seeds at its largest C, every lambda, one ulp apart (the twins)."""
    grid = config.grid()
    return Grid.from_dict({**grid.to_dict(), "seeds": list(grid.seeds[:TWIN_SEEDS]), "n_classes": [max(grid.n_classes)],
                           "perturb_ulp": 1})


TWIN_KINDS = ("one ulp", "other summation order")


def twins_table(config: SweepConfig, data, runs: list) -> pd.DataFrame:
    """``twin_pairs`` of the study's twins (``twin_grid``, trained here at one thread, as the shards were) against
    the study's own runs of the same seeds and configurations, two kinds (column ``twin``): "one ulp" (the first
    initial weight one unit in the last place higher, the study's products) and "other summation order" (the
    same networks with the other first-layer products: every step's first layer summed in another order)."""
    from underspec.metrics.rounding import twin_pairs

    grid, sparse = twin_grid(config), runs[0].meta.get("sparse")
    c = grid.n_classes[0]
    tables = []
    for kind, twin, products in zip(TWIN_KINDS, (grid, dataclasses.replace(grid, perturb_ulp=0)), (sparse, not sparse)):
        twins = underspec.train(twin, data, device=config.device, progress=True, sparse=products, threads=1)
        tables += [twin_pairs(run, twins, data).assign(twin=kind) for run in runs if c in run.grid.n_classes]
    return pd.concat(tables, ignore_index=True)


def republish_twins(study: Path) -> None:
    """Rewrite only ``twins.parquet`` (and the twins' commit and time in the provenance) from the study's shard
    runs."""
    config = config_of(study)
    data = underspec.load_dataset(config.dataset, root=config.data_root).take(config.n_train, config.n_test)
    started = time.time()
    write(twins_table(config, data, [run for _, run in shard_runs(config)]), study / "twins.parquet")
    provenance = json.loads((study / "provenance.json").read_text())
    provenance["twins_seconds"] = round(time.time() - started, 1)
    provenance["twins_published_with"] = git_version()
    (study / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"{study.name}: twins written to {study}")


def write(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)


def git_version() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "underspec", "book/sweeps"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def publish(study: Path, check_only: bool = False) -> None:
    config = config_of(study)
    if not check_only:
        started, version = time.time(), git_version()  # before the sweep: the code that runs it
        run_sweep(config, progress=True)
        results = load_results(config.out, allow_missing=False)
        for name in TABLES:
            if name not in DERIVED:
                write(results.metrics if name == "metrics" else results.tables[name], study / f"{name}.parquet")
        write(thin_history(results.history), study / "history.parquet")
        data = underspec.load_dataset(config.dataset, root=config.data_root).take(config.n_train, config.n_test)
        far = far_of(config)
        runs, derived = [], {name: [] for name in DERIVED}
        for shard, run in shard_runs(config):
            metrics = results.metrics[results.metrics.n_classes.isin(run.grid.n_classes)
                                      & results.metrics.l1.isin(run.grid.l1)]
            for name, table in derived_tables(run, data, metrics, far, config.pairs).items():
                derived[name].append(table)
            runs.append(run)
        for name, tables in derived.items():
            write(pd.concat(tables, ignore_index=True), study / f"{name}.parquet")
        twins_started = time.time()
        write(twins_table(config, data, runs), study / "twins.parquet")
        twins_seconds = round(time.time() - twins_started, 1)
        del runs
        markers = [json.loads((Path(config.out) / SHARDS_DIR / s.id / MARKER).read_text()) for s in config.plan()]
        made_with = sorted({m.get("package_code", "not recorded (made before shard markers recorded it)")
                            for m in markers})
        provenance = {"published_with": version, "shards_made_with_package_code": made_with,
                      "underspec": underspec.__version__, "torch": torch.__version__,
                      "python": platform.python_version(), "machine": f"{platform.machine()}, "
                      f"{torch.get_num_threads()} threads, {platform.processor() or 'cpu'}",
                      "devices": sorted({m.get("device") for m in markers}),
                      "shard_seconds": {m["shard"]: m["seconds"] for m in markers},
                      "wall_seconds_total": round(sum(m["seconds"] for m in markers), 1),
                      "twins_seconds": twins_seconds,
                      "written": time.strftime("%Y-%m-%d %H:%M:%S"), "publish_seconds": round(time.time() - started)}
        (study / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    sparse = study_sparse(config, study)
    provenance = json.loads((study / "provenance.json").read_text())
    (study / "provenance.json").write_text(json.dumps({**provenance, "sparse": sparse}, indent=2) + "\n")
    for name, table in check_tables(config, sparse).items():
        write(table, study / "check" / f"{name}.parquet")
    print(f"{study.name}: tables written to {study}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="studies to run (default: all)")
    parser.add_argument("--check", action="store_true", help="only rewrite the check tables")
    parser.add_argument("--twins", action="store_true", help="only rewrite the twins (needs the study's shards)")
    args = parser.parse_args(argv)
    from underspec.errors import UnderspecError

    skipped = []
    for study in studies(args.names):
        try:
            republish_twins(study) if args.twins else publish(study, check_only=args.check)
        except UnderspecError as exc:  # its data cannot be had here (full MNIST offline): the others still run
            print(f"{study.name}: skipped: {exc}", file=sys.stderr)
            skipped.append(study.name)
    if skipped:
        print(f"not run here: {', '.join(skipped)}", file=sys.stderr)
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())

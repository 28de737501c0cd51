"""The ``underspec`` command line: ``train``, ``sweep``, ``report`` and ``tune``.

The training flags of ``train`` and ``sweep`` are built from the knobs of ``Grid`` (one declaration, one flag
builder), so both commands accept the same forms (``--seeds 0-6``, ``--classes 2-10``). Bad input: one line
on stderr saying what is wrong, exit code 2. Each command checks its arguments first and imports what it
needs only then: a refused call answers before torch is loaded, and ``underspec train`` never loads matplotlib
or papermill.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import UnderspecError, check_choice, shown
from .files import check_output_folder, check_writable
from .sweeps.config import SweepConfig, SweepSettings
from .training.choices import DATASETS, check_device_name
from .training.grid import Grid, values_of
from .training.threads import PASSIVE_WAIT, check_threads
from .tuning.config import TuneConfig

TRAIN_ONLY = ("dataset", "data_root", "paper", "device", "tf32", "out", "no_progress", "threads")
SWEEP_ONLY = ("config", "dry_run", "no_progress")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2, as argparse does)."""

    def error(self, message):
        raise UnderspecError(f"{message} (see '{self.prog} --help')")


def add_knob_flags(parser: argparse.ArgumentParser, title: str) -> None:
    """One flag per knob of ``Grid`` (values are read by the grid itself, so ranges work everywhere)."""
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(Grid):
        flag = "--" + (f.metadata["flag"] or f.name).replace("_", "-")
        default = f.default if not isinstance(f.default, tuple) else " ".join(map(str, f.default))
        several = f.metadata["list"] or f.metadata["axis"]  # an axis: several values make a mixed grid
        group.add_argument(flag, dest=f.name, nargs="+" if several else None, metavar=f.name.upper(),
                           help=f"{f.metadata['help']}{'; several: an axis' * f.metadata['axis']} (default {default})")


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per key of ``SweepSettings``: science keys first, then how to run."""
    types = {int: int, float: float, str: str, "records": _records_flag}
    groups = {True: parser.add_argument_group("data and plan (decide the results)"),
              False: parser.add_argument_group("execution (may change between runs)")}
    for f in dataclasses.fields(SweepSettings):
        groups[f.metadata["science"]].add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, type=types[f.metadata["type"]],
            metavar=f.name.upper(), help=f"{f.metadata['help']} (default {f.default})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="underspec", description="Underspecification in neural networks: train and compare.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a grid of networks (seeds x L1 x classes) and print test accuracy",
                       argument_default=argparse.SUPPRESS)
    t.add_argument("--dataset", default="mnist-5k", help=f"one of {', '.join(DATASETS)} (default mnist-5k, offline)")
    t.add_argument("--data-root", dest="data_root", default=None,
                   help="folder with the torchvision files (or $UNDERSPEC_DATA)")
    t.add_argument("--paper", action="store_true", default=False,
                   help="the paper's grid: 7 seeds x 6 lambdas x C = 2..10")
    add_knob_flags(t, "the grid (defaults: one network of the paper's protocol)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda")
    t.add_argument("--tf32", action="store_true", default=False,
                   help="TF32 matrix products on a GPU: faster, not exact float32")
    t.add_argument("--threads", type=_threads_flag, default=None,
                   help="CPU threads (default: the cores this process may use, or $OMP_NUM_THREADS)")
    t.add_argument("--out", default=None, help="save the run into this (new) folder")
    t.add_argument("--no-progress", dest="no_progress", action="store_true", default=False, help="no progress bar")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "sweep", help="train a grid in shards of a papermill notebook, locally or on Slurm (resumable)",
        description="Expand the grid, split it into shards and execute book/sweeps/train_grid.md once per shard. "
                    "Flags override the config file; keys left out take the paper's values. Running the same "
                    "command again skips complete shards.",
        argument_default=argparse.SUPPRESS)
    s.add_argument("config", nargs="?", help="YAML file with the keys below (flags override it)")
    add_knob_flags(s, "the grid (default: the paper's)")
    _add_setting_flags(s)
    s.add_argument("--dry-run", dest="dry_run", action="store_true", help="check and print the plan, run nothing")
    s.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sweep)

    r = sub.add_parser("report", help="aggregate a sweep: tables (Parquet, CSV) and Figure 3.1 (PNG, SVG)",
                       description="Collect every complete shard of RESULTS_DIR into one tidy table, its "
                                   "per-configuration summary, and the Figure 3.1 panels.")
    r.add_argument("results_dir", metavar="RESULTS_DIR", help="the folder given to `underspec sweep --out`")
    r.add_argument("--out", default=None, help="where to write (default RESULTS_DIR/report)")
    r.add_argument("--complete", action="store_true", help="fail if any shard is not complete")
    r.add_argument("--no-figures", dest="no_figures", action="store_true", help="tables only")
    r.set_defaults(func=cmd_report)

    u = sub.add_parser("tune", help="search hyperparameters with Optuna, each batch of trials trained as one grid",
                       description="Run (or resume) the tuning study of CONFIG.yaml: its search space, sampler, "
                                   "budget, seeds per trial and journal file (see underspec.tuning.config). Flags "
                                   "override the file. Running it again resumes the study from its journal.",
                       argument_default=argparse.SUPPRESS)
    u.add_argument("config", help="YAML file with a space: and the keys below")
    for key, kind, help in (("sampler", str, "random, tpe or grid"), ("trials", int, "the budget of trials"),
                            ("batch", int, "trials trained at once as one grid"),
                            ("metric", str, "val_acc or val_loss"), ("pruner", str, "none, successive-halving or hyperband"),
                            ("storage", str, "the journal file"), ("study", str, "the study's name"),
                            ("workers", int, "workers sharing the study"), ("executor", str, "local or slurm"),
                            ("device", str, "auto, cpu or cuda"), ("memory_budget", int, "bytes a batch may use")):
        u.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, metavar=key.upper(), help=help)
    u.add_argument("--seeds", nargs="+", metavar="SEEDS", help="seeds per trial: a count, or seeds such as 0-4")
    u.add_argument("--threads", type=_threads_flag, help="CPU threads")
    u.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
    u.set_defaults(func=cmd_tune)
    return parser


def _threads_flag(text: str) -> int:
    try:
        return check_threads(int(text))
    except (ValueError, UnderspecError):
        raise argparse.ArgumentTypeError(f"--threads takes a whole number from 1 to 4096, not {shown(text)}") from None


def _records_flag(text: str):
    value = {"true": True, "yes": True, "false": False, "no": False, "auto": "auto"}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"--records takes true, false or auto, not {shown(text)}")
    return value


def _given(args: argparse.Namespace, skip) -> dict:
    return {k: v for k, v in vars(args).items() if k not in skip and k not in ("func", "command")}


def grid_from_args(args: argparse.Namespace) -> Grid:
    """The Grid that ``underspec train``'s flags describe."""
    knobs = _given(args, TRAIN_ONLY)
    if args.paper:
        given = [f"--{f.metadata['flag'] or f.name}" for f in dataclasses.fields(Grid)
                 if f.name in knobs and f.metadata["list"]]
        if given:
            raise UnderspecError(f"--paper fixes the grid: drop {' '.join(given)} or drop --paper")
        return Grid.paper(**knobs)
    return Grid(**knobs)


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The SweepConfig that ``underspec sweep``'s flags (over an optional YAML file) describe."""
    given = _given(args, SWEEP_ONLY)
    config = getattr(args, "config", None)
    if config:
        return SweepConfig.from_yaml(config, **given)
    return SweepConfig.from_dict(given, source="the flags")


def cmd_train(args) -> int:
    grid = grid_from_args(args)
    check_choice(args.dataset, DATASETS, "data set")
    check_device_name(args.device)
    out = None if args.out is None else check_output_folder(args.out, "--out")
    if args.data_root is not None:
        check_writable(args.data_root, "--data-root")
    from .training import data as datasets, engine, memory, run as runs  # the arguments are fine: load torch

    device = engine.resolve_device(args.device)
    data = datasets.load_dataset(args.dataset, root=args.data_root)
    grid = grid.for_data(len(data.y_train))  # a steps budget as whole epochs, as the run records it
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        header = runs.read_run_header(out) if (out / "run.json").is_file() else None
        if header is None or header["grid"] != grid.to_dict() or header["data"] != data.name:
            raise UnderspecError(f"{out} already holds {'a different run' if header else 'other files'}: "
                                 "choose a new --out folder or remove it")
        try:
            held = runs.load_run(out)
        except UnderspecError as exc:  # damaged: this command would only meet it again
            raise UnderspecError(f"{str(exc).removesuffix(': train it again')}: remove {out}, then run this command "
                                 "again to train it") from None
        print(f"{out} already holds this run; showing it (remove the folder to train again)")
        print(summary_table(held))
        return 0
    if out is not None:  # the three records of every network fit where they will be written
        size = sum(len(part) * memory.n_parameters(part, data.x_train.shape[1]) for part in grid.parts())
        check_output_folder(out, "--out", needs=3 * 4 * size)
    run = engine.train(grid, data, device=device, progress=not args.no_progress, tf32=args.tf32, threads=args.threads)
    if out is not None:
        save_or_keep(run, out)
        print(f"saved to {out}")
    threads = f", {run.meta['threads']} threads" if run.meta.get("threads") else ""
    print(f"{len(grid)} networks, {'/'.join(map(str, values_of(grid.epochs)))} epochs on {data.name} in "
          f"{run.meta['seconds']:.1f} s ({run.meta['device']}{threads})")
    thresholds = [v for v in values_of(grid.stop_loss) if v is not None]
    if thresholds:  # the stopping rule: how many stopped, and when
        epochs = [e for part in run.parts for e in part.meta.get("stopped", []) if e is not None]
        print(f"{len(epochs)} of {len(grid)} networks stopped, their training loss below "
              f"{'/'.join(f'{v:g}' for v in thresholds)}"
              + (f" (after epoch {min(epochs)} to {max(epochs)})" if epochs else ""))
    print(summary_table(run))
    warn_diverged(run)
    return 0


def save_or_keep(run, out: Path) -> None:
    """``run.save(out)``; if that fails after training (the disk filled, another process took ``out``), the run
    is saved in a fallback folder that the one-line error names, so nothing trained is lost."""
    try:
        run.save(out)
    except UnderspecError as exc:
        fallback = Path(tempfile.gettempdir()) / f"underspec-unsaved-{os.getpid()}-{int(time.time())}"
        try:
            run.save(fallback)
        except UnderspecError:
            raise UnderspecError(f"{exc}; the trained run could not be saved anywhere (also not in {fallback})") \
                from None
        said = str(exc).removesuffix(", then run again")  # the run is kept: nothing needs training again
        raise UnderspecError(f"{said}; the trained run was saved in {fallback} instead: move it where you want it "
                             "(no need to train again)") from None


def warn_diverged(run) -> None:
    """One line on stderr naming the members whose training diverged (their accuracy is not shown)."""
    diverged = [(run.settings(i), d) for i, part in enumerate(run.parts) for d in part.meta.get("diverged") or []]
    if diverged:
        shown_ = "; ".join(", ".join([f"seed {d['seed']}, λ {d['l1']:g}, C {d['n_classes']}",
                                      *(f"{k} {v}" for k, v in axes.items())]) + f" from epoch {d['epoch']}"
                           for axes, d in diverged[:3]) + (" ..." if len(diverged) > 3 else "")
        print(f"underspec: warning: {len(diverged)} of {len(run.grid)} networks diverged (loss or weights not "
              f"finite): {shown_}; lower --lr", file=sys.stderr)


def summary_table(run) -> str:
    """Final-epoch test accuracy per configuration: mean and std over the seeds that did not diverge
    (``seeds`` counts them; a configuration with none left says "diverged")."""
    final = run.tables(lambda part: part.history[part.history.epoch == part.grid.epochs])
    table = final.groupby([*run.grid.axes(), "l1", "n_classes"], dropna=False).test_acc.agg(["mean", "std", "count"])
    text = table.astype(object)
    text["mean"] = [f"{v:.4f}" if c else "diverged" for v, c in zip(table["mean"], table["count"])]
    text["std"] = [f"{v:.4f}" if c > 1 else "-" for v, c in zip(table["std"], table["count"])]
    text.columns = ["test_acc_mean", "test_acc_std", "seeds"]
    return text.to_string()


def cmd_sweep(args) -> int:
    config = config_from_args(args)  # checked before the heavy imports
    from .sweeps.execute import ShardError, prepare, run_sweep, shard_status

    if getattr(args, "dry_run", False):
        out, plan = prepare(config, write=False)
        fingerprint = config.fingerprint()
        print(f"{len(config.grid())} networks ({len(config.seeds)} seeds x {len(config.l1)} lambdas x "
              f"{len(config.n_classes)} class counts) in {len(plan)} shards -> {out}")
        for shard in plan:
            status = shard_status(out, shard, fingerprint) if out.exists() else "pending"
            print(f"  {shard.id}  {status:8s}  lambda {list(shard.l1)}  C {list(shard.n_classes)}")
        return 0
    try:
        result = run_sweep(config, progress=not getattr(args, "no_progress", False))
    except ShardError as exc:
        print(f"underspec sweep: {exc}", file=sys.stderr)
        return 1
    print(f"{len(result.ran)} shards ran, {len(result.skipped)} were already complete; "
          f"results in {result.out} (next: underspec report {result.out})")
    return 0


def cmd_report(args) -> int:
    from .sweeps.report import load_results, report

    results_dir = Path(args.results_dir).expanduser()
    if args.out is None and (results_dir / "report").is_symlink():  # never write outside the results folder
        raise UnderspecError(f"{results_dir / 'report'} is a link: remove it, or give --out")
    out = check_writable(args.out if args.out is not None else results_dir / "report", "--out")
    paths = report(results_dir, out=out, figures=not args.no_figures, allow_missing=not args.complete)
    missing = load_results(results_dir).missing
    if missing:
        print(f"underspec report: {len(missing)} shards are not complete ({', '.join(missing)}): the report "
              "holds the others; run `underspec sweep` again to finish them", file=sys.stderr)
    folder = Path(next(iter(paths.values()))).parent
    print(f"wrote {len(paths)} files to {folder}: {', '.join(sorted(p.name for p in paths.values()))}")
    return 0


def cmd_tune(args) -> int:
    given = _given(args, ("config", "no_progress"))
    if "seeds" in given:  # a count (3) or seeds (0-4, 0 1 2)
        seeds = given["seeds"]
        given["seeds"] = int(seeds[0]) if len(seeds) == 1 and seeds[0].isdigit() else " ".join(seeds)
    config = TuneConfig.from_yaml(args.config, **given)  # every key checked before the heavy imports
    check_writable(config.journal.parent if config.journal.parent != Path("") else ".", "storage")
    if config.executor == "slurm" and __import__("shutil").which("sbatch") is None:
        raise UnderspecError("executor slurm, but Slurm is not available on this machine (no sbatch): run on the "
                             "cluster's login node, or use --executor local")
    from .tuning import tuner  # the config is fine: load torch and Optuna

    data = tuner.load_dataset(config.dataset).take(config.n_train, config.n_test)
    tuner.check_memory(config, data)  # a space the budget cannot train: refused before any training
    progress = not getattr(args, "no_progress", False)
    if config.workers > 1 or config.executor == "slurm":
        result = tuner.run_workers(config, cluster=None if config.executor == "slurm" else "local", progress=progress)
    else:
        result = tuner.tune(config, data, progress=progress)
    table = result.table
    states = table.state.value_counts().to_dict() if len(table) else {}
    print(f"study {config.study_name!r} in {config.journal}: {len(table)} trials "
          f"({', '.join(f'{n} {s.lower()}' for s, n in states.items())}); this run trained {len(result.trained)}")
    best = result.best
    if best is not None:
        values = ", ".join(f"{k} {best[k]:g}" if isinstance(best[k], float) else f"{k} {best[k]}"
                           for k in config.space)
        print(f"best trial #{best.number}: {config.metric} {best.value:.4f} (seed std {best.seed_std:.4f} over "
              f"{best.n_seeds} seeds): {values}")
        done = table[table.state == "COMPLETE"].sort_values("value", ascending=config.direction == "minimize")
        print(done.head(10).to_string(index=False))
    return 0


class Terminated(BaseException):
    """SIGTERM (what Slurm sends at the time limit): unwinds like Ctrl-C, so every half-written file goes."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    for name, value in PASSIVE_WAIT.items():  # before torch loads (in the commands): idle threads sleep
        os.environ.setdefault(name, value)
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UnderspecError as exc:
        print(f"underspec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("underspec: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`| head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Terminated:
        print("underspec: terminated (SIGTERM); nothing half-written was left behind", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())

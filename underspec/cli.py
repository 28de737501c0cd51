"""The ``underspec`` command line. Bad input: one line on stderr saying what is wrong, exit code 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import UnderspecError
from .grid import parse_ints


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2, as argparse does)."""

    def error(self, message):
        raise UnderspecError(f"{message} (see '{self.prog} --help')")


def parse_classes(text: str) -> list[int]:
    """``"2-10"`` -> [2, ..., 10]; ``"3"`` -> [3]."""
    try:
        return list(parse_ints(text, "classes"))
    except UnderspecError:
        raise argparse.ArgumentTypeError(f"invalid class count {text!r}: use numbers like 10 or a range like 2-10")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="underspec", description="Underspecification in neural networks: train and compare.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a grid of networks (seeds x L1 x classes) and print test accuracy")
    t.add_argument("--dataset", default="mnist-5k", help="mnist-5k (offline, default), mnist or fashion-mnist")
    t.add_argument("--data-root", default=None, help="folder with the torchvision files (or $UNDERSPEC_DATA)")
    t.add_argument("--paper", action="store_true", help="the paper's grid: 7 seeds x 6 lambdas x C = 2..10")
    t.add_argument("--seeds", type=int, nargs="+", help="random seeds (default: 0)")
    t.add_argument("--l1", type=float, nargs="+", help="L1 strengths lambda >= 0 (default: 0)")
    t.add_argument("--classes", type=parse_classes, nargs="+", help="class counts C in 2..10, e.g. 2-10 (default: 10)")
    t.add_argument("--class-mode", default="relabel", help="relabel (the paper) or subset")
    t.add_argument("--hidden", type=int, default=16)
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=0.01)
    t.add_argument("--optimizer", default="sgd", help="sgd (the paper) or adam")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda")
    t.add_argument("--tf32", action="store_true", help="TF32 matrix products on a GPU: faster, not exact float32")
    t.add_argument("--out", default=None, help="save the run into this (new) folder")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    from .sweep import register_cli  # the sweep and report commands live beside the sweep code

    register_cli(sub)
    return parser


def grid_from_args(args):
    from .grid import Grid

    protocol = dict(hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    optimizer=args.optimizer, class_mode=args.class_mode)
    if args.paper:
        given = [name for name in ("seeds", "l1", "classes") if getattr(args, name) is not None]
        if given:
            raise UnderspecError(f"--paper fixes the grid: drop --{' --'.join(given)} or drop --paper")
        return Grid.paper(**protocol)
    classes = [c for group in args.classes for c in group] if args.classes else [10]
    return Grid(seeds=args.seeds or [0], l1=args.l1 or [0.0], n_classes=classes, **protocol)


def cmd_train(args) -> int:
    from .data import DATASETS, load_dataset
    from .engine import resolve_device, train
    from .run import load_run, read_run_header

    grid = grid_from_args(args)
    if args.dataset not in DATASETS:
        raise UnderspecError(f"unknown data set {args.dataset!r}: use one of {', '.join(DATASETS)}")
    device = resolve_device(args.device)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        header = read_run_header(out) if (out / "run.json").is_file() else None
        if header is None or header["grid"] != grid.to_dict() or header["data"] != args.dataset:
            raise UnderspecError(f"{out} already holds {'a different run' if header else 'other files'}: "
                                 "choose a new --out folder or remove it")
        print(f"{out} already holds this run; showing it (remove the folder to train again)")
        print(summary_table(load_run(out)))
        return 0
    data = load_dataset(args.dataset, root=args.data_root)
    run = train(grid, data, device=device, progress=not args.no_progress, tf32=args.tf32)
    if out is not None:
        run.save(out)
        print(f"saved to {out}")
    print(f"{len(grid)} networks, {grid.epochs} epochs on {data.name} in {run.meta['seconds']:.1f} s "
          f"({run.meta['device']})")
    print(summary_table(run))
    return 0


def summary_table(run) -> str:
    """Final-epoch test accuracy per configuration: mean and std over seeds."""
    final = run.history[run.history.epoch == run.grid.epochs]
    table = final.groupby(["l1", "n_classes"]).test_acc.agg(["mean", "std", "count"])
    table.columns = ["test_acc_mean", "test_acc_std", "seeds"]
    return table.to_string(float_format=lambda v: f"{v:.4f}")


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UnderspecError as exc:
        print(f"underspec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("underspec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

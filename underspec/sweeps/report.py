"""``underspec report``: a sweep's complete shards aggregated into tidy tables and Figure 3.1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..files import is_write_failure, write_error
from ..metrics.tables import summarize
from ..report.metric_plots import save_figure_3_1
from ..report.style import describe
from .store import REPORT_DIR, load_results


def report(results_dir: str | os.PathLike, *, out: str | os.PathLike | None = None,
           figures: bool = True, allow_missing: bool = True) -> dict[str, Path]:
    """Aggregate a sweep: tables (Parquet + CSV) and the Figure 3.1 panels (PNG + SVG) into ``out``.

    ``out`` defaults to ``RESULTS_DIR/report``. Writes ``metrics`` (every shard's compare rows), ``summary``
    (``summarize``: mean, spread and CI per configuration), ``history`` (per member and
    epoch), and ``figure-3-1-lambda`` / ``figure-3-1-classes`` (``report.metric_plots``). Returns name -> path.
    """
    results = load_results(results_dir, allow_missing=allow_missing)
    target = Path(out) if out is not None else Path(results_dir) / REPORT_DIR
    target.mkdir(parents=True, exist_ok=True)
    # Every file is first written into a staging folder beside the report, and only once all are there moved
    # into it (renames need no space): a full disk or a kill never leaves half a report.
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        summary = summarize(results.metrics)
        tables = {"metrics": results.metrics, "summary": summary, "history": results.history, **results.tables}
        for name, table in tables.items():
            table.to_parquet(staging / f"{name}.parquet", index=False)
            table.to_csv(staging / f"{name}.csv", index=False)
        if figures:
            config = results.config
            caption = describe(config.grid(), config.dataset, n_train=config.n_train, pairs=config.pairs,
                               missing=results.missing)
            save_figure_3_1(summary, staging, caption=caption)
        paths = {}
        for path in sorted(staging.iterdir()):
            os.replace(path, target / path.name)
            paths[path.name] = target / path.name
    except BaseException as exc:
        if is_write_failure(exc):
            raise write_error(target, exc) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths

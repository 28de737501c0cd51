"""``underspec report``: a sweep's complete shards aggregated into tidy tables and Figure 3.1."""

from __future__ import annotations

import os
from pathlib import Path

from ..files import atomic_write
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
    paths: dict[str, Path] = {}
    summary = summarize(results.metrics)
    tables = {"metrics": results.metrics, "summary": summary, "history": results.history, **results.tables}
    for name, table in tables.items():
        paths[f"{name}.parquet"] = atomic_write(target / f"{name}.parquet",
                                                lambda tmp: table.to_parquet(tmp, index=False))
        paths[f"{name}.csv"] = atomic_write(target / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False))
    if figures:
        config = results.config
        caption = describe(config.grid(), config.dataset, n_train=config.n_train, pairs=config.pairs,
                           missing=results.missing)
        paths.update(save_figure_3_1(summary, target, caption=caption))
    return paths


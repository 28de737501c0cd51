"""Derived tables, computed once and cached beside the runs they come from.

A table is stored as ``<cache>/tables/<stem>-<code>.parquet``: ``stem`` names the run(s) and the table, and
``<code>`` is a hash of the code that computes tables (the metrics layer and this one), so a table from older
code is never served. An unreadable cached table is derived data: it is computed again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from ..files import atomic_write

PACKAGE = Path(__file__).resolve().parent.parent


def tables_code() -> str:
    """A hash of the code behind every derived table: the metrics layer and the studies layer."""
    files = sorted((PACKAGE / "metrics").glob("*.py")) + sorted((PACKAGE / "studies").glob("*.py"))
    files.append(PACKAGE / "text.py")
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]


def table_path(cache: Path, stem: str) -> Path:
    """Where the table ``stem`` of this code version lives under ``cache``."""
    return Path(cache) / "tables" / f"{stem}-{tables_code()}.parquet"


def cached(cache: Path | None, stem: str, compute) -> pd.DataFrame:
    """``compute()``, cached under ``cache`` as the table ``stem`` (computed every time without a cache)."""
    if cache is None:
        return compute()
    path = table_path(cache, stem)
    if path.is_file() and not path.is_symlink():
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError):  # unreadable: derived data, so compute it again
            pass
    table = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    return table

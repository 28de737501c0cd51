"""Which code made a result: hashes of the package's source, recorded with runs, shards and studies."""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
# What decides a Run's contents, relative to the package: the whole training layer and the modules below it.
TRAINING_CODE = tuple(sorted([str(p.relative_to(PACKAGE)) for p in (PACKAGE / "training").glob("*.py")]
                             + ["errors.py", "files.py", "progress.py"]))


def _hash(names) -> str:
    return hashlib.sha256(b"".join((PACKAGE / name).read_bytes() for name in names)).hexdigest()[:12]


def training_code_hash() -> str:
    """A hash of the package's training code: a cached Run from older code is never served."""
    return _hash(TRAINING_CODE)


def package_code_hash() -> str:
    """A hash of every source file of the package (training, metrics, report, sweeps): what made a table."""
    return _hash(sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")))

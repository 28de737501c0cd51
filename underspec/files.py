"""Writing files so that a reader never sees half of one: every file the package writes goes through here."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from .errors import UnderspecError


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place (an atomic rename).

    A failure (or an interrupt) removes the temporary file and leaves ``path`` as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """That the folder ``path`` (``what`` names it in messages, e.g. "--out") can be created and written,
    before any work starts; the path, with ``~`` expanded. Creates nothing that stays behind.

    Refused with one line (UnderspecError): an empty path, a dangling link, a path below a file, a file
    where a folder is wanted, and a place that cannot be written (read-only, full, no permission).
    """
    text = os.fspath(path)
    if not text.strip():
        raise UnderspecError(f"{what} is empty: give a folder name, e.g. {what} runs/mine")
    path = Path(text).expanduser()
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise UnderspecError(f"{what} {path}: {probe} is a link to nothing: remove it or choose another folder")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"is below the file {probe}"
        raise UnderspecError(f"{what} {path} {where}: choose a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise UnderspecError(f"{what} {path} cannot be written ({exc.strerror or type(exc).__name__} in "
                             f"{probe}): choose another folder") from None
    return path


def write_error(path: str | os.PathLike, exc: OSError) -> UnderspecError:
    """One line for a failure while writing ``path`` (no space left, read-only, ...), naming path and cause."""
    cause = (exc.strerror or type(exc).__name__).lower()
    return UnderspecError(f"{cause} while writing {path}: free some space or choose another folder, then run again")


def remove_stale_temporaries(folder: Path, pattern: str) -> None:
    """Remove ``pattern`` matches in ``folder`` whose name ends in ``-<pid>`` of a process that is gone (a save
    killed by SIGKILL leaves its temporary folder behind)."""
    for path in folder.glob(pattern):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

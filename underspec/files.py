"""Writing files so that a reader never sees half of one: every file the package writes goes through here."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
import uuid
from pathlib import Path

from .errors import UnderspecError, shown


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


MAX_TEXT_FILE = 64 * 2**20  # the largest metadata, config or table-index file read whole


def open_regular(path: str | os.PathLike):
    """``path`` opened for reading in binary, only if it is a regular file and not a link: a link (to
    /dev/zero, say), a FIFO, a device or a folder would make a read hang or mislead. ``OSError`` otherwise
    (``ELOOP`` for a link; ``UnderspecError`` for a file that is not regular)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnderspecError(f"{path} is not a regular file (a folder, a FIFO or a device): remove it")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text(path: str | os.PathLike, limit: int = MAX_TEXT_FILE,
              too_large: str = "it is not a file this package wrote") -> str:
    """A regular file's text (``open_regular``), refused in one line beyond ``limit`` bytes (``too_large``
    says why such a file is not the one expected, or what to do)."""
    with open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnderspecError(f"{path} is larger than {limit:,} bytes: {too_large}")
    return data.decode()


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a regular file's bytes (``open_regular``: never a link or a special file), read in chunks."""
    digest = hashlib.sha256()
    with open_regular(path) as f:
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
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > 255 or len(os.fsencode(os.path.abspath(path))) > 4000:  # before any system call meets it
        raise UnderspecError(f"{what} {shown(text)} is too long a name for a file system (a part of {longest} "
                             "bytes): choose a shorter one")
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


TEMP_SUFFIX = 32  # bytes a temporary sibling adds to a name: ".<name>.tmp-<pid>-<hex>"


def check_output_folder(path: str | os.PathLike, what: str, *, needs: int = 0) -> Path:
    """That a new folder ``path`` can be written (``check_writable``) and will be, before any work: not a link
    (the save would replace the link, not fill its target), a name that fits the file system with the
    temporary sibling a save writes first, and ``needs`` bytes free (an estimate of what will be written)."""
    path = check_writable(path, what)
    if path.is_symlink():
        raise UnderspecError(f"{what} {path} is a link: give the folder itself ({os.path.realpath(path)})")
    parent = next(p for p in [path, *path.parents] if p.exists())
    try:
        name_max, path_max = os.pathconf(parent, "PC_NAME_MAX"), os.pathconf(parent, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        name_max, path_max = 255, 4096
    longest = max((len(part.encode()) for part in path.parts), default=0)
    if longest + TEMP_SUFFIX > name_max:
        raise UnderspecError(f"{what} {shown(str(path))}: a name of {longest} bytes; with the temporary name a save "
                             f"writes first, at most {name_max - TEMP_SUFFIX} fit here: choose a shorter name")
    if len(os.fsencode(os.path.abspath(path))) + TEMP_SUFFIX + 64 > path_max:
        raise UnderspecError(f"{what} {shown(str(path))} is too long a path for this file system: choose a shorter one")
    free = shutil.disk_usage(parent).free
    if needs and free < needs:
        raise UnderspecError(f"{what} {path}: {free / 2**20:,.0f} MiB free there, about {needs / 2**20:,.0f} MiB "
                             "needed: free some space or choose another folder")
    return path


def write_error(path: str | os.PathLike, exc: Exception) -> UnderspecError:
    """One line for a failure while writing ``path`` (no space left, read-only, ...), naming path and cause.

    A rename refused because its target appeared meanwhile (``ENOTEMPTY``, ``EEXIST``: another process wrote
    there first) is said as such: no space needs freeing."""
    path = final_path(path)
    if getattr(exc, "errno", None) in (errno.ENOTEMPTY, errno.EEXIST):
        return UnderspecError(f"{path} appeared while it was being written (another process wrote there first): "
                              "choose another folder, or remove it, then run again")
    if isinstance(exc, RuntimeError):  # torch's writer: it does not say why; a full disk is the usual cause
        cause = "a write failed (a full disk?)"
    else:
        cause = (getattr(exc, "strerror", None) or type(exc).__name__).lower()
    if getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM):
        return UnderspecError(f"{cause} while writing {path}: choose another folder, then run again")
    return UnderspecError(f"{cause} while writing {path}: free some space or choose another folder, then run again")


_TEMPORARY = re.compile(r"\.(.+)\.tmp-\d+(?:-[0-9a-f]{6}.*)?")  # the temporary siblings saves write first


def final_path(path: str | os.PathLike) -> Path:
    """``path`` with each temporary sibling in it (``.r.tmp-<pid>``, ``.t.parquet.tmp-<pid>-<hex>.parquet``)
    named as the file or folder it becomes: what a message about a failed write names."""
    return Path(*(m.group(1) if (m := _TEMPORARY.fullmatch(part)) else part for part in Path(path).parts))


def is_write_failure(exc: BaseException) -> bool:
    """An OSError, or the RuntimeError torch's file writer raises when a write fails (a full disk:
    "[enforce fail at inline_container.cc] ... PytorchStreamWriter failed writing file")."""
    return isinstance(exc, OSError) or (isinstance(exc, RuntimeError) and
                                        ("PytorchStreamWriter" in str(exc) or "inline_container" in str(exc)))


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

"""The one progress bar of the package (tqdm), or a silent stand-in when it is off or tqdm is missing."""

from __future__ import annotations

import sys


class _Silent:
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def progress_bar(total: int, desc: str, *, enabled: bool = True, unit: str = "step", initial: int = 0):
    """A tqdm bar on stderr (``update(n)``, ``close()``); silent when not ``enabled``. The engine stays usable
    with torch alone, so a missing tqdm means no bar, not an error."""
    if not enabled:
        return _Silent()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, mininterval=interval(sys.stderr), file=sys.stderr)


def interval(stream) -> float:
    """Seconds between a bar's updates: twice a second on a terminal; once every ``LOG_INTERVAL`` seconds into
    a file or a pipe (a log), where every update is kept and thousands of them bury the rest."""
    try:
        return 0.5 if stream.isatty() else LOG_INTERVAL
    except (AttributeError, ValueError):  # a stream without isatty, or a closed one
        return LOG_INTERVAL


LOG_INTERVAL = 30.0

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
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, mininterval=0.5, file=sys.stderr)

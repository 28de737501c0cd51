"""A guard for the book's kernels against a lost wake-up in their shell channel.

On these machines a chapter's kernel sometimes finishes a cell and goes idle while the notebook client waits
for ever: a request or a reply sits in the kernel's shell ``ZMQStream`` (edge-triggered socket events, one
of them consumed before the stream saw it; ipython/ipykernel#1554, #1529) and is handled only when the next
event reaches that socket. Seen here with ipykernel 7.4 and with 6.31 on pyzmq 27, at any cell (a second
client's connection unblocked one at once). The project pins ipykernel below 7, and its kernel spec loads
this module as an IPython extension (``--ext underspec.kernel_wake``), which flushes the shell stream every
``INTERVAL`` seconds: what waits to be read is read, what waits to be sent is sent; an idle stream costs
nothing.

    python -m underspec.kernel_wake KERNEL_JSON     # add the extension to a kernel spec (make does this)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

INTERVAL = 1.0  # seconds between two flushes
ARGUMENT = "--ext=underspec.kernel_wake"


def load_ipython_extension(ipython) -> None:
    """Start flushing the kernel's shell stream on the kernel's own event loop (nothing outside a kernel)."""
    kernel = getattr(ipython, "kernel", None)
    stream = getattr(kernel, "shell_stream", None)
    if stream is None or getattr(kernel, "_underspec_wake", None) is not None:
        return
    from tornado.ioloop import PeriodicCallback

    def flush() -> None:
        if not stream.closed():
            stream.flush()

    kernel._underspec_wake = PeriodicCallback(flush, INTERVAL * 1000)
    kernel._underspec_wake.start()


def add_to_kernel_spec(path: str | Path) -> None:
    """Add the extension to the argv of the kernel spec ``path`` (its kernel.json), once."""
    path = Path(path)
    spec = json.loads(path.read_text())
    if ARGUMENT not in spec["argv"]:
        spec["argv"].append(ARGUMENT)
        path.write_text(json.dumps(spec, indent=1))


if __name__ == "__main__":
    for name in sys.argv[1:]:
        add_to_kernel_spec(name)

"""The one exception type users see for bad input, and the few argument checks every layer shares.

The CLI turns an ``UnderspecError`` into one line on stderr and exit code 2.
"""

from __future__ import annotations

MAX_SHOWN = 60  # characters of a user's value echoed back in a message


class UnderspecError(ValueError):
    """Bad input or an unusable file: the message says what is wrong and how to fix it."""


def shown(value, limit: int = MAX_SHOWN) -> str:
    """A short repr of a user's value for a message: never longer than ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_choice(value, choices, what: str):
    """``value`` if it is one of ``choices``, else the one-line "unknown <what>: use one of ..." error."""
    if not isinstance(value, str) or value not in choices:
        raise UnderspecError(f"unknown {what} {shown(value)}: use one of {', '.join(map(str, choices))}")
    return value


def check_flag(value, what: str, *, auto: bool = False):
    """``value`` if it is True or False (or ``"auto"`` when ``auto``), else a one-line error."""
    if isinstance(value, bool) or (auto and value == "auto"):
        return value
    choices = "True, False or 'auto'" if auto else "True or False"
    raise UnderspecError(f"{what} must be {choices}, got {shown(value)}")

"""Numbers as the book writes them, shared by every layer that puts a number into words: λ, and an estimate
with its interval. One format each, so a table and a sentence never write the same number two ways."""

from __future__ import annotations

import math
import numbers
import re


def fmt_l1(value: float) -> str:
    """λ as the book writes it: 0, 0.001, 0.0025, ..."""
    return "0" if value == 0 else f"{value:g}"


def number(value: float, digits: int = 3, *, sign: bool = True) -> str:
    """``value`` to ``digits`` decimals ("+0.032"; ``sign=False``: "0.032"), "—" where there is no number. A
    value that rounds to zero is written without a minus sign ("+0.000", never "-0.000")."""
    if value is None or not math.isfinite(value):
        return "—"
    rounded = round(float(value), digits)
    if rounded == 0:
        rounded = 0.0  # drops the sign of -0.0
    return f"{rounded:{'+' if sign else ''}.{digits}f}"


def cell(value, digits: int = 3) -> str:
    """A table cell as the book writes it: a float to ``digits`` decimals without a sign ("0.032", "-0.120",
    never "-0.000"; NaN "—"), anything else (an integer, a text, a boolean) as itself."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        return number(value, digits, sign=False)
    return str(value)


_NEGATIVE_ZERO = re.compile(r"-(?=[0.]*(?:[eE][+-]?\d+)?%?$)")


def formatted(value, spec: str) -> str:
    """``format(value, spec)`` ("{:.2f}" written as ".2f", or a whole template such as "{:.1%}") with the sign
    of a value that rounds to zero dropped: "0.00", never "-0.00" (with a "+" in ``spec``: "+0.00")."""
    text = spec.format(value) if "{" in spec else format(value, spec)
    return _NEGATIVE_ZERO.sub("+" if "+" in spec else "", text, count=1) if text.startswith("-") else text


def interval(value: float, low: float, high: float, digits: int = 3, sign: bool = True) -> str:
    """"+0.032 [+0.026, +0.037]" (``sign=False``: "0.032 [0.026, 0.037]"), the value alone where the interval
    is undefined, or "—" where there is no number."""
    text = number(value, digits, sign=sign)
    if text == "—" or number(low) == "—" or number(high) == "—":
        return text
    return f"{text} [{number(low, digits, sign=sign)}, {number(high, digits, sign=sign)}]"

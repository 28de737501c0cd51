"""Reading a knob's values: from Python values, or the strings a command line, a YAML file or papermill pass
(``"0-6"``, ``"0 0.001"``, ``"[0, 42]"``, ``"64-32-16"``), each with a one-line error naming the knob."""

from __future__ import annotations

import numbers
import re

from ..errors import UnderspecError, shown

MAX_RANGE = 10_000  # the longest range a list may spell (2-100000000 must not exhaust memory)
MAX_VALUES = 10_000  # the most values one knob's list may hold, ranges expanded
MAX_TEXT = 100_000  # the longest string a list may be read from
MAX_DEPTH = 64
MAX_HIDDEN = 10**9  # far beyond memory: the memory plan refuses much less (a sweep checks it per shard)


def parse_ints(value, key: str) -> tuple[int, ...]:
    """Integers and ranges (``2-10``) from a list or a string such as ``"0 42"``, ``"0,42"``, ``"[0, 42]"``
    or ``"0-6"``: seeds, class counts."""
    out = []
    for item in _items(value, key):
        if isinstance(item, bool):
            raise UnderspecError(f"{key}: {shown(item)} is not an integer")
        if isinstance(item, numbers.Integral):
            out.append(int(item))
        elif isinstance(item, float) and item.is_integer():
            out.append(int(item))
        elif isinstance(item, str) and (m := re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)):
            lo, hi = int(m[1]), int(m[2] or m[1])
            if hi < lo:
                raise UnderspecError(f"{key}: the range {shown(item)} is empty: write it low-high, e.g. 2-10")
            if hi - lo >= MAX_RANGE:
                raise UnderspecError(f"{key}: the range {shown(item)} has {hi - lo + 1:,} values; at most "
                                     f"{MAX_RANGE:,} are allowed")
            if len(out) + hi - lo + 1 > MAX_VALUES:
                raise UnderspecError(f"{key}: more than {MAX_VALUES:,} values; split the work into several grids "
                                     "or an underspec sweep")
            out.extend(range(lo, hi + 1))
        else:
            noun = {"seeds": "seed", "n_classes": "class count"}.get(key, key)
            raise UnderspecError(f"invalid {noun} {shown(item)}: use integers like 10 or a range like 2-10")
    return tuple(out)


def parse_floats(value, key: str) -> tuple[float, ...]:
    """Numbers from a list or a string such as ``"0 0.001"`` or ``"[0, 0.001]"``: L1 strengths."""
    out = []
    for item in _items(value, key):
        if isinstance(item, bool) or not isinstance(item, (numbers.Real, str)):
            raise UnderspecError(f"{key}: cannot read {shown(item)} as a number, e.g. 0.001")
        try:
            out.append(float(item))
        except ValueError:
            raise UnderspecError(f"{key}: cannot read {shown(item)} as a number, e.g. 0.001") from None
    return tuple(out)


def parse_int(value, key: str) -> int:
    """One integer, from an int or a string of digits (what a command line or papermill passes)."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise UnderspecError(f"{key} must be an integer, got {shown(value)}")


def parse_float(value, key: str) -> float:
    """One number, from a number or a string."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise UnderspecError(f"{key} must be a number, got {shown(value)}")


def parse_str(value, key: str) -> str:
    if not isinstance(value, str):
        raise UnderspecError(f"{key} must be a name, got {shown(value)}")
    return value


def _optional(parse):
    """``parse``, or None for None and the strings a command line or papermill passes for it."""
    def parse_optional(value, key: str):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            return None
        return parse(value, key)
    return parse_optional


_parse_optional_int, _parse_optional_float = _optional(parse_int), _optional(parse_float)


def _axis(parse):
    """``parse`` for a knob that may take several values (an axis of the grid): one value stays a value,
    several (a list, or a string such as ``"16 64"``) become a tuple of values, each read by ``parse``."""
    def parse_axis(value, key: str):
        items = _items(value, key) if isinstance(value, (str, list, tuple)) else [value]
        if len(items) == 1:
            return parse(items[0], key)
        if not items:
            raise UnderspecError(f"{key}: the list is empty: give at least one value")
        values = tuple(parse(item, key) for item in items)
        _no_duplicates(values, key)
        return values
    parse_axis.axis = True
    return parse_axis


def parse_widths(value, key: str = "widths") -> str:
    """One network shape, its hidden layers' widths first to last, from ``"64-32-16"``, ``(64, 32, 16)``,
    ``[64, 32, 16]`` or ``64`` (one layer), as its canonical text ``"64-32-16"`` (what tables, keys and a
    command line show; ``widths_of`` reads it back)."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\s*-\s*\d+)*\s*", value):
        layers = [int(v) for v in value.split("-")]
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        layers = [int(value)]
    elif isinstance(value, (list, tuple)) and value and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        layers = [int(v) for v in value]
    else:
        raise UnderspecError(f"{key}: {shown(value)} is not a network shape: give each hidden layer's width, first "
                             "to last, e.g. 64-32-16 or (64, 32, 16)")
    if len(layers) > MAX_DEPTH:
        raise UnderspecError(f"{key}: {len(layers)} hidden layers; at most {MAX_DEPTH}")
    if any(not 1 <= w <= MAX_HIDDEN for w in layers):
        raise UnderspecError(f"{key}: every width must be an integer in 1..{MAX_HIDDEN:,}, got {shown(value)}")
    return "-".join(map(str, layers))


def widths_of(text: str) -> tuple[int, ...]:
    """The widths of the hidden layers of the shape ``parse_widths`` wrote: ``"64-32-16"`` -> (64, 32, 16)."""
    return tuple(int(v) for v in text.split("-"))


def _parse_widths_axis(value, key: str):
    """``widths``: None (every layer ``hidden`` wide), one shape (``parse_widths``), or several (an axis): a list
    of shapes (``[(64, 64, 64), (64, 32, 16)]``, ``["64-64-64", "64-32-16"]``). A list of integers is ONE shape."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    if isinstance(value, str):
        items = _items(value, key)
    elif isinstance(value, (list, tuple)):
        if value and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
            return parse_widths(value, key)
        items = _items(value, key)
    else:
        return parse_widths(value, key)
    if not items:
        raise UnderspecError(f"{key}: the list is empty: give at least one shape, e.g. 64-32-16")
    if len(items) == 1:
        return parse_widths(items[0], key)
    values = tuple(parse_widths(item, key) for item in items)
    _no_duplicates(values, "shape")
    return values


_parse_widths_axis.axis = True


def _items(value, key: str) -> list:
    """The items of a list knob's value (a list, or its text), at most ``MAX_VALUES`` of them."""
    if value is None:
        return []
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise UnderspecError(f"{key}: a list of {len(value):,} characters; at most {MAX_TEXT:,} are read")
    if hasattr(value, "__len__") and not isinstance(value, (str, dict, bytes)) and len(value) > MAX_VALUES:
        raise UnderspecError(f"{key}: {len(value):,} values; at most {MAX_VALUES:,}: split the work into several "
                             "grids or an underspec sweep")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):  # papermill -p passes a list as its text
            text = text[1:-1]
        return [v for v in re.split(r"[,\s]+", text) if v]
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and hasattr(value, "__len__")
                                            and not isinstance(value, (dict, bytes))):
        return list(value)
    return [value]


def _no_duplicates(values, what):
    seen, twice = set(), set()
    for v in values:
        (twice if v in seen else seen).add(v)
    dup = sorted(twice, key=repr)
    if dup:
        raise UnderspecError(f"duplicate {what}(s) {shown(dup)}: list each {what} once")

"""Addressing a member of a grid by its settings: ``Run.member(seed=0, l1=0.01)``, ``MixedRun.member(...,
hidden=64)``. One rule for both kinds of run: any of ``grid.member_names()``, or any other knob the grid has one
value of; values taken exactly as the grid holds them (a seed of 0.7 is no seed, never rounded)."""

from __future__ import annotations

import numbers

from ..errors import UnderspecError, shown
from .grid import AXES, Grid, parse_widths


def find_member(grid: Grid, given: dict) -> int:
    """The number of the one member of ``grid`` whose settings are ``given`` (the others may be any value); a
    one-line error naming the grid's values, or some candidates, otherwise.

    A setting is any of ``grid.member_names()`` or any other knob that may be an axis (``AXES``: ``hidden``,
    ``order_seed``, ...): the grid's one value of such a knob is accepted, any other value is refused naming
    it. A seed knob left at None (each member's own seed) matches a member whose seed is that value.
    """
    names = grid.member_names()
    unknown = [k for k in given if k not in names and k not in AXES]
    if unknown:
        raise UnderspecError(f"{shown(unknown[0])} is not an axis of this run: address a member by "
                             f"{', '.join(names)} (or a setting the run has one value of)")
    members = grid.members()
    for k in [k for k in given if k not in names]:  # a knob of one value in this grid
        own, value = getattr(grid, k), given.pop(k)
        if k in ("init_seed", "order_seed") and own is None and value is not None:
            if given.get("seed") not in (None, value):
                raise UnderspecError(f"in this run every member's {k} is its own seed: {k}={shown(value)} and "
                                     f"seed={shown(given['seed'])} name no member")
            given["seed"] = value
        elif value != own and not (own is not None and value is not None and
                                   exact_value(value, k, [(own,)], 0) == own):
            raise UnderspecError(f"this run has {k}={own!r} for every member, not {shown(value)}")
    given = {k: exact_value(v, k, members, names.index(k)) for k, v in given.items()}
    asked = ", ".join(f"{k}={shown(v)}" for k, v in given.items()) or "no settings"
    found = [i for i, member in enumerate(members)
             if all(given.get(k, m) == m for k, m in zip(names, member))]
    if len(found) == 1:
        return found[0]
    if not found:
        values = "; ".join(f"{k} {shown(list(dict.fromkeys(m[j] for m in members)))}" for j, k in enumerate(names))
        raise UnderspecError(f"no member {asked} in this run: it has {values}")
    named = "; ".join(", ".join(f"{k}={shown(v)}" for k, v in zip(names, members[i])) for i in found[:6])
    raise UnderspecError(f"{len(found)} members have {asked}: give more of {', '.join(names)} to pick one "
                         f"(for example {named}{', ...' if len(found) > 6 else ''})")


def exact_value(value, name: str, members: list[tuple], j: int):
    """A setting as entry ``j`` of the member tuples ``members`` holds it, never rounded (a seed of 0.7 is no
    seed); None stays None (no stopping rule, no fixed seed)."""
    if value is None:
        return None
    if name == "widths":  # a shape in any spelling, as the grid writes it: (8, 16) and "8-16" are one
        return parse_widths(value, name)
    sample = next((m[j] for m in members if m[j] is not None), 0)
    if isinstance(sample, str):
        if not isinstance(value, str):
            raise UnderspecError(f"{name} must be a name, got {shown(value)}")
        return value
    return _exact_int(value, name) if isinstance(sample, int) else _exact_float(value, name)


def _exact_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UnderspecError(f"{what} must be an integer, got {shown(value)}")
    return int(value)


def _exact_float(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UnderspecError(f"{what} must be a number, got {shown(value)}")
    return float(value)

"""A training's initial parameters: drawn from each member's seed as the paper's constructor draws them, or
given (``train(grid, data, start=...)``: networks that start from other networks' weights, as the unit-level
tickets do), and laid out for a program (see ``engine.py``).

A given start is one parameter dict per part of the grid (``grid.parts()``; a uniform grid: its one part, the
dict itself), each parameter with a leading axis over the part's members in ``grid.members()`` order, as
``Run.init`` has them: ``w1`` (N, H1, D) with the data's D pixels in image order, ``b1`` (N, H1), the deeper
hidden layers ``w<l>`` (N, H_l, H_l-1) and ``b<l>`` (N, H_l), the output layer (N, K, H_L) and (N, K) with K at
least the part's largest C (rows beyond a member's own C zero, as the engine pads them). float32 or float64,
finite; cast to the training dtype (a float64 start trained in float32 is rounded). It replaces the seed's
initialisation only: a member still draws its batches in the order of its seed (or of the grid's order seed).
"""

from __future__ import annotations

import torch

from ..errors import UnderspecError, shown
from .grid import Grid
from .model import init_params, output_names, param_names
from .programs import Program, pad_classes


def check_starts(start, parts: list[Grid], n_inputs: int) -> list[dict | None]:
    """``start`` (None, one dict for a single part, or a list with a dict or None per part) checked against
    the uniform grids ``parts`` on data of ``n_inputs`` pixels: one entry per part, None where the part's
    members are drawn from their seeds. Raises one ``UnderspecError`` line for anything wrong."""
    if start is None:
        return [None] * len(parts)
    if isinstance(start, dict):
        start = [start]
    if not isinstance(start, (list, tuple)) or len(start) != len(parts):
        raise UnderspecError(f"start needs one parameter dict per part of the grid ({len(parts)}), as Run.init has "
                             f"them, got {shown(start) if not isinstance(start, (list, tuple)) else len(start)}")
    return [None if given is None else _check_part(given, part, n_inputs, i if len(parts) > 1 else None)
            for i, (given, part) in enumerate(zip(start, parts))]


def _check_part(given, part: Grid, n_inputs: int, index: int | None) -> dict[str, torch.Tensor]:
    where = "start" if index is None else f"start of part {index}"
    names = param_names(part.depth)
    if not isinstance(given, dict) or set(given) != set(names):
        got = sorted(given) if isinstance(given, dict) else type(given).__name__
        raise UnderspecError(f"{where} must be a dict of {', '.join(names)} (as Run.init has them), got {shown(got)}")
    if part.perturb_ulp:
        raise UnderspecError(f"{where} gives the initial weights as they are, but perturb_ulp would move W1[0, 0]: "
                             "drop perturb_ulp, or move the weight in start yourself")
    n, widths, k = len(part), part.layer_widths(), max(part.n_classes)
    w_out, b_out = output_names(part.depth)
    sizes = [n_inputs, *widths]
    expected = {f"w{layer}": (n, sizes[layer], sizes[layer - 1]) for layer in range(1, part.depth + 1)}
    expected.update({f"b{layer}": (n, sizes[layer]) for layer in range(1, part.depth + 1)})
    for name in names:
        value = given[name]
        if not isinstance(value, torch.Tensor) or value.dtype not in (torch.float32, torch.float64):
            kind = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
            raise UnderspecError(f"{where}: {name} is {kind}, give float32 or float64 tensors")
        want = expected.get(name)
        if name in (w_out, b_out):
            ok = value.dim() == (3 if name == w_out else 2) and value.shape[0] == n and value.shape[1] >= k \
                 and (name == b_out or value.shape[2] == widths[-1])
            want = (n, f">= {k}", widths[-1]) if name == w_out else (n, f">= {k}")
        else:
            ok = tuple(value.shape) == want
        if not ok:
            raise UnderspecError(f"{where}: {name} has shape {tuple(value.shape)}, this grid's {n} member(s) need "
                                 f"{want} (member axis first, in grid.members() order)")
        if not bool(torch.isfinite(value).all()):
            raise UnderspecError(f"{where}: {name} has NaN or infinite values")
    classes = torch.tensor([c for _, _, c in part.members()])
    for name in (w_out, b_out):
        beyond = torch.arange(given[name].shape[1]) >= classes[:, None]  # (N, K): rows past each member's C
        if bool(given[name][beyond].any()):
            raise UnderspecError(f"{where}: {name} has non-zero rows beyond a member's class count C: zero them "
                                 "(the engine pads a member's output layer with zeros)")
    return given


def member_start(given: dict[str, torch.Tensor], j: int, n_classes: int, depth: int,
                 dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Member ``j`` of a checked start, in ``dtype``, its output layer cut to its ``n_classes`` rows: the
    parameter dict that ``init_params`` would have drawn for it (w1 (H1, D), ..., (C, H_L), (C,))."""
    w_out, b_out = output_names(depth)
    return {name: (p[j, :n_classes] if name in (w_out, b_out) else p[j]).to(dtype) for name, p in given.items()}


def group_starts(starts: list[dict | None], indices: list[int], parts: list[Grid],
                 dtype: torch.dtype) -> dict[int, dict[str, torch.Tensor]] | None:
    """The given starts of one group (the parts ``indices``, whose members are numbered part after part):
    {group member index: its parameter dict (``member_start``)}, or None where every member is drawn."""
    given, offset = {}, 0
    for i in indices:
        members = parts[i].members()
        if starts[i] is not None:
            given.update({offset + j: member_start(starts[i], j, c, parts[i].depth, dtype)
                          for j, (_, _, c) in enumerate(members)})
        offset += len(members)
    return given or None


def initial_params(program: Program, setup) -> dict[str, torch.Tensor]:
    """The program's members at the start, in the program layout: each given start (``setup.start``) as it is,
    every other member drawn exactly as the paper's constructor draws it. ``setup``: the engine's group setup
    (its grid, members, pixel order, products, dtype). w1 (S, M*H1, D) in the products' layout with pixels in
    ``setup.pixels`` order, b1 (S, M*H1), the deeper hidden layers w<l> (S, M, H_l, H_l-1) and b<l> (S, M, H_l),
    and the output layer (S, M, K, H_L) and (S, M, K), the classes beyond a member's C zero."""
    members, grid, given = setup.members, setup.grid, setup.start or {}
    widths = grid.layer_widths()
    s, m, h, d, k = len(program.orders), len(program.members[0]), widths[0], len(setup.pixels), max(grid.n_classes)
    flat = [i for row in program.members for i in row]
    keys = {i: (members[i].init_seed, members[i].n_classes) for i in flat if i not in given}  # shared by the l1s
    drawn = {key: init_params(*key, widths, d) for key in set(keys.values())}
    inits = [given[i] if i in given else drawn[keys[i]] for i in flat]
    first = [p["w1"] if i in given else perturbed(p["w1"], members[i].perturb_ulp, setup.dtype)
             for i, p in zip(flat, inits)]  # (H, D) each, the training dtype
    w_out, b_out = output_names(grid.depth)
    params = {
        "w1": type(setup.products).layout(torch.stack([w[:, setup.pixels] for w in first]).view(s, m * h, d)),
        "b1": torch.stack([p["b1"] for p in inits]).view(s, m * h),
    }
    for layer in range(2, grid.depth + 1):
        params[f"w{layer}"] = torch.stack([p[f"w{layer}"] for p in inits]).view(s, m, widths[layer - 1], widths[layer - 2])
        params[f"b{layer}"] = torch.stack([p[f"b{layer}"] for p in inits]).view(s, m, widths[layer - 1])
    params[w_out] = torch.stack([pad_classes(p[w_out], k) for p in inits]).view(s, m, k, widths[-1])
    params[b_out] = torch.stack([pad_classes(p[b_out], k) for p in inits]).view(s, m, k)
    return {name: p.to(setup.y_train.device, setup.dtype).contiguous() for name, p in params.items()}


def perturbed(w1: torch.Tensor, ulps: int, dtype: torch.dtype) -> torch.Tensor:
    """``w1`` in ``dtype`` with its first entry W1[0, 0] moved up by ``ulps`` units in the last place (0: as it
    is): the same network, a rounding apart (``Grid.perturb_ulp``, the rounding floor)."""
    w1 = w1.to(dtype)
    if ulps:
        w1 = w1.clone()
        for _ in range(ulps):
            w1[0, 0] = torch.nextafter(w1[0, 0], torch.tensor(float("inf"), dtype=dtype))
    return w1

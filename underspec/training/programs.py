"""How the engine lays a group of members out: what each member sets by itself, the *streams* (members that
share a data order) and the *programs* (streams trained together), and the data orders of the paper's
DataLoader; values per member shaped to the program layout and parameters taken back out of it. See
``engine.py``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from .data import class_labels
from .grid import Grid
from .model import depth_of, output_names


def epoch_orders(seed: int, n: int, batch_size: int):
    """The orders in which the paper's ``DataLoader(shuffle=True, generator=g)`` visits n items, epoch after epoch.

    Taken from torch's own DataLoader over indices (not re-derived), so it also consumes the generator
    exactly as the paper's loader does (worker base seed, the order, a discarded second permutation).
    Yields one (n,) int64 tensor per epoch, forever.
    """
    g = torch.Generator()
    g.manual_seed(seed)
    loader = DataLoader(range(n), batch_size=batch_size, shuffle=True, generator=g, collate_fn=torch.tensor)
    while True:
        yield torch.cat(list(loader))


@dataclass(frozen=True)
class Member:
    """What one member of a group sets by itself (everything else its group shares)."""

    seed: int
    l1: float
    n_classes: int
    init_seed: int
    order_seed: int
    lr: float
    momentum: float
    weight_decay: float
    perturb_ulp: int = 0


def group_members(parts: list[Grid]) -> list[Member]:
    """The members of uniform grids ``parts``, part after part, with what each sets by itself."""
    return [Member(seed, l1, c, part.init_seed_of(seed), part.order_seed_of(seed), part.lr, part.momentum,
                    part.weight_decay, part.perturb_ulp) for part in parts for seed, l1, c in part.members()]


@dataclass
class Program:
    """Members trained together: ``members[s][m]`` is the group index of member m of stream s, and every
    member of stream s draws its batches in the order of seed ``orders[s]``."""

    orders: list[int]
    members: list[list[int]]
    train_index: torch.Tensor  # (n,) indices into the training set that this program's streams draw from


def programs(grid: Grid, members: list[Member], y_train: torch.Tensor) -> list[Program]:
    """Streams (the members that share a data order: the same order seed, and in subset mode the same C) and
    the programs that train them: the streams with the same training images and the same number of members."""
    streams: dict[tuple, list[int]] = {}
    for i, member in enumerate(members):
        key = (member.order_seed, member.n_classes if grid.class_mode == "subset" else None)
        streams.setdefault(key, []).append(i)
    programs: dict[tuple, Program] = {}
    for (order, c), stream in streams.items():
        program = programs.setdefault((c, len(stream)), Program([], [], train_index_of(y_train, c)))
        program.orders.append(order)
        program.members.append(stream)
    return list(programs.values())


def train_index_of(y_train: torch.Tensor, n_classes: int | None) -> torch.Tensor:
    """The training images a program draws from: all (relabel mode), or the digits below C (subset mode)."""
    if n_classes is None:
        return torch.arange(len(y_train))
    return torch.nonzero(class_labels(y_train, n_classes, "subset")[0]).squeeze(1)


def broadcast_per_member(values: torch.Tensor, params: dict[str, torch.Tensor], pixel_axis: int) -> dict:
    """A value per member, (S, M), shaped to broadcast against every parameter of the program layout: W1's
    (S, M*H, 1) or pixel-major (S, 1, M*H), b1's (S, M*H), the deeper and output layers' (S, M, 1[, 1])."""
    h = params["b1"].shape[1] // values.shape[1]
    units = values.repeat_interleave(h, dim=1)  # (S, M*H)
    shaped = {"w1": units.unsqueeze(pixel_axis), "b1": units}
    shaped.update({name: values.view(*values.shape, *[1] * (p.dim() - 2)) for name, p in params.items()
                   if name not in shaped})
    return shaped


def member_major(params: dict[str, torch.Tensor], image_order: torch.Tensor, layout) -> dict:
    """Program layout -> one entry per member, W1's columns back in image order: w1 (S*M, H1, D),
    b1 (S*M, H1), the deeper layers (S*M, H_l, H_l-1) and (S*M, H_l), the output layer (S*M, K, H_L) and
    (S*M, K). ``layout``: the products' W1 layout map (its own inverse)."""
    s, m = params["b1"].shape[0], params[output_names(depth_of(params))[0]].shape[1]
    h = params["b1"].shape[1] // m
    out = {"w1": layout(params["w1"]).reshape(s * m, h, -1)[..., image_order], "b1": params["b1"].reshape(s * m, h)}
    out.update({name: p.reshape(s * m, *p.shape[2:]) for name, p in params.items() if name not in out})
    return out


def pad_classes(t: torch.Tensor, k: int) -> torch.Tensor:
    """Zero rows up to k classes along the first axis."""
    return torch.cat([t, t.new_zeros(k - t.shape[0], *t.shape[1:])])

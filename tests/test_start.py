"""Training from given initial weights (``train(grid, data, start=...)``): from each seed's own weights it is the
normal run bit for bit, from any weights it is the paper's loop started from them, and a bad start is refused
in one line before any training."""

from __future__ import annotations

import pytest
import torch

import underspec.training.engine as engine
from underspec import Grid, UnderspecError, train, train_paper_loop
from underspec.training.engine import train_parts
from underspec.training.model import init_params, output_names

OPTIONS = dict(progress=False, probe_size=50, snapshots=True, embeddings=True)


def seed_start(grid: Grid, d: int = 784) -> dict[str, torch.Tensor]:
    """Every member's own seed's initial weights, stacked in grid.members() order, the output layer padded with
    zeros to the largest C (as Run.init has them)."""
    k, w_out, b_out = max(grid.n_classes), *output_names(grid.depth)
    nets = [init_params(seed, c, grid.layer_widths(), d) for seed, _, c in grid.members()]
    return {name: torch.stack([torch.cat([p[name], p[name].new_zeros(k - c, *p[name].shape[1:])])
                               if name in (w_out, b_out) else p[name] for p, (_, _, c) in zip(nets, grid.members())])
            for name in nets[0]}


def difference(member, loop) -> float:
    """Largest absolute difference of two Members' parameters (init, final, gradient sum, every epoch's) and
    history (the mean gradient norm relative, as ``test_engine.max_difference`` takes it)."""
    diffs = [(getattr(member, r)[k] - getattr(loop, r)[k]).abs().max().item()
             for r in ("init", "final", "grad_sum", "snapshots") for k in loop.init]
    cols = ["train_loss", "train_acc", "test_loss", "test_acc"]
    diffs.append((member.history[cols] - loop.history[cols]).abs().to_numpy().max())
    diffs.append(((member.history.grad_norm - loop.history.grad_norm).abs() / loop.history.grad_norm).max())
    return max(diffs)


def assert_same_run(a, b):
    for record in ("init", "final", "grad_sum", "snapshots"):
        assert all(torch.equal(getattr(a, record)[k], getattr(b, record)[k]) for k in a.init), record
    assert torch.equal(a.embeddings, b.embeddings)
    assert a.history.equals(b.history)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_starting_from_each_seeds_own_weights_is_the_normal_run_bit_for_bit(small, dtype, sparse):
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), n_classes=(3, 10), epochs=2)
    start = seed_start(grid)
    normal = train(grid, small, dtype=dtype, sparse=sparse, **OPTIONS)
    given = train(grid, small, dtype=dtype, sparse=sparse, start=start, **OPTIONS)
    assert_same_run(normal, given)
    assert all(torch.equal(given.init[k], start[k].to(dtype)) for k in start)  # the recorded init is the start


def test_a_mixed_grid_takes_a_start_per_part_and_none_draws_from_the_seeds(small):
    grid = Grid(seeds=(0, 42), hidden=(8, 12), epochs=1)
    normal = train(grid, small, **OPTIONS)
    given = train(grid, small, start=[None, seed_start(grid.parts()[1])], **OPTIONS)
    for a, b in zip(normal.parts, given.parts):
        assert_same_run(a, b)
    again = train_parts(grid.parts(), small, start=[r.init for r in normal.parts], **OPTIONS)
    for a, b in zip(normal.parts, again):
        assert_same_run(a, b)


@pytest.mark.parametrize("knobs", [dict(n_classes=(3, 10)), dict(depth=2, hidden=6), dict(widths=(7, 5))],
                         ids=["C", "depth-2", "widths"])
def test_starting_from_any_weights_is_the_papers_loop_started_from_them(small, knobs):
    grid = Grid(seeds=(0, 42), l1=(0.0, 0.01), epochs=2, **knobs)
    g = torch.Generator().manual_seed(5)
    other = Grid(seeds=(7, 8), l1=grid.l1, epochs=2, **knobs)  # other seeds' weights, scaled at random
    start = {k: v * (1 + torch.rand(v.shape, generator=g)) for k, v in seed_start(other).items()}  # zero rows stay 0
    run = train(grid, small, dtype=torch.float64, start=start, **OPTIONS)
    w_out, b_out = output_names(grid.depth)
    for i, (seed, l1, c) in enumerate(grid.members()):
        own = {k: v[i, :c] if k in (w_out, b_out) else v[i] for k, v in start.items()}
        loop = train_paper_loop(seed, l1, c, small, hidden=grid.hidden, depth=grid.depth, widths=grid.widths,
                                epochs=2, dtype=torch.float64, probe_size=50, start=own)
        assert all(torch.equal(loop.init[k], own[k].double()) for k in own)
        assert difference(run.member(seed, l1, c), loop) < 1e-10, (seed, l1, c)


def test_a_bad_start_is_refused_in_one_line_before_any_training(small, monkeypatch):
    monkeypatch.setattr(engine, "_train_groups", lambda *a, **k: pytest.fail("trained with a bad start"))
    grid = Grid(seeds=(0, 42), n_classes=(3, 10), epochs=1)
    good = seed_start(grid)
    nan = {**good, "b1": good["b1"].clone()}
    nan["b1"][1, 3] = float("nan")
    padded = {**good, "w2": good["w2"].clone()}
    padded["w2"][0, 5] = 1.0  # member 0 has C = 3: rows 3.. must be zero
    cases = [
        ({**good, "w1": good["w1"][:, :, :100]}, r"w1 has shape \(4, 16, 100\), this grid's 4 member\(s\) need \(4, 16, 784\)"),
        ({k: v[:3] for k, v in good.items()}, r"w1 has shape \(3, 16, 784\), this grid's 4 member\(s\) need"),
        (nan, "b1 has NaN or infinite values"),
        ({**good, "b2": good["b2"].long()}, "b2 is torch.int64, give float32 or float64"),
        ({k: v for k, v in good.items() if k != "b2"}, "start must be a dict of w1, b1, w2, b2"),
        ({**good, "w2": good["w2"][:, :2]}, r"w2 has shape \(4, 2, 16\), .* need \(4, '>= 10', 16\)"),
        (padded, "w2 has non-zero rows beyond a member's class count C"),
        ([good, good], r"one parameter dict per part of the grid \(1\)"),
    ]
    for start, message in cases:
        with pytest.raises(UnderspecError, match=message) as info:
            train(grid, small, progress=False, start=start)
        assert "\n" not in str(info.value)
    with pytest.raises(UnderspecError, match="perturb_ulp would move W1"):
        train(Grid(seeds=(0, 42), n_classes=(3, 10), epochs=1, perturb_ulp=1), small, progress=False, start=good)
    with pytest.raises(UnderspecError, match=r"one parameter dict per part of the grid \(2\)"):
        train(Grid(seeds=(0, 42), hidden=(8, 12), epochs=1), small, progress=False, start=good)
    with pytest.raises(UnderspecError, match="w1 has NaN"):
        train_paper_loop(0, 0.0, 3, small, epochs=1, start={**{k: v[0, :3] if k in ("w2", "b2") else v[0]
                                                                 for k, v in good.items()},
                                                              "w1": torch.full((16, 784), float("nan"))})

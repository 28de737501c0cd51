"""The hidden units themselves: which are dead, and how far each network moved from its initialisation.

Dead units, by an explicit policy (``DEAD_POLICY``): under SGD the L1 term moves every weight by lr * lambda
each step, so a weight that L1 has shrunk never reaches 0: it oscillates within lr * lambda of it. The
zero-variance policy of the matching never fires for such a unit, yet its correlations are noise. A unit is
*dead* when

- every one of its incoming weights lies within ``DEAD_TOLERANCE`` x lr x lambda of zero (L1 has erased it;
  this rule needs lambda > 0), or
- it is silent: its ReLU output is 0 on every training image (when the images are given).
"""

from __future__ import annotations

import pandas as pd
import torch

from ..errors import UnderspecError
from ..training.data import Dataset, class_labels
from ..training.run import Run, check_run

DEAD_TOLERANCE = 2.0  # in units of lr * lambda: an oscillation of one step either side of zero
DEAD_POLICY = (f"a unit is dead when all its incoming weights lie within {DEAD_TOLERANCE:g} x lr x λ of zero (L1 "
               "has erased it: under SGD shrunk weights oscillate within lr x λ of 0 instead of reaching it), or "
               "when its ReLU output is 0 on every training image")


def dead_units(w1: torch.Tensor, *, lr: float, l1: float | torch.Tensor, b1: torch.Tensor | None = None,
               x: torch.Tensor | None = None) -> torch.Tensor:
    """(..., H) bool: the dead units of networks with first layers ``w1`` (..., H, D) (see the module doc).

    lr, l1: the learning rate and L1 strength (``l1`` may be (...,) per network); b1 (..., H) and images
    x (N, D): when both are given, units silent on every image also count as dead.
    """
    l1 = torch.as_tensor(l1, dtype=torch.float64)
    tolerance = (DEAD_TOLERANCE * lr * l1).unsqueeze(-1)  # (..., 1)
    erased = (w1.double().abs().amax(-1) <= tolerance) & (tolerance > 0)
    if x is None or b1 is None:
        return erased
    pre = x.to(w1.dtype) @ w1.transpose(-1, -2) + b1.unsqueeze(-2)  # (..., N, H)
    return erased | (pre <= 0).all(-2)


def run_units(run: Run, data: Dataset | None = None) -> torch.Tensor:
    """(N,) members x (H,) units, bool: each member's dead units at the end of training (silent ones judged on
    the member's own training images when ``data`` is given)."""
    check_run(run, "run_units")
    if data is not None and data.name != run.data_name:
        raise UnderspecError(f"data is {data.name!r} but the run was trained on {run.data_name!r}: pass the data "
                             "set the run was trained on")
    g, final = run.grid, run.final
    l1 = torch.tensor([m[1] for m in g.members()], dtype=torch.float64)
    if data is None:
        return dead_units(final["w1"], lr=g.lr, l1=l1)
    dead = torch.zeros(final["b1"].shape, dtype=torch.bool)
    for c in g.n_classes:  # silence is judged on the images a member trained on (subset mode: fewer)
        keep, _ = class_labels(data.y_train, c, g.class_mode)
        idx = torch.tensor([i for i, m in enumerate(g.members()) if m[2] == c])
        dead[idx] = dead_units(final["w1"][idx], lr=g.lr, l1=l1[idx], b1=final["b1"][idx], x=data.x_train[keep])
    return dead


def distance_from_init(run: Run) -> pd.DataFrame:
    """How far each member moved from its initialisation: one row per member with ``rel_change`` =
    ||W1 - W1_0|| / ||W1_0|| and ``init_cosine`` = the mean over units of the cosine between a unit's final
    and initial incoming weights (1: the unit is still its random init, up to scale)."""
    w, w0 = check_run(run, "distance_from_init").final["w1"].double(), run.init["w1"].double()
    rel = torch.linalg.vector_norm(w - w0, dim=(-2, -1)) / torch.linalg.vector_norm(w0, dim=(-2, -1))
    cosine = torch.nn.functional.cosine_similarity(w, w0, dim=-1).mean(-1)
    return pd.DataFrame({**run.members.to_dict("list"), "rel_change": rel.numpy(), "init_cosine": cosine.numpy()})

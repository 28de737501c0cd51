"""Distance from initialisation and capacity (Neyshabur et al. 2019), for networks of one hidden layer (for
deeper ones: the first layer and the output layer).

With U = W1 (H, D) the first layer (rows u_i, the units' incoming weights), U0 its initial value and V the
output layer (C, H) (columns v_i, the units' outgoing weights):

- ``dist`` = ||U - U0||_F, ``rel_dist`` = ||U - U0||_F / ||U0||_F, ``unit_dist`` = sum_i ||u_i - u_i^0||;
- ``fro_u``, ``spec_u``, ``fro_v``, ``spec_v``: Frobenius and spectral norms of U and V;
- ``margin5``: the 5th percentile over the training images of the margin f(x)[y] - max_{j != y} f(x)[j];
- ``capacity_sum`` = sum_i ||v_i|| ||u_i - u_i^0||, and ``capacity`` = capacity_sum / margin5: the unit-wise term
  of Neyshabur et al.'s bound, which they find to fall with width. NaN where margin5 <= 0 (more than 5% of the
  training images misclassified: the bound says nothing there).
"""

from __future__ import annotations

import torch

from ..errors import UnderspecError
from ..training.model import depth_of, forward

MARGIN_QUANTILE = 0.05


def margins(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, *,
            logits: torch.Tensor | None = None) -> torch.Tensor:
    """f(x)[y] - max_{j != y} f(x)[j] for every image: params (...,), x (N, D), y (N,) -> (..., N) float64
    (``logits`` (..., N, C): the networks' outputs on x, when the caller has them)."""
    logits = (forward(params, x.to(params["w1"].dtype)) if logits is None else logits).double()
    right = logits.gather(-1, y.expand(*logits.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, y.expand(*logits.shape[:-1]).unsqueeze(-1), float("-inf")).amax(-1)
    return right - others


def capacity(params: dict[str, torch.Tensor], init: dict[str, torch.Tensor], x: torch.Tensor,
             y: torch.Tensor, *, logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The module doc's measures: params, init (...,) networks, x (N, D) training images, y (N,) their classes
    -> {name: (...,) float64} (``logits``: the networks' outputs on x, when the caller has them)."""
    if params["w1"].shape != init["w1"].shape:
        raise UnderspecError("capacity needs the trained and the initial parameters of the same networks")
    if x.shape[0] != y.shape[0]:
        raise UnderspecError(f"x has {x.shape[0]} images, y {y.shape[0]} labels")
    u, u0 = params["w1"].double(), init["w1"].double()
    v = params[f"w{depth_of(params) + 1}"].double()
    unit = torch.linalg.vector_norm(u - u0, dim=-1)  # (..., H)
    margin5 = torch.quantile(margins(params, x, y, logits=logits), MARGIN_QUANTILE, dim=-1)
    outgoing = torch.linalg.vector_norm(v, dim=-2)  # (..., H): ||v_i||
    bound = (outgoing * unit).sum(-1)
    return {"dist": torch.linalg.vector_norm(u - u0, dim=(-2, -1)),
            "rel_dist": torch.linalg.vector_norm(u - u0, dim=(-2, -1)) / torch.linalg.vector_norm(u0, dim=(-2, -1)),
            "unit_dist": unit.sum(-1),
            "fro_u": torch.linalg.vector_norm(u, dim=(-2, -1)), "spec_u": torch.linalg.matrix_norm(u, ord=2),
            "fro_v": torch.linalg.vector_norm(v, dim=(-2, -1)), "spec_v": torch.linalg.matrix_norm(v, ord=2),
            "margin5": margin5, "capacity_sum": bound,
            "capacity": torch.where(margin5 > 0, bound / torch.where(margin5 > 0, margin5, 1.0),
                                    torch.full_like(bound, float("nan")))}

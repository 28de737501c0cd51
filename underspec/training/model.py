"""The paper's network: Linear(784 -> H) + ReLU + Linear(H -> C), and a functional forward pass.

Parameters travel as plain dicts of tensors, the same names everywhere in the package:
``w1`` (H, D), ``b1`` (H,), ``w2`` (C, H), ``b2`` (C,). Any leading axes (members, pairs) broadcast.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PARAM_NAMES = ("w1", "b1", "w2", "b2")


def permutation_spec(depth: int = 1) -> dict[str, tuple[tuple[str, int], ...]]:
    """Which axes of which parameters each hidden layer's permutation moves, declared once as data (Git
    Re-Basin's permutation spec): ``{"h1": (("w1", -2), ("b1", -1), ("w2", -1))}`` for one hidden layer.

    Hidden layer l permutes the rows of ``w<l>`` (its incoming weights), its bias ``b<l>`` and the columns of
    ``w<l+1>`` (its outgoing weights). Axes count from the end, so leading axes (members, pairs) broadcast.
    """
    return {f"h{layer}": ((f"w{layer}", -2), (f"b{layer}", -1), (f"w{layer + 1}", -1))
            for layer in range(1, depth + 1)}


PERMUTATION_SPEC = permutation_spec(1)  # the paper's network: one hidden layer


class PaperMLP(nn.Module):
    """The model exactly as the paper's code builds it.

    The constructor order matters for seed-exactness: both ``nn.Linear`` layers first draw their default
    init from the global generator, and only then are W1 and W2 redrawn with Xavier-uniform (gain sqrt(2)).
    """

    def __init__(self, n_classes: int, hidden: int = 16, n_inputs: int = 784):
        super().__init__()
        self.fc1 = nn.Linear(n_inputs, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)
        nn.init.xavier_uniform_(self.fc1.weight, gain=math.sqrt(2))
        nn.init.xavier_uniform_(self.fc2.weight, gain=math.sqrt(2))
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))

    def params(self) -> dict[str, torch.Tensor]:
        """The parameters as a detached dict (``w1``, ``b1``, ``w2``, ``b2``)."""
        return {
            "w1": self.fc1.weight.detach().clone(),
            "b1": self.fc1.bias.detach().clone(),
            "w2": self.fc2.weight.detach().clone(),
            "b2": self.fc2.bias.detach().clone(),
        }


def optimizer_for(params, optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.0,
                  weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """torch.optim's SGD(lr, momentum, weight_decay), Adam(lr, weight_decay) or AdamW(lr, weight_decay) over
    ``params``, torch's defaults otherwise (AdamW's weight decay is the one given, not torch's 0.01).
    Elementwise, so one optimizer over stacked members updates each exactly as its own would."""
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optimizer](params, lr=lr, weight_decay=weight_decay)


def init_params(seed: int, n_classes: int, hidden: int = 16, n_inputs: int = 784) -> dict[str, torch.Tensor]:
    """The float32 initial parameters that ``torch.manual_seed(seed); PaperMLP(n_classes)`` draws.

    The caller's global random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        # The CPU generator is the only one the constructor draws from; torch.manual_seed would also queue a
        # CUDA seeding (and record a stack trace for it, 0.4 ms a call) that the caller never asked for.
        torch.default_generator.manual_seed(seed)
        return PaperMLP(n_classes, hidden, n_inputs).params()


def hidden_preactivation(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """First-layer output before ReLU: x (..., N, D) -> (..., N, H)."""
    return x @ params["w1"].transpose(-1, -2) + params["b1"].unsqueeze(-2)


def forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of the network(s): x (..., N, D) -> (..., N, C); leading axes of params and x broadcast."""
    hidden = torch.relu(hidden_preactivation(params, x))
    return hidden @ params["w2"].transpose(-1, -2) + params["b2"].unsqueeze(-2)

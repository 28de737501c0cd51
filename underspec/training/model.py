"""The paper's network: Linear(784 -> H) + ReLU + Linear(H -> C), generalised to several hidden layers, and a
functional forward pass.

Parameters travel as plain dicts of tensors, the same names everywhere in the package:
``w1`` (H, D), ``b1`` (H,), ``w2`` (C, H), ``b2`` (C,); with depth L hidden layers, ``w2`` ... ``wL`` (H, H) and
``bL`` (H,) come between, and the output layer is ``w<L+1>`` (C, H), ``b<L+1>`` (C,). Any leading axes
(members, pairs) broadcast.
"""

from __future__ import annotations

import math

import torch
from torch import nn



def permutation_spec(depth: int = 1) -> dict[str, tuple[tuple[str, int], ...]]:
    """Which axes of which parameters each hidden layer's permutation moves, declared once as data (Git
    Re-Basin's permutation spec): ``{"h1": (("w1", -2), ("b1", -1), ("w2", -1))}`` for one hidden layer.

    Hidden layer l permutes the rows of ``w<l>`` (its incoming weights), its bias ``b<l>`` and the columns of
    ``w<l+1>`` (its outgoing weights). Axes count from the end, so leading axes (members, pairs) broadcast.
    """
    return {f"h{layer}": ((f"w{layer}", -2), (f"b{layer}", -1), (f"w{layer + 1}", -1))
            for layer in range(1, depth + 1)}


PERMUTATION_SPEC = permutation_spec(1)  # the paper's network: one hidden layer


def param_names(depth: int = 1) -> tuple[str, ...]:
    """``w1, b1, ..., w<depth+1>, b<depth+1>``: each hidden layer's incoming weights and bias, then the output
    layer's."""
    return tuple(f"{kind}{layer}" for layer in range(1, depth + 2) for kind in "wb")


PARAM_NAMES = param_names(1)  # the paper's network


def output_names(depth: int = 1) -> tuple[str, str]:
    """The output layer's weight and bias, whose rows are the classes (padded to the grid's largest C)."""
    return f"w{depth + 1}", f"b{depth + 1}"


def depth_of(params: dict) -> int:
    """The number of hidden layers of a parameter dict."""
    return len(params) // 2 - 1


def layer_widths(hidden, depth: int = 1) -> tuple[int, ...]:
    """Every hidden layer's width: ``hidden`` itself when it lists them (a tuple or list, first to last), else
    ``depth`` layers of ``hidden`` units."""
    return tuple(int(h) for h in hidden) if isinstance(hidden, (tuple, list)) else (int(hidden),) * depth


class PaperMLP(nn.Module):
    """The model exactly as the paper's code builds it, generalised to ``depth`` hidden layers of ``hidden``
    ReLU units: Linear(D -> H), depth - 1 times Linear(H -> H), Linear(H -> C), as ``fc1``, ``fc2``, ...; or,
    with ``hidden`` a tuple of per-layer widths (H1, ..., HL), Linear(D -> H1), Linear(H1 -> H2), ...,
    Linear(HL -> C) (``depth`` is then their number).

    The constructor order matters for seed-exactness: every ``nn.Linear`` first draws its default init from
    the global generator, in order, and only then is every weight redrawn with Xavier-uniform (gain sqrt(2)),
    in order, and every bias set to 0. At depth 1 this is the paper's constructor, draw for draw; per-layer
    widths follow the same rule (PROTOCOL section 5's construction, each layer's shape its own).
    """

    def __init__(self, n_classes: int, hidden: int | tuple[int, ...] = 16, n_inputs: int = 784, depth: int = 1):
        super().__init__()
        sizes = [n_inputs, *layer_widths(hidden, depth), n_classes]
        self.layers = [nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
        for i, layer in enumerate(self.layers, 1):
            self.add_module(f"fc{i}", layer)
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.weight, gain=math.sqrt(2))
        for layer in self.layers:
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)

    @torch.no_grad()
    def hidden_preactivations(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Every hidden layer's pre-activations on ``x`` (P, D): (L, P, H); with per-layer widths that differ, a
        list of (P, H_l)."""
        out = []
        for layer in self.layers[:-1]:
            out.append(layer(x))
            x = torch.relu(out[-1])
        return torch.stack(out) if len({z.shape[-1] for z in out}) == 1 else out

    def params(self) -> dict[str, torch.Tensor]:
        """The parameters as a detached dict (``w1``, ``b1``, ..., see ``param_names``)."""
        return {name: p.detach().clone() for name, p in zip(param_names(len(self.layers) - 1), self.parameters())}


def optimizer_for(params, optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.0,
                  weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """torch.optim's SGD(lr, momentum, weight_decay), Adam(lr, weight_decay) or AdamW(lr, weight_decay) over
    ``params``, torch's defaults otherwise (AdamW's weight decay is the one given, not torch's 0.01).
    Elementwise, so one optimizer over stacked members updates each exactly as its own would."""
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optimizer](params, lr=lr, weight_decay=weight_decay)


def init_params(seed: int, n_classes: int, hidden: int | tuple[int, ...] = 16, n_inputs: int = 784,
                depth: int = 1) -> dict[str, torch.Tensor]:
    """The float32 initial parameters that ``torch.manual_seed(seed); PaperMLP(n_classes, hidden, n_inputs,
    depth)`` draws (``hidden``: a width, or every hidden layer's, first to last).

    The caller's global random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        # The CPU generator is the only one the constructor draws from; torch.manual_seed would also queue a
        # CUDA seeding (and record a stack trace for it, 0.4 ms a call) that the caller never asked for.
        torch.default_generator.manual_seed(seed)
        return PaperMLP(n_classes, hidden, n_inputs, depth).params()


def hidden_preactivation(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """First-layer output before ReLU: x (..., N, D) -> (..., N, H)."""
    return x @ params["w1"].transpose(-1, -2) + params["b1"].unsqueeze(-2)


def preactivations(params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output before its ReLU, the logits last: x (..., N, D) -> [(..., N, H)] * depth +
    [(..., N, C)]; leading axes of params and x broadcast."""
    layers = []
    for layer in range(1, depth_of(params) + 2):
        inputs = torch.relu(layers[-1]) if layers else x
        layers.append(inputs @ params[f"w{layer}"].transpose(-1, -2) + params[f"b{layer}"].unsqueeze(-2))
    return layers


def forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of the network(s) of any depth: x (..., N, D) -> (..., N, C); leading axes of params and x
    broadcast."""
    return preactivations(params, x)[-1]

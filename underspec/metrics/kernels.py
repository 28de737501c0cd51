"""The network's kernels, a space where the permutation symmetry of hidden units is gone by construction: the
empirical neural tangent kernel and the conjugate kernel of one network on a set of images.

For an MLP with ReLU the empirical NTK has a closed form: the gradient of output c with respect to layer l's
weights is the outer product of that layer's input a_{l-1}(x) with the output's sensitivity to the layer's
pre-activations, delta_l(x)[:, c]; so

    NTK(x, x')[c, c'] = sum over layers l of (a_{l-1}(x) . a_{l-1}(x') + 1) * (delta_l(x)[:, c] . delta_l(x')[:, c'])

(the 1 is the bias), with delta_{L+1} = I (the output layer) and delta_l = relu'(z_l) * (W_{l+1}^T delta_{l+1}).
``tests/test_kernels.py`` holds it to ``torch.func`` (``jacrev`` over the parameters, as PyTorch's NTK tutorial
computes it). Permuting a hidden layer's units permutes a_l and delta_l together, so every dot product, and
the kernel, is unchanged.
"""

from __future__ import annotations

import torch

from ..errors import UnderspecError
from ..training.model import depth_of, output_names


def _layers(params: dict[str, torch.Tensor], x: torch.Tensor):
    """Every layer's input a_{l-1} (N, fan_in) and the outputs' sensitivity to its pre-activations delta_l
    (N, H_l, C), for l = 1 .. L+1 (the output layer last)."""
    depth = depth_of(params)
    inputs, zs = [x], []
    for layer in range(1, depth + 1):
        zs.append(inputs[-1] @ params[f"w{layer}"].T + params[f"b{layer}"])
        inputs.append(torch.relu(zs[-1]))
    w_out, _ = output_names(depth)
    c = params[w_out].shape[0]
    delta = torch.eye(c, dtype=x.dtype).expand(len(x), c, c)  # (N, C, C): the output layer's
    deltas = [delta]
    for layer in range(depth, 0, -1):
        w_next = params[f"w{layer + 1}"]  # (H_{l+1} or C, H_l)
        delta = (zs[layer - 1] > 0).to(x.dtype)[..., None] * (w_next.T @ delta)  # (N, H_l, C)
        deltas.append(delta)
    return inputs, deltas[::-1]


def _one_network(params, what: str) -> dict[str, torch.Tensor]:
    """``params`` in float64, after checking it is one network's."""
    if not isinstance(params, dict) or "w1" not in params:
        raise UnderspecError(f"{what} needs one network's parameters, e.g. run.member(...).final")
    if params["w1"].dim() != 2:
        raise UnderspecError(f"{what} takes one network (w1 of shape (H, D)), not a stack of them")
    return {k: v.detach().double() for k, v in params.items()}


def empirical_ntk(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The empirical NTK of one network (``params``: ``w1``, ``b1``, ..., its output layer cut to its C) on
    images ``x`` (N, D): (N, N, C, C), in float64."""
    inputs, deltas = _layers(_one_network(params, "empirical_ntk"), torch.as_tensor(x).double())
    kernel = 0
    for a, delta in zip(inputs, deltas):
        gram = a @ a.T + 1.0  # (N, N): inputs' products, the bias's 1
        kernel = kernel + gram[:, :, None, None] * torch.einsum("nhc,mhd->nmcd", delta, delta)
    return kernel


def conjugate_kernel(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The conjugate kernel: the Gram matrix of the last hidden layer's activations on ``x`` (N, D): (N, N)."""
    inputs, _ = _layers(_one_network(params, "conjugate_kernel"), torch.as_tensor(x).double())
    return inputs[-1] @ inputs[-1].T

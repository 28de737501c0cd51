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



def _kernel(k, what: str) -> torch.Tensor:
    """One kernel as an (N, N, C, C) float64 tensor (a conjugate kernel (N, N) gets C = 1)."""
    k = torch.as_tensor(k).double()
    if k.dim() == 2:
        k = k[:, :, None, None]
    if k.dim() != 4 or k.shape[0] != k.shape[1] or k.shape[2] != k.shape[3] or k.shape[0] == 0:
        raise UnderspecError(f"{what} takes one kernel, (N, N) or (N, N, C, C), got shape {tuple(k.shape)}")
    if not bool(torch.isfinite(k).all()):
        raise UnderspecError(f"{what}: the kernel holds NaN or infinite values (a diverged network?)")
    return k


def kernel_alignment(a, b) -> float:
    """Centred kernel alignment of two kernels on the same images (Cortes et al. 2012): <HaH, HbH>_F /
    (|HaH|_F |HbH|_F) in [-1, 1], H = I - 11^T / N centring over the images. ``a``, ``b``: (N, N) (a conjugate
    kernel) or (N, N, C, C) (an NTK: centred over its two image axes, the outputs kept apart in the sum). For
    Gram matrices a = X X^T, b = Y Y^T it is linear CKA of X and Y; it is 1 for a network and a copy of it
    with its hidden units permuted (both kernels are the same). NaN for a kernel constant after centring."""
    a, b = _kernel(a, "kernel_alignment"), _kernel(b, "kernel_alignment")
    if a.shape != b.shape:
        raise UnderspecError(f"kernel_alignment compares kernels of the same images and outputs, got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")

    def centred(k):
        return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean((0, 1), keepdim=True)

    a, b = centred(a), centred(b)
    aa, bb = float((a * a).sum()), float((b * b).sum())
    return float((a * b).sum()) / (aa * bb) ** 0.5 if aa > 0 and bb > 0 else float("nan")


def kernel_movement(initial, final) -> float:
    """How far a kernel moved in training: |K_final - K_init|_F / |K_init|_F ((N, N) or (N, N, C, C)); the
    lazy (kernel) regime keeps it near 0."""
    initial, final = _kernel(initial, "kernel_movement"), _kernel(final, "kernel_movement")
    if initial.shape != final.shape:
        raise UnderspecError(f"kernel_movement compares one network's kernels before and after training, got "
                             f"{tuple(initial.shape)} and {tuple(final.shape)}")
    return float(torch.linalg.vector_norm(final - initial) / torch.linalg.vector_norm(initial))

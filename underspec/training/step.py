"""One training step and one evaluation of a program's S x M members, gradients written by hand.

The layout is the engine's (``engine.py``): activations kept transposed, batch last, ((S, M*H, B) =
(S, M, H, B)), so every product is a plain batched matmul on contiguous memory; ``const`` is the program's
per-member constants (``engine._Constants``) and ``products`` the first layer's products with the batch
(``products.py``).
"""

from __future__ import annotations

import torch

from .model import depth_of, output_names


def gradients(params, products, digits, const):
    """Gradients of mean cross-entropy + l1 * sum|W1| for every member on its stream's batch.

    products: the first layer's products with the batch (see ``products.py``); digits (S, B) -> gradients
    shaped like ``params``, summed cross-entropy (S, M) and number of correct predictions (S, M). Activations
    are kept transposed, batch last ((S, M*H, B) = (S, M, H, B)), so every product below is a plain batched
    matmul on contiguous memory, and the softmax over the few classes runs along a middle axis, which torch
    vectorises far better than a short last axis.
    """
    depth = depth_of(params)
    w_out, b_out = output_names(depth)
    s, m = params[w_out].shape[:2]
    b = digits.shape[1]
    z1 = products.forward(params["w1"], params["b1"])  # (S, M*H, B)
    zs, acts, logits = forward_hidden(params, z1, const, depth, const.work)
    labels = torch.gather(const.member_labels, 2, digits.unsqueeze(1).expand(s, m, b)).unsqueeze(2)  # (S, M, 1, B)
    log_p = torch.log_softmax(logits, dim=2)
    ce_sum = -log_p.gather(2, labels).sum((2, 3))
    n_correct = (argmax_classes(logits) == labels.squeeze(2)).sum(-1)

    d_logits = log_p.exp()  # softmax - onehot, divided by B for the batch mean
    d_logits.scatter_add_(2, labels, torch.full_like(labels, -1, dtype=d_logits.dtype))
    d_logits /= b
    work = const.work
    grads = {w_out: d_logits @ acts[-1].transpose(-1, -2), b_out: d_logits.sum(-1)}  # (S, M, K, H), (S, M, K)
    # (S, M, H, B): back through the deeper hidden layers
    d_a = torch.matmul(params[w_out].transpose(-1, -2), d_logits, out=_buffer(work, f"d_a{depth}", acts[-1]))
    for layer in range(depth, 1, -1):
        d_z = d_a.mul_(zs[layer - 1] > 0)
        grads[f"w{layer}"] = torch.matmul(d_z, acts[layer - 2].transpose(-1, -2),  # (S, M, H, H)
                                          out=_buffer(work, f"w{layer}", params[f"w{layer}"]))
        grads[f"b{layer}"] = d_z.sum(-1)
        d_a = torch.matmul(params[f"w{layer}"].transpose(-1, -2), d_z,
                           out=_buffer(work, f"d_a{layer - 1}", acts[layer - 2]))
    d_z1 = d_a.view(s, -1, b)  # (S, M*H1, B)
    d_z1 *= z1 > 0
    d_w1 = products.weight_gradient(d_z1)  # W1's shape in the products' layout; 0 on dead pixels
    if const.l1_units is not None:  # None: every member's lambda is 0
        d_w1.addcmul_(torch.sign(params["w1"], out=const.scratch), const.l1_units)
    grads.update(w1=d_w1, b1=d_z1.sum(-1))
    return grads, ce_sum, n_correct


def forward_hidden(params, z1: torch.Tensor, const, depth: int, work: dict | None = None):
    """From the first layer's pre-activations z1 (S, M*H, B) on: every hidden layer's pre-activations and
    activations (lists of (S, M, H, B), layer 1 first) and the logits (S, M, K, B), padded classes -inf.
    ``work``: buffers to write the activations into (a training step's: the same shapes every step)."""
    w_out, b_out = output_names(depth)
    s, m = params[w_out].shape[:2]
    zs = [z1.view(s, m, -1, z1.shape[-1])]  # (S, M, H1, B)
    acts = [_relu(zs[0], work, "a1")]
    for layer in range(2, depth + 1):
        z = params[f"w{layer}"] @ acts[-1] if work is None else torch.matmul(
            params[f"w{layer}"], acts[-1], out=_buffer(work, f"z{layer}", acts[-1], params[f"w{layer}"].shape[-2]))
        zs.append(z.add_(params[f"b{layer}"].unsqueeze(-1)))
        acts.append(_relu(zs[-1], work, f"a{layer}"))
    logits = params[w_out] @ acts[-1] + params[b_out].unsqueeze(-1) + const.class_mask
    return zs, acts, logits


@torch.no_grad()
def evaluate(params, setup, const, epoch: int, validation: bool = False) -> torch.Tensor:
    """Test loss and accuracy (S, M, 2) of every member; records the probe embeddings (every hidden layer's
    pre-activations) of ``epoch`` on the way. ``validation``: the loss and accuracy on the validation split
    instead (nothing recorded).

    The products ``setup.test`` (``setup.val``) have the whole test set (validation split) as every stream's
    batch. Same transposed layout as ``_gradients``.
    """
    depth = depth_of(params)
    s, m = params[output_names(depth)[0]].shape[:2]
    z1 = (setup.val if validation else setup.test).forward(params["w1"], params["b1"])  # (S, M*H, T)
    zs, _, logits = forward_hidden(params, z1, const, depth)  # (S, M, H, T) per hidden layer, (S, M, K, T)
    if setup.records.embeddings is not None and not validation:
        for z, embeddings in zip(zs, setup.records.embeddings):
            p = embeddings.shape[2]
            embeddings[const.flat, epoch] = z[..., :p].reshape(s * m, z.shape[2], p).transpose(1, 2)
    targets, valid = (const.val_labels, const.val_valid) if validation else (const.test_labels, const.test_valid)
    labels = targets.unsqueeze(2)
    log_p = torch.log_softmax(logits, dim=2).gather(2, labels).squeeze(2)  # (S, M, T)
    count = valid.sum(-1).to(torch.float64)
    loss = -torch.where(valid, log_p, 0.0).sum(-1).to(torch.float64) / count
    acc = ((argmax_classes(logits) == targets) & valid).sum(-1).to(torch.float64) / count
    return torch.stack([loss, acc], dim=-1)


def argmax_classes(logits: torch.Tensor) -> torch.Tensor:
    """argmax over the class axis of (S, M, K, B) logits -> (S, M, B); a contiguous copy makes it ~3x faster."""
    return logits.transpose(2, 3).contiguous().argmax(-1)


def _relu(z: torch.Tensor, work: dict | None, name: str) -> torch.Tensor:
    """relu(z), into ``work[name]`` when given (torch's relu is this clamp_min)."""
    return torch.relu(z) if work is None else torch.clamp_min(z, 0, out=_buffer(work, name, z))


def _buffer(work: dict, name: str, like: torch.Tensor, units: int | None = None) -> torch.Tensor:
    """The step's buffer ``name``, shaped like ``like`` (with ``units`` rows instead of its own: a layer whose
    width differs from the previous one's) (made at the first step, or when the shape changes)."""
    shape = like.shape if units is None else (*like.shape[:-2], units, like.shape[-1])
    buf = work.get(name)
    if buf is None or buf.shape != shape or buf.dtype != like.dtype:
        buf = work[name] = like.new_empty(shape)
    return buf

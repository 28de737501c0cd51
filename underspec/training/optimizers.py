"""torch.optim's SGD, Adam and AdamW written out for stacked members whose learning rate, momentum and weight
decay differ member by member (torch.optim's parameter groups cannot vary inside one tensor).

The formulas and their order of operations are those of torch.optim's single-tensor implementations, and
every per-member factor is made as torch makes its Python-float hyperparameters (in float64, then rounded to
the parameters' dtype), so each member is updated as its own torch.optim would update it, to rounding
(``tests/test_optimizers.py`` holds them to it, bit for bit on a CPU). Betas and eps are torch's defaults,
shared by all members; the step count is shared too (all members of a program take the same steps).

The update writes into buffers made once per parameter (no full-size temporary a step): Adam makes 7 passes
over a parameter where every member has the same learning rate (torch.optim's own: ``addcdiv_`` with the step
size as a scalar) and 8 where they differ (the step size times the first moment into a buffer, then
``addcdiv_`` of it with value -1: -(a / d) = (-a) / d exactly, so the same bits as ``p - a / d``).
"""

from __future__ import annotations

import torch

from ..errors import check_choice
from .grid import OPTIMIZERS

BETAS = (0.9, 0.999)  # torch.optim.Adam's and AdamW's defaults
EPS = 1e-8


class StackedOptimizer:
    """One optimizer over stacked parameters with per-member settings.

    ``params``: {name: tensor} updated in place. ``lr``, ``momentum``, ``weight_decay``: {name: float64 tensor}
    of per-member values shaped to broadcast against ``params[name]`` (e.g. (S, M, 1, 1) for an (S, M, K, H)
    weight). ``optimizer``: ``"sgd"`` (momentum, weight decay added to the gradient), ``"adam"`` (weight decay
    added to the gradient) or ``"adamw"`` (decoupled weight decay).
    """

    def __init__(self, params: dict[str, torch.Tensor], optimizer: str, *, lr: dict, momentum: dict,
                 weight_decay: dict):
        check_choice(optimizer, OPTIMIZERS, "optimizer")
        self.params, self.optimizer, self.steps = params, optimizer, 0
        dtype = {name: p.dtype for name, p in params.items()}
        self.decay = {n: v.to(dtype[n]) for n, v in weight_decay.items() if bool((v != 0).any())}
        if optimizer == "sgd":
            self.lr = {n: v.to(dtype[n]) for n, v in lr.items()}
            self.momentum = {n: v.to(dtype[n]) for n, v in momentum.items() if bool((v != 0).any())}
            self.buffers: dict[str, torch.Tensor] = {}
        else:
            self.lr64 = lr  # the step size lr / (1 - beta1^t) is made in float64 each step, as torch does
            self.shrink = {n: (1 - lr[n] * v).to(dtype[n]) for n, v in weight_decay.items()
                           if optimizer == "adamw" and bool((v != 0).any())}
            self.exp_avg = {n: torch.zeros_like(p) for n, p in params.items()}
            self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in params.items()}
            # a learning rate that every member shares is applied as torch.optim applies it, a Python float
            self.uniform_lr = {n: float(v.reshape(-1)[0]) for n, v in lr.items()
                               if v.numel() and bool((v == v.reshape(-1)[0]).all())}
        self.work: dict[tuple[str, int], torch.Tensor] = {}  # full-size buffers, made at the first step

    @torch.no_grad()
    def step(self, grads: dict[str, torch.Tensor]) -> None:
        """Update every parameter from its gradient ``grads[name]`` (same shape)."""
        self.steps += 1
        for name, p in self.params.items():
            grad = grads[name]
            if self.optimizer == "sgd":
                self._sgd(name, p, grad)
            else:
                self._adam(name, p, grad)

    def _buffer(self, name: str, p: torch.Tensor, i: int) -> torch.Tensor:
        """Work buffer ``i`` of parameter ``name`` (shaped like ``p``), made once."""
        buf = self.work.get((name, i))
        if buf is None:
            buf = self.work[(name, i)] = torch.empty_like(p)
        return buf

    def _sgd(self, name, p, grad):
        if name in self.decay:
            grad = torch.addcmul(grad, p, self.decay[name], out=self._buffer(name, p, 0))
        if name in self.momentum:
            buf = self.buffers.get(name)
            if buf is None:
                buf = self.buffers[name] = grad.clone()
            else:
                buf.mul_(self.momentum[name]).add_(grad)
            grad = buf
        p.addcmul_(grad, self.lr[name], value=-1)

    def _adam(self, name, p, grad):
        beta1, beta2 = BETAS
        if name in self.shrink:
            p.mul_(self.shrink[name])
        elif name in self.decay:
            grad = torch.addcmul(grad, p, self.decay[name], out=self._buffer(name, p, 0))
        exp_avg, exp_avg_sq = self.exp_avg[name], self.exp_avg_sq[name]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = torch.sqrt(exp_avg_sq, out=self._buffer(name, p, 1)).div_((1 - beta2 ** self.steps) ** 0.5).add_(EPS)
        if name in self.uniform_lr:  # torch.optim's own last line
            p.addcdiv_(exp_avg, denom, value=-(self.uniform_lr[name] / (1 - beta1 ** self.steps)))
        else:
            step_size = (self.lr64[name] / (1 - beta1 ** self.steps)).to(p.dtype)  # buffer 0: grad is used up
            p.addcdiv_(torch.mul(exp_avg, step_size, out=self._buffer(name, p, 0)), denom, value=-1)

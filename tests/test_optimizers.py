"""The stacked optimizer updates each member as its own torch.optim would, member settings differing."""

import pytest
import torch

from underspec.training.model import optimizer_for
from underspec.training.optimizers import StackedOptimizer

S, M = 2, 3  # streams x members, every member with its own settings


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_each_member_is_updated_as_torch_optim_updates_it_alone(optimizer, dtype):
    g = torch.Generator().manual_seed(0)
    shapes = {"w": (5, 4), "b": (5,)}
    params = {n: torch.randn(S, M, *shape, generator=g, dtype=dtype) for n, shape in shapes.items()}
    lr = torch.tensor([[0.01, 0.1, 0.003], [0.05, 0.02, 0.3]], dtype=torch.float64)
    momentum = torch.tensor([[0.0, 0.9, 0.5], [0.99, 0.0, 0.3]], dtype=torch.float64) * (optimizer == "sgd")
    decay = torch.tensor([[0.0, 0.01, 0.1], [0.001, 0.0, 0.5]], dtype=torch.float64)

    def per_param(values):  # (S, M) -> broadcast against each parameter
        return {n: values.view(S, M, *[1] * len(shape)) for n, shape in shapes.items()}

    stacked = StackedOptimizer(params, optimizer, lr=per_param(lr), momentum=per_param(momentum),
                               weight_decay=per_param(decay))
    alone = {(s, m): {n: p[s, m].clone() for n, p in params.items()} for s in range(S) for m in range(M)}
    torch_optims = {key: optimizer_for(list(p.values()), optimizer, lr[key].item(), momentum[key].item(),
                                       decay[key].item()) for key, p in alone.items()}
    for _ in range(6):
        grads = {n: torch.randn(p.shape, generator=g, dtype=dtype) for n, p in params.items()}
        stacked.step(grads)
        for key, own in alone.items():
            for n, p in own.items():
                p.grad = grads[n][key].clone()
            torch_optims[key].step()
    for key, own in alone.items():
        for n, p in own.items():
            assert torch.equal(params[n][key], p), (optimizer, key, n, (params[n][key] - p).abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_a_learning_rate_shared_by_every_member_updates_each_as_torch_optim(optimizer, dtype):
    """Adam's update where every member has the same learning rate (torch.optim's scalar step size) is torch.optim's
    bit for bit too, weight decays differing or not, gradients reused as the engine reuses its buffers."""
    g = torch.Generator().manual_seed(1)
    params = {"w": torch.randn(S, M, 7, 3, generator=g, dtype=dtype), "b": torch.randn(S, M, 7, generator=g, dtype=dtype)}
    lr = torch.full((S, M), 0.003, dtype=torch.float64)
    decay = {"w": torch.tensor([[0.0, 0.01, 0.1], [0.001, 0.0, 0.5]], dtype=torch.float64),
             "b": torch.zeros(S, M, dtype=torch.float64)}

    def shaped(values, n):
        return values.view(S, M, *[1] * (params[n].dim() - 2))

    stacked = StackedOptimizer(params, optimizer, lr={n: shaped(lr, n) for n in params},
                               momentum={n: shaped(torch.zeros(S, M, dtype=torch.float64), n) for n in params},
                               weight_decay={n: shaped(decay[n], n) for n in params})
    assert set(stacked.uniform_lr) == {"w", "b"}
    alone = {(s, m): {n: p[s, m].clone() for n, p in params.items()} for s in range(S) for m in range(M)}
    torch_optims = {key: {n: optimizer_for([p], optimizer, 0.003, 0.0, decay[n][key].item()) for n, p in own.items()}
                    for key, own in alone.items()}
    grads = {n: torch.empty_like(p) for n, p in params.items()}
    for _ in range(5):
        for n, grad in grads.items():
            grad.copy_(torch.randn(grad.shape, generator=g, dtype=dtype))
        stacked.step(grads)
        for key, own in alone.items():
            for n, p in own.items():
                p.grad = grads[n][key].clone()
                torch_optims[key][n].step()
    for key, own in alone.items():
        for n, p in own.items():
            assert torch.equal(params[n][key], p), (optimizer, key, n, (params[n][key] - p).abs().max().item())

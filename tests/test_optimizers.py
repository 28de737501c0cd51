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

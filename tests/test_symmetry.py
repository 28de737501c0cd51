"""The hidden-unit permutation symmetry: permute_hidden keeps the function, and only the full map does."""

import pytest
import torch

import underspec

from underspec import Grid, UnderspecError, forward, permute_hidden, train


@pytest.fixture(scope="module")
def net(small):
    return train(Grid(seeds=(0,), epochs=2), small, dtype=torch.float64, progress=False).member(0, 0.0, 10).final


def test_permuted_network_computes_the_same_function(net, small):
    x = small.x_test.double()
    perms = torch.stack([torch.randperm(16, generator=torch.Generator().manual_seed(s)) for s in range(5)])
    permuted = permute_hidden(net, perms)  # one permutation per copy: w1 (5, 16, 784)
    assert permuted["w1"].shape == (5, 16, 784) and permuted["w2"].shape == (5, 10, 16)
    torch.testing.assert_close(forward(permuted, x), forward(net, x).expand(5, -1, -1), rtol=0, atol=1e-12)
    assert not torch.equal(permuted["w1"][0], net["w1"])  # the units really moved
    torch.testing.assert_close(permuted["w1"][2], net["w1"][perms[2]], rtol=0, atol=0)
    torch.testing.assert_close(permuted["w2"][2], net["w2"][:, perms[2]], rtol=0, atol=0)


def test_permuting_the_first_layer_alone_changes_the_function(net, small):
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    half = dict(net, w1=net["w1"][perm], b1=net["b1"][perm])
    assert (forward(half, small.x_test.double()) - forward(net, small.x_test.double())).abs().max() > 1e-2


def test_inverse_permutation_restores_the_network(net):
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(2))
    back = permute_hidden(permute_hidden(net, perm), perm.argsort())
    for k in net:
        assert torch.equal(back[k], net[k])


def test_a_stack_of_networks_takes_one_permutation_each(net):
    stack = {k: torch.stack([v, 2 * v]) for k, v in net.items()}
    perms = torch.stack([torch.arange(16).flip(0), torch.roll(torch.arange(16), 3)])
    out = permute_hidden(stack, perms)
    for i in range(2):
        single = permute_hidden({k: v[i] for k, v in stack.items()}, perms[i])
        for k in net:
            assert torch.equal(out[k][i], single[k])


@pytest.mark.parametrize("perm, message", [
    (torch.tensor([0] * 16), "not a permutation"),
    (torch.arange(15), r"shape \(\.\.\., 16\)"),
    (torch.arange(16).double(), "integers"),
])
def test_bad_permutations_are_refused(net, perm, message):
    with pytest.raises(UnderspecError, match=message):
        permute_hidden(net, perm)


def test_missing_parameters_are_named(net):
    with pytest.raises(UnderspecError, match="missing.*b2"):
        permute_hidden({k: v for k, v in net.items() if k != "b2"}, torch.arange(16))


def deep_forward(params, x):
    """A depth-2 MLP written out: x (N, D) -> logits (N, C)."""
    h1 = torch.relu(x @ params["w1"].T + params["b1"])
    h2 = torch.relu(h1 @ params["w2"].T + params["b2"])
    return h2 @ params["w3"].T + params["b3"]


def deep_params(seed, d=20, h1=8, h2=6, c=4):
    g = torch.Generator().manual_seed(seed)
    shapes = {"w1": (h1, d), "b1": (h1,), "w2": (h2, h1), "b2": (h2,), "w3": (c, h2), "b3": (c,)}
    return {k: torch.randn(*s, generator=g, dtype=torch.float64) for k, s in shapes.items()}


def test_the_permutation_spec_moves_every_hidden_layer_of_a_deeper_network():
    from underspec.training.model import permutation_spec

    spec = permutation_spec(2)
    assert spec == {"h1": (("w1", -2), ("b1", -1), ("w2", -1)), "h2": (("w2", -2), ("b2", -1), ("w3", -1))}
    a = deep_params(0)
    perms = {"h1": torch.randperm(8, generator=torch.Generator().manual_seed(1)),
             "h2": torch.randperm(6, generator=torch.Generator().manual_seed(2))}
    b = underspec.permute(a, perms, spec)
    x = torch.randn(30, 20, dtype=torch.float64)
    torch.testing.assert_close(deep_forward(b, x), deep_forward(a, x), rtol=0, atol=1e-12)
    assert torch.equal(b["w1"], a["w1"][perms["h1"]])
    assert torch.equal(b["w2"], a["w2"][perms["h2"]][:, perms["h1"]])
    assert torch.equal(b["w3"], a["w3"][:, perms["h2"]])
    assert torch.equal(b["b3"], a["b3"])


def test_weight_matching_recovers_the_permutation_of_every_layer():
    from underspec.training.model import permutation_spec

    spec = permutation_spec(2)
    a = deep_params(3)
    perms = {"h1": torch.randperm(8, generator=torch.Generator().manual_seed(4)),
             "h2": torch.randperm(6, generator=torch.Generator().manual_seed(5))}
    b = underspec.permute(a, perms, spec)
    found = underspec.weight_matching(a, b, spec=spec)
    for layer, perm in perms.items():  # b's unit found[i] is a's unit i: the inverse permutation
        assert torch.equal(found[layer], torch.argsort(perm)), layer
    aligned = underspec.permute(b, found, spec)
    for k in a:
        assert torch.equal(aligned[k], a[k])

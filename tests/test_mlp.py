"""The notebook's network: Keras's initialisation, and a fused step that equals autograd's."""

from __future__ import annotations

import torch

from movierec.models.mlp import MLP, MLPConfig


def _plain_forward(net: MLP, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    x = torch.cat([net.user_emb(users), net.item_emb(items)], dim=1)
    return net.out(torch.relu(net.hidden(x))).squeeze(1)


def test_fused_layers_match_autograd_values_and_gradients():
    net = MLP(50, 40, MLPConfig(dim=6, hidden=32), torch.Generator().manual_seed(1))
    with torch.no_grad():
        net.hidden.bias.uniform_(-0.5, 0.5)  # non-zero biases, so their gradient path is checked
    users, items = torch.randint(0, 50, (64,)), torch.randint(0, 40, (64,))
    target = torch.randn(64)
    grads = []
    for forward in (net.forward, lambda u, i: _plain_forward(net, u, i)):
        net.zero_grad()
        pred = forward(users, items)
        torch.nn.functional.mse_loss(pred, target).backward()
        grads.append({n: p.grad.to_dense().clone() for n, p in net.named_parameters()})
        grads[-1]["pred"] = pred.detach()
    for name, value in grads[0].items():
        torch.testing.assert_close(value, grads[1][name], rtol=1e-5, atol=1e-6, msg=name)


def test_initialisation_follows_keras_defaults():
    net = MLP(1000, 800, MLPConfig(), torch.Generator().manual_seed(0))
    for emb in (net.user_emb.weight, net.item_emb.weight):
        assert emb.abs().max() <= 0.05 and emb.abs().max() > 0.049
    limit = (6 / (20 + 1024)) ** 0.5
    assert net.hidden.weight.abs().max() <= limit and net.hidden.weight.abs().max() > 0.99 * limit
    assert torch.count_nonzero(net.hidden.bias) == 0 and torch.count_nonzero(net.out.bias) == 0

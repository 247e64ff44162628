"""The notebook's network: Keras's initialisation, and a fused step that equals autograd's."""

from __future__ import annotations

import numpy as np
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


def test_fold_in_recovers_a_known_users_taste(small):
    from movierec import fitting, pipeline
    from movierec.training import TrainConfig

    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=2))
    config = TrainConfig(epochs=8, batch_size=256, lr=0.05, momentum=0.9, device="cpu")
    recommender, _ = fitting.fit(parts.fit, None, "mlp", train_config=config)
    net = recommender.rater
    counts = np.bincount(parts.fit.user_idx, minlength=parts.fit.n_users)
    user = int(np.argmax(counts))  # the most active user: enough ratings to pin them down
    rows = parts.fit.user_idx == user
    items = torch.from_numpy(parts.fit.item_idx[rows].astype(np.int64))
    target = torch.from_numpy(parts.fit.rating[rows] - np.float32(recommender.global_mean))
    scorer = net.fold_in(items, target)
    folded = scorer(items)
    rmse_folded = float(torch.sqrt(torch.mean((folded - target) ** 2)))
    rmse_zero = float(torch.sqrt(torch.mean(target**2)))
    assert rmse_folded < 0.8 * rmse_zero
    # The folded user scores like the trained one: their predictions correlate strongly.
    with torch.no_grad():
        trained = net(torch.full_like(items, user), items)
    assert float(torch.corrcoef(torch.stack([folded, trained]))[0, 1]) > 0.8


def test_the_fold_in_prior_follows_the_user_table():
    # Cached per version of the table: a change to the embeddings (training, a load) must show.
    net = MLP(50, 20, MLPConfig(dim=4, hidden=8), torch.Generator().manual_seed(0))
    mean, var = net.user_prior()
    torch.testing.assert_close(mean, net.user_emb.weight.detach().mean(0))
    assert net.user_prior()[0] is mean  # the same request path reuses it
    with torch.no_grad():
        net.user_emb.weight.add_(1.0)
    moved, _ = net.user_prior()
    torch.testing.assert_close(moved, mean + 1.0)
    net.load_state_dict({k: v * 0 for k, v in net.state_dict().items()})
    torch.testing.assert_close(net.user_prior()[0], torch.zeros(4))


def test_the_gauss_newton_fold_in_reaches_the_minimum_of_its_loss():
    from movierec.models.mlp import PRIOR_NOISE

    net = MLP(40, 30, MLPConfig(dim=6, hidden=64), torch.Generator().manual_seed(3))
    with torch.no_grad():  # weights the size training leaves, so a user's vector matters
        for table in (net.user_emb.weight, net.item_emb.weight):
            table.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(4))
        net.out.weight.mul_(10.0)
    items = torch.tensor([1, 4, 9, 16, 25])
    target = torch.tensor([1.0, -0.5, 0.8, -1.2, 0.3])
    mean, var = net.user_prior()
    params = [p.detach() for p in (net.hidden.weight, net.hidden.bias, net.out.weight, net.out.bias)]
    emb = net.item_emb(items).detach()

    def loss_of(u: torch.Tensor) -> torch.Tensor:
        w, b, w_out, b_out = params
        pred = torch.relu(u @ w[:, :6].T + b + emb @ w[:, 6:].T) @ w_out[0] + b_out[0]
        return torch.sum((pred - target) ** 2) + PRIOR_NOISE * torch.sum((u - mean) ** 2 / var)

    # The reference: a long L-BFGS run on the same loss, by autograd.
    u = mean.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [u], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = loss_of(u)
        value.backward()
        return value

    with torch.enable_grad():
        opt.step(closure)
    reference, at_mean = float(loss_of(u.detach())), float(loss_of(mean))
    folded = net.fold_in_user(items, target)
    assert reference < 0.9 * at_mean  # the fit moves well off the prior: the check below can fail
    # Within 0.1%: this minimum lies on a kink between ReLU pieces, where Gauss-Newton stops a
    # hair above it (3e-4 here), and where L-BFGS ends depends on the torch thread count.
    assert float(loss_of(folded)) <= reference * (1 + 1e-3)
    # The scorer predicts from that vector; a float64 target is the same fit; no ratings: the prior mean.
    torch.testing.assert_close(net.fold_in(items, target)(items), net.fold_in(items, target.double())(items))
    torch.testing.assert_close(net.fold_in_user(items[:0], target[:0]), mean)


def test_the_fold_in_stops_once_the_loss_stops_falling(monkeypatch):
    # At a kink between ReLU pieces the damped steps gain only rounding; they once ran all
    # FOLD_IN_STEPS (about 60 solves for one user in five of a freshly built net's).
    net = MLP(200, 300, MLPConfig(dim=8, hidden=256), torch.Generator().manual_seed(3))
    solves, solve = [], torch.linalg.solve
    monkeypatch.setattr(torch.linalg, "solve", lambda a, b: solves.append(1) or solve(a, b))
    g = torch.Generator().manual_seed(5)
    most = 0
    for _ in range(100):
        solves.clear()
        net.fold_in_user(torch.randperm(300, generator=g)[:5], torch.randn(5, generator=g))
        most = max(most, len(solves))
    assert most <= 12

"""The original notebook's network: user and item embeddings into a 1024-unit ReLU layer.

Initialised as Keras initialised it (embeddings uniform in +-0.05, Glorot-uniform dense
weights, zero biases). Embedding gradients are sparse, so the optimiser can update only
the rows of each batch, momentum included, as TensorFlow 2.0's Keras SGD did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from movierec.models.base import ModelSpec, RatingModel


@dataclass(frozen=True)
class MLPConfig:
    """Shape of the notebook's network."""

    dim: int = 10
    """Size of each user and item embedding (the notebook's K)."""
    hidden: int = 1024
    """Units of the ReLU layer between the concatenated embeddings and the output."""


class _HiddenAndOut(torch.autograd.Function):
    """``relu(x @ w1.T + b1) @ w2 + b2`` with a hand-written, memory-lean backward.

    The same arithmetic as autograd's, arranged for the CPU (measured in bench/NOTES.md):
    the hidden layer's gradient is built in the storage of its activations, the ReLU
    mask is never materialised, and both backward products read that gradient in its
    stored order (a transposed 1024 x 1024 operand makes MKL's product twice as slow).
    """

    @staticmethod
    def forward(ctx, x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:  # type: ignore[override]
        # The bias rides in the product as a column of ones: addmm's broadcast copy of the
        # bias into the output costs more than the product itself.
        ones = torch.ones(len(x), 1, dtype=x.dtype, device=x.device)
        h = torch.mm(torch.cat([x, ones], dim=1), torch.cat([w1, b1[:, None]], dim=1).t()).clamp_min_(0)
        ctx.save_for_backward(x, w1, w2, h)
        return torch.addmv(b2, h, w2)

    @staticmethod
    def backward(ctx, d_out: Tensor):  # type: ignore[override]
        x, w1, w2, h = ctx.saved_tensors
        d_w2 = torch.mv(h.t(), d_out)
        d_b2 = d_out.sum().reshape(1)
        # d_h = 1[h > 0] * outer(d_out, w2); sign() of a ReLU output is exactly that mask.
        d_h = h.sign_().mul_(d_out[:, None]).mul_(w2[None, :])
        d_w1 = torch.mm(x.t(), d_h).t()
        return torch.mm(d_h, w1), d_w1, d_h.sum(0), d_w2, d_b2


class MLP(RatingModel):
    """concat(user_emb, item_emb) -> Dense(hidden, relu) -> Dense(1)."""

    def __init__(self, n_users: int, n_items: int, config: MLPConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user_emb = nn.Embedding(n_users, config.dim, sparse=True)
        self.item_emb = nn.Embedding(n_items, config.dim, sparse=True)
        self.hidden = nn.Linear(2 * config.dim, config.hidden)
        self.out = nn.Linear(config.hidden, 1)
        self._prior: tuple[tuple[int, int], tuple[Tensor, Tensor]] | None = None
        with torch.no_grad():
            for emb in (self.user_emb, self.item_emb):
                emb.weight.uniform_(-0.05, 0.05, generator=generator)
            for dense in (self.hidden, self.out):
                # Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
                limit = (6.0 / (dense.in_features + dense.out_features)) ** 0.5
                dense.weight.uniform_(-limit, limit, generator=generator)
                dense.bias.zero_()

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        x = torch.cat([self.user_emb(user_idx), self.item_emb(item_idx)], dim=1)
        return _HiddenAndOut.apply(x, self.hidden.weight, self.hidden.bias, self.out.weight[0], self.out.bias)

    def score(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        # The first layer splits into a user part and an item part, so each side is
        # projected once and only the ReLU and output run on every pair.
        d = self.user_emb.embedding_dim
        w = self.hidden.weight
        hu = self.user_emb(user_idx) @ w[:, :d].T + self.hidden.bias
        hi = self.item_emb(item_idx) @ w[:, d:].T
        h = torch.relu(hu[:, None, :] + hi[None, :, :])
        return (h @ self.out.weight[0]) + self.out.bias[0]

    def item_vectors(self) -> Tensor:
        return self.item_emb.weight.detach()

    def user_prior(self) -> tuple[Tensor, Tensor]:
        """Mean and variance of the user embeddings: computed once per version of the table.

        Each new user's fold-in needs them; over ML-20M's 138,493 users they took 7.4 of
        the 10.5 ms a fold-in cost (measured), so a served request reuses them.
        """
        table = self.user_emb.weight
        key = (table.data_ptr(), table._version)
        if self._prior is None or self._prior[0] != key:
            users = table.detach()
            self._prior = (key, (users.mean(0), users.var(0).clamp_min(1e-6)))
        return self._prior[1]

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor]:
        """Fit a new user's embedding to their centred ratings, the network frozen (L-BFGS).

        A Gaussian prior centred on the mean user embedding, scaled by the embeddings'
        spread, keeps a user with two or three ratings near the average user rather than
        at a vector that fits those ratings exactly.
        """
        mean, var = self.user_prior()
        items = self.item_emb(item_idx).detach()
        params = [self.hidden.weight, self.hidden.bias, self.out.weight, self.out.bias]
        u = mean.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([u], lr=1.0, max_iter=50, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            x = torch.cat([u.expand(len(items), -1), items], dim=1)
            pred = self.out(torch.relu(self.hidden(x))).squeeze(1)
            loss = torch.sum((pred - target) ** 2) + PRIOR_NOISE * torch.sum((u - mean) ** 2 / var)
            loss.backward()
            return loss

        frozen = [p.requires_grad for p in params]
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(False)
            try:
                opt.step(closure)
            finally:
                for p, flag in zip(params, frozen, strict=True):
                    p.requires_grad_(flag)
        user = u.detach()
        d = self.user_emb.embedding_dim

        @torch.no_grad()
        def scorer(item_idx: Tensor) -> Tensor:
            w = self.hidden.weight
            h = torch.relu(user @ w[:, :d].T + self.hidden.bias + self.item_emb(item_idx) @ w[:, d:].T)
            return h @ self.out.weight[0] + self.out.bias[0]

        return scorer


PRIOR_NOISE = 0.8
"""Assumed variance of a rating around the model's prediction, weighing the fold-in prior."""


def _build(config: MLPConfig, n_users: int, n_items: int, generator: torch.Generator) -> MLP:
    return MLP(n_users, n_items, config, generator)


def _space(trial) -> tuple[dict, dict]:  # noqa: ANN001
    """What ``movierec tune`` searches: a trial -> (config fields, training settings)."""
    model = {
        "dim": trial.suggest_int("dim", 8, 64, log=True),
        "hidden": trial.suggest_int("hidden", 64, 1024, log=True),
    }
    train = {
        "lr": trial.suggest_float("lr", 1e-3, 0.2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-7, 1e-3, log=True),
        "patience": 3,
    }
    return model, train


SPEC = ModelSpec(
    name="mlp",
    summary="the original notebook's network: embeddings (K=10) -> Dense 1024 ReLU -> Dense 1, SGD+momentum",
    config_type=MLPConfig,
    build=_build,
    training={"epochs": 25, "batch_size": 1024, "optimizer": "sgd", "lr": 0.08, "momentum": 0.9, "patience": None},
    space=_space,
)

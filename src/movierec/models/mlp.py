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
from movierec.models.space import Floats, Ints, Space


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
        """A new user's scorer, from the embedding ``fold_in_user`` fits to their centred ratings."""
        user, d = self.fold_in_user(item_idx, target), self.user_emb.embedding_dim
        w = self.hidden.weight
        with torch.no_grad():
            user_share = user @ w[:, :d].T + self.hidden.bias  # the same for every item scored

        @torch.no_grad()
        def scorer(item_idx: Tensor) -> Tensor:
            h = torch.relu(user_share + self.item_emb(item_idx) @ w[:, d:].T)
            return h @ self.out.weight[0] + self.out.bias[0]

        return scorer

    def fold_in_user(self, item_idx: Tensor, target: Tensor) -> Tensor:
        """Fit a new user's embedding to their centred ratings, the network frozen (Gauss-Newton).

        A Gaussian prior centred on the mean user embedding, scaled by the embeddings'
        spread, keeps a user with two or three ratings near the average user rather than
        at a vector that fits those ratings exactly. The network is piecewise linear in the
        user's embedding (ReLU), so the loss is quadratic wherever the hidden units' on/off
        pattern holds and each Gauss-Newton step lands on that piece's minimum: a few steps
        reach what L-BFGS reached, at a fifth of its cost (bench/NOTES.md). The loss:
        ``sum (pred - target)^2 + PRIOR_NOISE * sum (u - mean)^2 / var``.
        """
        mean, var = self.user_prior()
        d = self.user_emb.embedding_dim
        with torch.no_grad():
            w = self.hidden.weight
            w_user, w_out, b_out = w[:, :d], self.out.weight[0], self.out.bias[0]
            fixed = self.item_emb(item_idx) @ w[:, d:].T + self.hidden.bias  # (n, hidden): the items' share
            prior = PRIOR_NOISE / var
            target = target.to(w.dtype)

            def at(u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
                h = fixed + u @ w_user.T
                resid = torch.relu(h) @ w_out + b_out - target
                return resid @ resid + torch.sum(prior * (u - mean) ** 2), h, resid

            user = mean.clone()
            loss, h, resid = at(user)
            damping = 0.0  # Levenberg-Marquardt: raised while a step would cross into a worse piece
            for _ in range(FOLD_IN_STEPS):
                jac = ((h > 0) * w_out) @ w_user  # (n, d): each prediction's gradient in the embedding
                hess, grad = jac.T @ jac + torch.diag(prior), jac.T @ resid + prior * (user - mean)
                while True:
                    tried = user - torch.linalg.solve(hess + damping * torch.diag(hess.diagonal()), grad)
                    new_loss, new_h, new_resid = at(tried)
                    # An undamped step that loses by rounding alone has landed on the minimum.
                    if new_loss <= loss or damping > 1e6 or (damping == 0.0 and new_loss <= loss * (1 + ROUNDING)):
                        break
                    damping = max(10.0 * damping, 1e-3)
                if not new_loss <= loss:  # NaN too: keep the last good vector
                    break
                # A gain this small ends the fit, damped or not: a heavily damped step that gains
                # no more is creeping along a kink between pieces, where the minimum lies.
                done = float(loss - new_loss) <= ROUNDING * float(loss)
                # Damping falls back to none once a few steps have gone well: else it never ends.
                damping = damping / 10.0 if damping >= 1e-5 else 0.0
                user, loss, h, resid = tried, new_loss, new_h, new_resid
                if done:
                    break
        return user


FOLD_IN_STEPS = 30
"""At most this many Gauss-Newton steps per fold-in; most stop after two to four."""
ROUNDING = 1e-6
"""Relative change in the fold-in's loss below which float32 rounding, not the step, decides it."""
PRIOR_NOISE = 0.8
"""Assumed variance of a rating around the model's prediction, weighing the fold-in prior."""


def _build(config: MLPConfig, n_users: int, n_items: int, generator: torch.Generator) -> MLP:
    return MLP(n_users, n_items, config, generator)


_SPACE = Space(
    model={"dim": Ints(8, 64, log=True), "hidden": Ints(64, 1024, log=True)},
    train={"lr": Floats(1e-3, 0.2, log=True), "weight_decay": Floats(1e-7, 1e-3, log=True), "patience": 3},
)
"""What ``movierec tune`` searches."""


SPEC = ModelSpec(
    name="mlp",
    summary="the original notebook's network: embeddings (K=10) -> Dense 1024 ReLU -> Dense 1, SGD+momentum",
    config_type=MLPConfig,
    build=_build,
    training={"epochs": 25, "batch_size": 1024, "optimizer": "sgd", "lr": 0.08, "momentum": 0.9, "patience": None},
    space=_SPACE,
)

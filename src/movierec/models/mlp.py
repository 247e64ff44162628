"""The original notebook's network: user and item embeddings into a 1024-unit ReLU layer.

Initialised as Keras initialised it (embeddings uniform in +-0.05, Glorot-uniform dense
weights, zero biases). Embedding gradients are sparse, so the optimiser can update only
the rows of each batch, momentum included, as TensorFlow 2.0's Keras SGD did.
"""

from __future__ import annotations

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


class MLP(RatingModel):
    """concat(user_emb, item_emb) -> Dense(hidden, relu) -> Dense(1)."""

    def __init__(self, n_users: int, n_items: int, config: MLPConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user_emb = nn.Embedding(n_users, config.dim, sparse=True)
        self.item_emb = nn.Embedding(n_items, config.dim, sparse=True)
        self.hidden = nn.Linear(2 * config.dim, config.hidden)
        self.out = nn.Linear(config.hidden, 1)
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
        return self.out(torch.relu(self.hidden(x))).squeeze(1)

    def score(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        # The first layer splits into a user part and an item part, so each side is
        # projected once and only the ReLU and output run on every pair.
        d = self.user_emb.embedding_dim
        w = self.hidden.weight
        hu = self.user_emb(user_idx) @ w[:, :d].T + self.hidden.bias
        hi = self.item_emb(item_idx) @ w[:, d:].T
        h = torch.relu(hu[:, None, :] + hi[None, :, :])
        return (h @ self.out.weight[0]) + self.out.bias[0]


def _build(config: MLPConfig, n_users: int, n_items: int, generator: torch.Generator) -> MLP:
    return MLP(n_users, n_items, config, generator)


SPEC = ModelSpec(
    name="mlp",
    summary="the original notebook's network: embeddings (K=10) -> Dense 1024 ReLU -> Dense 1, SGD+momentum",
    config_type=MLPConfig,
    build=_build,
    training={"epochs": 25, "batch_size": 1024, "optimizer": "sgd", "lr": 0.08, "momentum": 0.9, "patience": None},
)

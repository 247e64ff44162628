"""Two rankers that need no training of their own: most popular, and by predicted rating.

``popular`` scores an item by ``clip(mu + b_i) * log(1 + n_i)``: its damped mean rating
(the training mean plus its regularised bias, which shrinks an item with few ratings
toward the mean) times the log of how many rated it, so the list holds items both well
rated and widely seen. It is also the list a user with no ratings gets.

``RatingRanker`` lists by a rater's predicted rating, as every list was made before
movierec had rankers; kept so that evaluation can show what that costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from movierec.models.base import Ranker, RankerData, RatingModel, Sweeps, UserRows, ranker_spec
from movierec.models.baseline import fit_biases


def popularity(
    global_mean: float, item_bias: np.ndarray, item_counts: np.ndarray, scale: tuple[float, float], floor: float = 0.0
) -> np.ndarray:
    """float64 (n_items,): (clip(mu + b_i) - floor) * log(1 + n_i), the ``popular`` score (0 for unrated items).

    ``floor`` is where a rating would weigh nothing (``Ratings.rating_floor``: 0 on MovieLens's
    scales), so the list is the same whatever number the scale starts at.
    """
    damped = np.clip(global_mean + item_bias.astype(np.float64), *scale) - floor
    return damped * np.log1p(item_counts)


@dataclass(frozen=True)
class PopularConfig:
    """Nothing to set: the score is fixed (see the module docstring)."""


class Popular(Ranker):
    """The same list for everyone: ``item_score`` (n_items,)."""

    item_score: Tensor

    def __init__(self, n_items: int) -> None:
        super().__init__(n_items, "binary")
        self.register_buffer("item_score", torch.zeros(n_items))

    def score(self, rows: UserRows) -> Tensor:
        return self.item_score.expand(rows.n_rows, -1).clone()


class _Sweeps(Sweeps):
    """One pass: every item's damped mean and count."""

    planned = 1

    def __init__(self, model: Popular, config: PopularConfig, data: RankerData) -> None:
        self.model, self.data = model, data

    @torch.no_grad()
    def sweep(self, epoch: int) -> None:
        data, model = self.data, self.model
        u, i = data.user_idx.cpu().numpy(), data.item_idx.cpu().numpy()
        r = data.rating.cpu().numpy().astype(np.float64)
        mean = float(r.mean()) if len(r) else 0.0
        _, b_i = fit_biases(u, i, r - mean, data.n_users, model.n_items)
        counts = np.bincount(i, minlength=model.n_items)
        scale = (float(r.min()), float(r.max())) if len(r) else (0.0, 1.0)
        model.rating_max.fill_(data.rating_max)  # unused by the score; kept above the floor, as every ranker's
        model.rating_floor.fill_(data.rating_floor)
        score = popularity(mean, b_i, counts, scale, data.rating_floor)
        model.item_score.copy_(torch.from_numpy(score).float())


SPEC = ranker_spec(
    name="popular",
    summary="the same list for everyone: damped mean rating x log(1 + number of ratings)",
    config_type=PopularConfig,
    build=lambda config, n_users, n_items, generator: Popular(n_items),
    sweeps=_Sweeps,
)


PAIRS_PER_CALL = 1 << 15
"""Most (user, item) pairs per ``rater.score`` call: 128 MB of hidden units for the MLP."""


class RatingRanker(Ranker):
    """Lists by a rater's predicted (centred) rating; items no one rated by the bias fallback.

    Known users only (``rows.users``); a row without a user is scored by item bias alone.
    """

    user_bias: Tensor
    item_bias: Tensor
    cold_items: Tensor

    def __init__(self, rater: RatingModel, user_bias: Tensor, item_bias: Tensor, cold_items: Tensor) -> None:
        super().__init__(rater.n_items, "binary")
        self.rater = rater
        self.register_buffer("user_bias", user_bias.float())
        self.register_buffer("item_bias", item_bias.float())
        self.register_buffer("cold_items", cold_items.to(torch.int64))

    @torch.no_grad()
    def score(self, rows: UserRows) -> Tensor:
        items = torch.arange(self.n_items, device=self.item_bias.device)
        if rows.users is None:
            return self.item_bias.expand(rows.n_rows, -1).clone()
        self.rater.eval()
        # Bounded pairs per call: the notebook's network holds a 1024-unit layer per pair.
        step = max(1, PAIRS_PER_CALL // rows.n_rows)
        out = torch.cat([self.rater.score(rows.users, items[s : s + step]) for s in range(0, self.n_items, step)], 1)
        out[:, self.cold_items] = self.user_bias[rows.users][:, None] + self.item_bias[self.cold_items][None, :]
        return out

"""MovieLens-shaped ratings from a known model, so the best possible RMSE is known.

Each rating is ``round_half(clip(mu + b_u + b_i + p_u . q_i + noise, 0.5, 5))``: a
low-rank model with biases plus Gaussian noise, rounded to half stars as MovieLens
ratings are. User activity and item popularity are skewed (log-normal and Zipf), as in
the real logs. Because the generator knows each rating's distribution, it reports the
noise floor: the test RMSE of the best predictor there is, E[rating | user, item].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.ratings import Ratings
from movierec.errors import ConfigError

STARS = np.arange(0.5, 5.01, 0.5)
"""The ten half-star values a rating can take."""


@dataclass(frozen=True)
class SyntheticConfig:
    """How big and how noisy the synthetic log is."""

    n_users: int = 3000
    """Number of users (each rates at least one item)."""
    n_items: int = 2000
    """Number of items in the catalogue (the least popular may go unrated)."""
    n_ratings: int = 150_000
    """Number of distinct (user, item) ratings."""
    rank: int = 8
    """Dimension of the true user and item factors."""
    noise: float = 0.8
    """Standard deviation of the Gaussian noise added before rounding."""
    seed: int = 0
    """Seed of the generator: the same seed gives the same log."""

    def __post_init__(self) -> None:
        if min(self.n_users, self.n_items, self.n_ratings, self.rank) < 1:
            raise ConfigError("synthetic data needs at least one user, item, rating and factor")
        if self.n_ratings > self.n_users * self.n_items // 2:
            raise ConfigError(
                f"{self.n_ratings} ratings is over half of the {self.n_users} x {self.n_items} matrix; "
                "ask for fewer ratings or more users and items"
            )
        if self.noise < 0:
            raise ConfigError("noise must be >= 0")


@dataclass(frozen=True)
class Synthetic:
    """A generated log and what the generator knows about it."""

    ratings: Ratings
    config: SyntheticConfig
    expected: np.ndarray
    """float32, per rating: E[rating | user, item] under the generator (the ideal prediction)."""
    variance: np.ndarray
    """float32, per rating: Var[rating | user, item]; its mean over a test set is the floor's square."""

    def noise_floor(self, rows: np.ndarray | None = None) -> float:
        """The lowest expected RMSE any model can reach on ``rows`` (all ratings by default)."""
        var = self.variance if rows is None else self.variance[rows]
        return float(np.sqrt(var.mean()))


def _ndtr(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (numpy has erf only through math; this is vectorised)."""
    # Abramowitz-Stegun 7.1.26 is accurate to 1.5e-7, far below the figures reported.
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def _star_moments(latent: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of round_half(clip(latent + N(0, noise^2))) for each latent value."""
    if noise == 0:
        stars = np.clip(np.round(latent * 2) / 2, 0.5, 5.0)
        return stars, np.zeros_like(stars)
    # Bin edges between half stars; the outer bins take all the tail mass (the clip).
    edges = (STARS[:-1] + STARS[1:]) / 2
    cdf = _ndtr((edges[None, :] - latent[:, None]) / noise)
    probs = np.diff(np.concatenate([np.zeros((len(latent), 1)), cdf, np.ones((len(latent), 1))], axis=1), axis=1)
    mean = probs @ STARS
    var = probs @ (STARS**2) - mean**2
    return mean, np.maximum(var, 0.0)


def _sample_pairs(rng: np.random.Generator, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    user_w = rng.lognormal(0.0, 1.0, cfg.n_users)
    item_w = 1.0 / np.arange(1, cfg.n_items + 1) ** 0.9
    item_w = item_w[rng.permutation(cfg.n_items)]
    user_p, item_p = user_w / user_w.sum(), item_w / item_w.sum()
    # Every user rates at least one item, as in MovieLens, so no index is empty.
    first = np.arange(cfg.n_users, dtype=np.int64) * cfg.n_items + rng.choice(cfg.n_items, cfg.n_users, p=item_p)
    keys = np.unique(first)
    while len(keys) < cfg.n_ratings:
        want = int((cfg.n_ratings - len(keys)) * 1.3) + 1000
        u = rng.choice(cfg.n_users, want, p=user_p)
        i = rng.choice(cfg.n_items, want, p=item_p)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * cfg.n_items + i]))
    # Keep the forced first ratings, then a random subset of the rest.
    extra = np.setdiff1d(keys, first, assume_unique=True)
    keys = np.concatenate([first, rng.choice(extra, cfg.n_ratings - len(first), replace=False)])
    keys = keys[rng.permutation(len(keys))]
    return keys // cfg.n_items, keys % cfg.n_items


def generate(config: SyntheticConfig | None = None) -> Synthetic:
    """Generate a MovieLens-shaped log; deterministic for a given config (seed included)."""
    cfg = config or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    users, items = _sample_pairs(rng, cfg)
    scale = 1.0 / np.sqrt(cfg.rank)
    p = rng.normal(0.0, 0.7 * scale, (cfg.n_users, cfg.rank))
    q = rng.normal(0.0, 0.7 * scale, (cfg.n_items, cfg.rank))
    b_u = rng.normal(0.0, 0.35, cfg.n_users)
    b_i = rng.normal(0.0, 0.45, cfg.n_items)
    latent = 3.5 + b_u[users] + b_i[items] + np.einsum("nk,nk->n", p[users], q[items])
    noisy = latent + rng.normal(0.0, cfg.noise, len(latent))
    rating = np.clip(np.round(noisy * 2) / 2, 0.5, 5.0)
    # In chunks: the bin probabilities of 20M ratings at once would take gigabytes.
    chunk = 1 << 20
    parts = [_star_moments(latent[s : s + chunk], cfg.noise) for s in range(0, len(latent), chunk)]
    mean = np.concatenate([m for m, _ in parts])
    var = np.concatenate([v for _, v in parts])
    timestamp = 946684800 + rng.integers(0, 20 * 365 * 86400, len(rating))
    name = f"synthetic-{cfg.n_users}x{cfg.n_items}-{cfg.n_ratings}-noise{cfg.noise:g}-seed{cfg.seed}"
    # Raw ids start at 1, as MovieLens ids do, so an index is never mistaken for an id.
    titles = {i: f"Synthetic movie {i}" for i in range(1, cfg.n_items + 1)}
    ratings = Ratings.from_ids(users + 1, items + 1, rating, timestamp, titles=titles, name=name)
    return Synthetic(ratings, cfg, mean.astype(np.float32), var.astype(np.float32))

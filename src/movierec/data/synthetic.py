"""MovieLens-shaped ratings from a known model, so the best possible RMSE and list are known.

Each rating is ``round_half(clip(mu + b_u + b_i + p_u . q_i + noise, 0.5, 5))``: a
low-rank model with biases plus Gaussian noise, rounded to half stars as MovieLens
ratings are. User activity and item popularity are skewed (log-normal and Zipf), as in
the real logs, and the taste's dimensions weaken one after another (``decay``), as a
real rating matrix's singular values do.

Which items a user rates depends on their taste, as in MovieLens, where people rate what
they chose to watch: a pair drawn by activity and popularity is kept with probability
``sigmoid(exposure * (b_i + p_u . q_i))``, so items a user would like are more often
among their ratings. ``exposure`` 0 makes the choice independent of taste.

Because the generator knows each rating's distribution, it reports the noise floor: the
test RMSE of the best predictor there is, E[rating | user, item]; and the oracle list:
each user's unrated items ranked by their chance of being a liked test item,
``w_ui * P(r_ui >= 4)`` with ``w_ui`` the pair's draw weight (the exact order when a
user's items are few next to the catalogue), scored by NDCG@10 as evaluation scores lists.

The noise floor assumes every user's factors known; a model must learn them from each
user's ratings, 20 for many. ``user_floor`` is the test RMSE of a model told the items'
true factors that learns only the users, as well as their ratings allow: closer to what
any model can reach (bench/NOTES.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from movierec.data.ids import distinct
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError

MAX_RATINGS, MAX_ROWS = 500_000_000, 100_000_000
"""The largest log asked for (ML-32M has 32M ratings; this would take about 80 GB to generate)."""
STARS = np.arange(0.5, 5.01, 0.5)
"""The ten half-star values a rating can take."""


@dataclass(frozen=True)
class SyntheticConfig:
    """How big and how noisy the synthetic log is."""

    n_users: int = 2000
    """Number of users (each rates at least ``min_user_ratings`` items)."""
    n_items: int = 1500
    """Number of items in the catalogue (the least popular may go unrated)."""
    n_ratings: int = 200_000
    """Number of distinct (user, item) ratings."""
    rank: int = 8
    """Dimension of the true user and item factors."""
    noise: float = 0.8
    """Standard deviation of the Gaussian noise added before rounding."""
    signal: float = 0.8
    """Standard deviation of the taste term p_u . q_i, in stars. With noise 0.8 the factor models
    land 0.01-0.06 RMSE below the biases, as on ml-latest-small (0.17, the old default, gave 0.002)."""
    decay: float = 2.0
    """How the taste's variance falls across its dimensions: the k-th carries a share in
    proportion to k ** -decay (0: all alike). Real rating matrices have a few strong
    directions and a weak tail; with every dimension alike (the old default) models trained
    by gradient steps (``mf``, the notebook's ``mlp``) learned nothing past the biases."""
    exposure: float = 3.0
    """How strongly taste decides which items a user rates (0: not at all)."""
    user_spread: float = 0.4
    """Standard deviation of log s_u, each user's spread of ratings (0: all users alike)."""
    min_user_ratings: int = 20
    """Ratings every user has at least (fewer when the log is too small for it), as in MovieLens."""
    seed: int = 0
    """Seed of the generator: the same seed gives the same log."""

    def __post_init__(self) -> None:
        if min(self.n_users, self.n_items, self.n_ratings, self.rank) < 1:
            raise ConfigError("synthetic data needs at least one user, item, rating and factor")
        if self.n_ratings > MAX_RATINGS or max(self.n_users, self.n_items) > MAX_ROWS:
            raise ConfigError(
                f"synthetic data is limited to {MAX_RATINGS:,} ratings and {MAX_ROWS:,} users or items "
                "(generating takes about 160 bytes a rating); ask for less"
            )
        if self.n_ratings > self.n_users * self.n_items // 2:
            raise ConfigError(
                f"{self.n_ratings} ratings is over half of the {self.n_users} x {self.n_items} matrix; "
                "ask for fewer ratings or more users and items"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed must be a whole number from 0 to 2**63 - 1, got {self.seed!r}")
        if self.min_user_ratings < 1:
            raise ConfigError("min_user_ratings must be at least 1")
        if self.noise < 0 or self.signal < 0 or self.exposure < 0 or not 0 <= self.decay <= 10:
            raise ConfigError("noise, signal and exposure must be >= 0, and decay within 0..10")

    def factor_sd(self) -> np.ndarray:
        """(rank,) standard deviation of each dimension of the true factors (users' and items' alike).

        Var(p_k q_k) = sd_k^4 for independent factors, so sd_k^4 = signal^2 * share_k gives
        p . q a variance of signal^2, split across the dimensions as ``decay`` says.
        """
        share = np.arange(1, self.rank + 1, dtype=np.float64) ** -self.decay
        return (self.signal**2 * share / share.sum()) ** 0.25


@dataclass(frozen=True)
class Synthetic:
    """A generated log and what the generator knows about it."""

    ratings: Ratings
    config: SyntheticConfig
    expected: np.ndarray
    """float32, per rating: E[rating | user, item] under the generator (the ideal prediction)."""
    variance: np.ndarray
    """float32, per rating: Var[rating | user, item]; its mean over a test set is the floor's square."""

    truth: Truth
    """The generator's factors, biases and draw weights."""

    def noise_floor(self, rows: np.ndarray | None = None) -> float:
        """The lowest expected RMSE any model can reach on ``rows`` (all ratings by default)."""
        var = self.variance if rows is None else self.variance[rows]
        return float(np.sqrt(var.mean()))

    def oracle_ndcg(
        self, train_rows: np.ndarray, test_rows: np.ndarray, k: int = 10, relevance: float = 4.0, max_users: int = 2000
    ) -> float:
        """NDCG@k of the oracle's lists (module docstring) on the test rows, train rows left out.

        Over at most ``max_users`` test users with a relevant item (a seeded sample beyond that).
        """
        from movierec.metrics import ranking_metrics

        r, t = self.ratings, self.truth
        # The log's indices, as the generator's (raw ids are index + 1, some items never drawn).
        t_users, t_items = r.index.user_ids - 1, r.index.item_ids - 1
        liked = test_rows[r.rating[test_rows] >= relevance]
        users, n_relevant = np.unique(r.user_idx[liked], return_counts=True)
        if len(users) > max_users:
            pick = np.sort(np.random.default_rng(0).choice(len(users), max_users, replace=False))
            users, n_relevant = users[pick], n_relevant[pick]
        relevant_keys = distinct(r.user_idx[liked].astype(np.int64) * r.n_items + r.item_idx[liked])
        seen_u, seen_i = r.user_idx[train_rows], r.item_idx[train_rows]
        hits = np.zeros((len(users), k), dtype=bool)
        for s in range(0, len(users), 256):
            block = users[s : s + 256]
            u, i = t_users[block][:, None], t_items[None, :]
            score = t.weight(u, i) * t.p_liked(u, i, relevance)
            mask = np.isin(seen_u, block)
            score[np.searchsorted(block, seen_u[mask]), seen_i[mask]] = -np.inf
            top = np.argsort(-score, axis=1, kind="stable")[:, :k]
            hits[s : s + 256] = np.isin(block[:, None].astype(np.int64) * r.n_items + top, relevant_keys)
        return float(ranking_metrics(hits, n_relevant)["ndcg"])

    def user_floor(self, train_rows: np.ndarray, test_rows: np.ndarray) -> float:
        """Test RMSE of the items' true factors with each user learned from their training ratings.

        A user's latent rating is linear in ten numbers given the item: with x_i =
        [q_i, b_i, 1] it is x_i . [s_u p_u, s_u, MEAN + b_u]. Each user's are the MAP
        estimate under a Gaussian prior with the generator's means and variances, fitted by
        Gauss-Newton to the exact mean of a rounded, clipped rating (``_star_mean``); test
        ratings are predicted by that mean. No model that must learn the users does much
        better, whatever it knows of the items: the gap to ``noise_floor`` is the price of
        learning users from their ratings.
        """
        r, t, cfg = self.ratings, self.truth, self.config
        t_items = r.index.item_ids - 1  # the generator's item indices

        def features(rows: np.ndarray) -> torch.Tensor:
            i = t_items[r.item_idx[rows]]
            return torch.from_numpy(np.c_[t.q[i], t.b_i[i], np.ones(len(rows))])

        x, users = features(train_rows), torch.from_numpy(r.user_idx[train_rows].astype(np.int64))
        y = torch.from_numpy(r.rating[train_rows].astype(np.float64))
        s2 = cfg.factor_sd() ** 2  # the factors' variances, as ``generate`` draws them
        spread = np.exp(cfg.user_spread**2)  # E[s_u^2]
        mean = torch.tensor([0.0] * cfg.rank + [1.0, MEAN], dtype=torch.float64)
        precision = 1.0 / torch.tensor([*(s2 * spread), spread - 1.0 + 1e-9, 0.35**2], dtype=torch.float64)
        var = cfg.noise**2 + 1.0 / 48  # the noise and the half-star rounding
        theta = mean.repeat(r.n_users, 1)
        k = len(mean)
        for _ in range(GN_STEPS):
            a = torch.zeros(r.n_users, k, k, dtype=torch.float64)
            b = torch.zeros(r.n_users, k, dtype=torch.float64)
            for s in range(0, len(users), CHUNK):  # the outer products of 16M ratings would take 12 GB
                u, xc = users[s : s + CHUNK], x[s : s + CHUNK]
                g, slope = _star_mean((xc * theta[u]).sum(1), cfg.noise)
                xs = xc * slope[:, None]
                a.index_add_(0, u, xs[:, :, None] * xs[:, None, :])
                b.index_add_(0, u, xs * (y[s : s + CHUNK] - g)[:, None])
            a = a / var + torch.diag(precision)
            b = b / var - (theta - mean) * precision
            theta = theta + torch.linalg.solve(a, b)
        seen = np.zeros(r.n_users, dtype=bool)
        seen[r.user_idx[train_rows]] = True
        test_rows = test_rows[seen[r.user_idx[test_rows]]]
        z = (features(test_rows) * theta[torch.from_numpy(r.user_idx[test_rows].astype(np.int64))]).sum(1)
        err = _star_mean(z, cfg.noise)[0].numpy() - r.rating[test_rows]
        return float(np.sqrt(np.mean(err**2)))

    def report(self, train_rows: np.ndarray, test_rows: np.ndarray) -> dict:
        """What the generator knows of a split: ``noise_floor`` and ``oracle_ndcg`` on its test part."""
        return {"noise_floor": self.noise_floor(test_rows), "oracle_ndcg": self.oracle_ndcg(train_rows, test_rows)}


@dataclass(frozen=True)
class Truth:
    """The generator's hidden model, by 0-based user and item index (raw id - 1)."""

    p: np.ndarray
    q: np.ndarray
    b_u: np.ndarray
    b_i: np.ndarray
    s_u: np.ndarray
    """How widely each user spreads their ratings (1 on average): some rate everything 3-4, some 1-5."""
    item_w: np.ndarray
    """Popularity draw weight of each item."""
    config: SyntheticConfig

    def taste(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """b_i + p_u . q_i: what, beyond the user's own bias, decides their rating and their choices."""
        if np.ndim(u) == 1 and np.ndim(i) == 1 and len(u) == len(i) > CHUNK:
            # In chunks: the gathered factors of 52M draws would take 13 GB at once.
            return np.concatenate([self.taste(u[s : s + CHUNK], i[s : s + CHUNK]) for s in range(0, len(u), CHUNK)])
        return self.b_i[i] + np.einsum("...k,...k->...", self.p[u], self.q[i])

    def latent(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The rating before noise: mu + b_u + s_u * taste, s_u how far the user's ratings spread."""
        return MEAN + self.b_u[u] + self.s_u[u] * self.taste(u, i)

    def keep(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Chance a drawn pair is kept: sigmoid(exposure * taste)."""
        return 1.0 / (1.0 + np.exp(-self.config.exposure * self.taste(u, i)))

    def weight(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Relative chance that user u rates item i, among that user's draws."""
        return self.item_w[i] * self.keep(u, i)

    def p_liked(self, u: np.ndarray, i: np.ndarray, relevance: float) -> np.ndarray:
        """P(rating >= relevance): the latent plus noise reaches the half-star bin of ``relevance``."""
        z = (self.latent(u, i) - (relevance - 0.25)) / max(self.config.noise, 1e-9)
        return _ndtr(z)


def _ndtr(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF, elementwise."""
    return torch.special.ndtr(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


GN_STEPS = 6
"""Gauss-Newton steps of ``user_floor``'s per-user fit: from the prior mean, 3-4 converge."""


def _star_mean(latent: torch.Tensor, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """E[round_half(clip(latent + N(0, noise^2)))] and its derivative in ``latent``.

    The rating is 0.5 plus half a star for every bin edge that latent + noise passes, so
    its mean is a sum of normal CDFs and its slope a sum of densities.
    """
    edges = torch.from_numpy((STARS[:-1] + STARS[1:]) / 2).to(latent.dtype)
    u = (latent[:, None] - edges[None, :]) / max(noise, 1e-9)
    mean = 0.5 + 0.5 * torch.special.ndtr(u).sum(1)
    slope = 0.5 * torch.exp(-0.5 * u * u).sum(1) / (np.sqrt(2 * np.pi) * max(noise, 1e-9))
    return mean, slope


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


MEAN = 3.5
"""The latent rating's centre, in stars."""
CHUNK = 1 << 20
"""Ratings or draws worked on at once where a whole log's intermediates would take gigabytes."""


def _sample_pairs(
    rng: np.random.Generator, cfg: SyntheticConfig, user_w: np.ndarray, truth: Truth
) -> tuple[np.ndarray, np.ndarray]:
    user_p, item_p = user_w / user_w.sum(), truth.item_w / truth.item_w.sum()
    # Every user rates at least ``min_user_ratings`` items, as every MovieLens user has 20.
    m = max(1, min(cfg.min_user_ratings, cfg.n_ratings // cfg.n_users, cfg.n_items // 2))
    first = np.zeros(0, dtype=np.int64)
    need = np.full(cfg.n_users, m)
    while need.any():
        u = np.repeat(np.arange(cfg.n_users), need * 3)
        i = rng.choice(cfg.n_items, len(u), p=item_p)
        kept = rng.random(len(u)) < truth.keep(u, i)
        keys = distinct(np.concatenate([first, u[kept].astype(np.int64) * cfg.n_items + i[kept]]))
        # At most m per user, chosen at random among the user's draws (not by item index).
        order = np.lexsort((rng.random(len(keys)), keys // cfg.n_items))
        keys = keys[order]
        owner = keys // cfg.n_items
        rank = np.arange(len(keys)) - np.searchsorted(owner, owner)
        first = np.sort(keys[rank < m])
        need = m - np.bincount(first // cfg.n_items, minlength=cfg.n_users)
    keys = first
    while len(keys) < cfg.n_ratings:
        want = int((cfg.n_ratings - len(keys)) * 2.6) + 1000
        u = rng.choice(cfg.n_users, want, p=user_p)
        i = rng.choice(cfg.n_items, want, p=item_p)
        kept = rng.random(want) < truth.keep(u, i)  # taste decides which draws become ratings
        keys = distinct(np.concatenate([keys, u[kept].astype(np.int64) * cfg.n_items + i[kept]]))
    # Keep the forced first ratings, then a random subset of the rest.
    extra = np.setdiff1d(keys, first, assume_unique=True)
    keys = np.concatenate([first, rng.choice(extra, cfg.n_ratings - len(first), replace=False)])
    keys = keys[rng.permutation(len(keys))]
    return keys // cfg.n_items, keys % cfg.n_items


def generate(config: SyntheticConfig | None = None) -> Synthetic:
    """Generate a MovieLens-shaped log; deterministic for a given config (seed included)."""
    cfg = config or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    user_w = rng.lognormal(0.0, 1.3, cfg.n_users)  # ML-latest-small: max 38x the median
    item_w = 1.0 / np.arange(1, cfg.n_items + 1) ** 0.9
    item_w = item_w[rng.permutation(cfg.n_items)]
    sd = cfg.factor_sd()
    p = rng.normal(0.0, 1.0, (cfg.n_users, cfg.rank)) * sd
    q = rng.normal(0.0, 1.0, (cfg.n_items, cfg.rank)) * sd
    b_u = rng.normal(0.0, 0.35, cfg.n_users)
    b_i = rng.normal(0.0, 0.45, cfg.n_items)
    s_u = rng.lognormal(-(cfg.user_spread**2) / 2, cfg.user_spread, cfg.n_users)
    truth = Truth(p, q, b_u, b_i, s_u, item_w, cfg)
    users, items = _sample_pairs(rng, cfg, user_w, truth)
    latent = truth.latent(users, items)
    noisy = latent + rng.normal(0.0, cfg.noise, len(latent))
    rating = np.clip(np.round(noisy * 2) / 2, 0.5, 5.0)
    # In chunks: the bin probabilities of 20M ratings at once would take gigabytes.
    parts = [_star_moments(latent[s : s + CHUNK], cfg.noise) for s in range(0, len(latent), CHUNK)]
    mean = np.concatenate([m for m, _ in parts])
    var = np.concatenate([v for _, v in parts])
    timestamp = 946684800 + rng.integers(0, 20 * 365 * 86400, len(rating))
    name = (
        f"synthetic-{cfg.n_users}x{cfg.n_items}-{cfg.n_ratings}-noise{cfg.noise:g}-signal{cfg.signal:g}"
        f"-exposure{cfg.exposure:g}-decay{cfg.decay:g}-seed{cfg.seed}"
    )
    # Raw ids start at 1, as MovieLens ids do, so an index is never mistaken for an id.
    titles = {i: f"Synthetic movie {i}" for i in range(1, cfg.n_items + 1)}
    ratings = Ratings.from_ids(users + 1, items + 1, rating, timestamp, titles=titles, name=name)
    return Synthetic(ratings, cfg, mean.astype(np.float32), var.astype(np.float32), truth)

"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008): every unrated pair a weak zero.

Each user u and item i have factors p_u, q_i; the model scores p_u . q_i. Trained on
the whole users x items matrix: a rated pair is a 1 with confidence ``unrated_weight +
alpha * w(r)`` (w the rating's weight, r / r_max by default), an unrated pair a 0 with
confidence ``unrated_weight``:

    min  sum_rated c_ui (1 - p_u.q_i)^2 + unrated_weight sum_unrated (p_u.q_i)^2
         + reg (|p_u|^2 + |q_i|^2)

With the items fixed each user is one ridge regression whose normal equations are
``unrated_weight Q^T Q + alpha sum_j w_uj q_j q_j^T + reg I`` and ``sum_j c_uj q_j``: the
shared Q^T Q once per sweep, then only the user's own ratings (``models.rows`` batches
them), so a sweep costs about what ``als``'s does. Then the same for items.

Only the item side is kept: a user's vector is that same ridge regression on their
ratings, solved when they are scored, so known and new users take one path, and
Hu et al.'s explanation holds exactly: score_i = sum_j c_uj q_i^T A_u^-1 q_j, each term
one rated item's share.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from movierec.errors import ConfigError
from movierec.models.base import Ranker, RankerData, Sweeps, UserRows, ranker_spec
from movierec.models.rows import RowBlocks


@dataclass(frozen=True)
class IALSConfig:
    """Size, confidence, regularisation and sweeps."""

    dim: int = 64
    """Length of each user and item factor vector."""
    alpha: float = 4.0
    """Extra confidence of a rated pair, times its rating weight, over an unrated pair's."""
    unrated_weight: float = 1.0
    """Confidence of each unrated pair's zero."""
    reg: float = 30.0
    """Ridge penalty on every user's and item's factors. With alpha 4 and unrated_weight 1, the best
    of 20 settings on ml-latest-small's validation parts (bench/NOTES.md)."""
    weighting: str = "rating"
    """``rating`` (w = r / r_max) or ``binary`` (w = 1 for every rating)."""
    init_std: float = 0.01
    """Standard deviation of the item factors' random start (users are solved first)."""
    sweeps: int = 15
    """Alternations (users, then items); each lowers the objective. ``train`` stops sooner when
    the validation NDCG@10 stops rising, and refits with the sweeps that gave the best."""
    cg_steps: int = 0
    """0: solve each row's normal equations exactly; n > 0: n conjugate-gradient steps per row and
    sweep instead, warm from the row's last value (Takacs et al. 2011, implicit's way). Same lists
    either way (bench/NOTES.md); CG fitted ml-latest-small 3.5x faster but a 4M-rating log at
    ML-20M's catalogue 25% slower (torch's batched products with a vector are memory-bound here)."""

    def __post_init__(self) -> None:
        if self.dim < 1 or self.sweeps < 1 or self.cg_steps < 0:
            raise ConfigError(
                f"dim and sweeps must be >= 1 and cg_steps >= 0; got {self.dim}, {self.sweeps}, {self.cg_steps}"
            )
        if not (self.alpha > 0 and self.unrated_weight > 0 and self.reg > 0 and self.init_std >= 0):
            raise ConfigError("alpha, unrated_weight and reg must be > 0, init_std >= 0")


class IALS(Ranker):
    """Item factors (n_items, dim) and the settings that turn a user's ratings into a vector."""

    item_factors: Tensor

    def __init__(self, n_items: int, config: IALSConfig) -> None:
        super().__init__(n_items, config.weighting)
        self.alpha, self.unrated_weight, self.reg = config.alpha, config.unrated_weight, config.reg
        self.register_buffer("item_factors", torch.zeros(n_items, config.dim))
        self._gram: tuple[tuple[int, int], Tensor] | None = None
        self._last_user: tuple | None = None  # see _one_user

    def unrated_gram(self) -> Tensor:
        """unrated_weight * Q^T Q, shared by every user's solve: computed once per version of Q.

        A served request would otherwise spend most of its time on it (26,744 x 64 x 64 at
        ML-20M size: 2.6 of 5.2 ms per list, measured).
        """
        q = self.item_factors
        key = (q.data_ptr(), q._version)
        if self._gram is None or self._gram[0] != key:
            self._gram = (key, self.unrated_weight * (q.T @ q))
        return self._gram[1]

    def _normal_equations(self, items: Tensor, ratings: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One user's ridge: A (dim, dim), the rated items' factors (n, dim) and confidences (n,)."""
        rated = self.item_factors[items]
        w = self.alpha * self.weights(ratings)
        a = self.unrated_gram() + (rated * w[:, None]).T @ rated
        a.diagonal().add_(self.reg)
        return a, rated, w + self.unrated_weight

    def _one_user(self, items: Tensor, ratings: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor, Tensor]:
        """One user's ridge as (LU factors of A, rated factors, confidences), kept for the next call.

        A served list asks for the same user twice, its scores and then its explanations:
        the second call reuses the first's factorisation (about a tenth of a known user's
        list at ML-20M size). The one kept is used only for equal items and ratings against
        the same item factors, so concurrent requests at worst recompute it.
        """
        q = self.item_factors
        key = (q.data_ptr(), q._version)
        last = self._last_user
        if (
            last is not None
            and last[0] == key
            and last[1].device == items.device
            and torch.equal(last[1], items)
            and torch.equal(last[2], ratings)
        ):
            return last[3], last[4], last[5]
        a, rated, c = self._normal_equations(items, ratings)
        lu = torch.linalg.lu_factor(a)
        self._last_user = (key, items.clone(), ratings.clone(), lu, rated, c)
        return lu, rated, c

    def user_vectors(self, rows: UserRows) -> Tensor:
        """float32 (B, dim): each row's ridge solution against the fixed items (zeros for empty rows)."""
        q = self.item_factors
        if rows.n_rows == 1 and len(rows.items):
            # A served request: one small solve, without grouping rows into blocks (about 0.3 ms of torch calls).
            lu, rated, c = self._one_user(rows.items, rows.ratings)
            return torch.linalg.lu_solve(*lu, (rated.T @ c)[:, None]).T
        out = q.new_zeros(rows.n_rows, q.shape[1])
        blocks = RowBlocks(rows.row_of_entry(), rows.items, rows.ratings, rows.n_rows, self.n_items)
        solve_side(blocks, q, out, self, self.unrated_gram())
        return out

    def score(self, rows: UserRows) -> Tensor:
        return self.user_vectors(rows) @ self.item_factors.T

    def contributions(self, rows: UserRows, item_idx: Tensor) -> Tensor:
        lu, rated, c = self._one_user(rows.items, rows.ratings)
        # score_i = q_i^T A^-1 sum_j c_j q_j: the j-th term is rated item j's share. A is
        # symmetric, so solve for the few listed items, not for the user's many rated ones.
        return (torch.linalg.lu_solve(*lu, self.item_factors[item_idx].T).T @ rated.T) * c[None, :]

    def similar(self, item_idx: Tensor) -> Tensor:
        q = torch.nn.functional.normalize(self.item_factors, dim=1)
        return q[item_idx] @ q.T


def solve_side(blocks: RowBlocks, other: Tensor, out: Tensor, model: IALS, base_gram: Tensor) -> None:
    """Set ``out``'s rows with ratings to their ridge solutions given the other side's factors."""
    for rows, x, values, real in blocks.gathered(other):
        w = torch.where(real, model.weights(values), torch.zeros((), device=values.device)) * model.alpha
        a = torch.bmm((x * w[..., None]).transpose(1, 2), x) + base_gram
        a.diagonal(dim1=1, dim2=2).add_(model.reg)
        c = torch.where(real, w + model.unrated_weight, torch.zeros((), device=values.device))
        b = torch.bmm(x.transpose(1, 2), c[..., None])[..., 0]
        out[rows] = torch.linalg.solve(a, b)


def cg_side(blocks: RowBlocks, other: Tensor, out: Tensor, model: IALS, base_gram: Tensor, steps: int) -> None:
    """Move ``out``'s rows with ratings toward their ridge solutions by ``steps`` conjugate-gradient steps.

    The normal matrix is never formed: ``A v = base_gram v + reg v + X^T (w * (X v))`` is
    two passes over the row's gathered factors, where forming A is one product ``dim``
    times larger and solving it ``dim^3 / 3`` more multiply-adds.
    """
    for rows, x, values, real in blocks.gathered(other):
        w = torch.where(real, model.weights(values), torch.zeros((), device=values.device)) * model.alpha
        c = torch.where(real, w + model.unrated_weight, torch.zeros((), device=values.device))
        xt = x.transpose(1, 2)

        def times_a(v: Tensor, x: Tensor = x, xt: Tensor = xt, w: Tensor = w) -> Tensor:
            xv = torch.bmm(x, v[..., None])[..., 0]
            return v @ base_gram + model.reg * v + torch.bmm(xt, (w * xv)[..., None])[..., 0]

        p = out[rows]
        r = torch.bmm(xt, c[..., None])[..., 0] - times_a(p)
        d, rr = r.clone(), (r * r).sum(1)
        for _ in range(steps):
            ad = times_a(d)
            step = rr / (d * ad).sum(1).clamp_min(1e-30)
            p += step[:, None] * d
            r -= step[:, None] * ad
            rr_next = (r * r).sum(1)
            d = r + (rr_next / rr.clamp_min(1e-30))[:, None] * d
            rr = rr_next
        out[rows] = p


class _Sweeps(Sweeps):
    """One sweep solves every user, then every item; ``IALSConfig.sweeps`` of them."""

    def __init__(self, model: IALS, config: IALSConfig, data: RankerData) -> None:
        self.model, self.config, self.planned = model, config, config.sweeps
        model.rating_max.fill_(data.rating_max)
        model.rating_floor.fill_(data.rating_floor)
        self.q = model.item_factors
        self.q.normal_(0.0, config.init_std, generator=data.generator)
        self.p = self.q.new_zeros(data.n_users, config.dim)
        self.users = RowBlocks(data.user_idx, data.item_idx, data.rating, data.n_users, model.n_items)
        self.items = RowBlocks(data.item_idx, data.user_idx, data.rating, model.n_items, data.n_users)
        self.q[self.items.count == 0] = 0.0  # never rated: never listed, and no noise in anyone's solve

    @torch.no_grad()
    def sweep(self, epoch: int) -> None:
        p, q, model, weight = self.p, self.q, self.model, self.config.unrated_weight
        steps = self.config.cg_steps
        if steps:
            cg_side(self.users, q, p, model, weight * (q.T @ q), steps)
            cg_side(self.items, p, q, model, weight * (p.T @ p), steps)
        else:
            solve_side(self.users, q, p, model, weight * (q.T @ q))
            solve_side(self.items, p, q, model, weight * (p.T @ p))


def _build(config: IALSConfig, n_users: int, n_items: int, generator: torch.Generator) -> IALS:
    return IALS(n_items, config)


def _candidates(n_users: int, n_items: int, n_ratings: int) -> list[IALSConfig]:
    """Ridges for ``train`` to compare, each fit stopping when its validation NDCG does; the default first.

    The best ridge grows with the log: 30 on ml-latest-small, 300 on a 15M-rating log at
    ML-20M's shape, where 30 and 100 overfit after a sweep or two (bench/NOTES.md). A ridge
    that overfits stops ``fitting.RANKER_PATIENCE`` (2) sweeps after its best, but the ladder
    still costs several fits: 262 s there, against 35 s for the refit.
    """
    ridges = (30.0, 10.0, 100.0) if n_ratings <= 2_000_000 else (30.0, 100.0, 300.0, 1000.0)
    return [IALSConfig(reg=reg) for reg in ridges]  # the default first: it stands unless beaten


def _space(trial) -> tuple[dict, dict]:  # noqa: ANN001
    """What ``movierec tune`` searches: a trial -> (config fields, training settings)."""
    return {
        "dim": trial.suggest_int("dim", 16, 256, log=True),
        "alpha": trial.suggest_float("alpha", 0.5, 50.0, log=True),
        "unrated_weight": trial.suggest_float("unrated_weight", 0.05, 2.0, log=True),
        "reg": trial.suggest_float("reg", 0.5, 2000.0, log=True),
        "sweeps": trial.suggest_int("sweeps", 2, 15),
        "weighting": trial.suggest_categorical("weighting", ["rating", "binary"]),
    }, {}


SPEC = ranker_spec(
    name="ials",
    summary="implicit-feedback ALS (Hu, Koren & Volinsky 2008): which items a user rated, every other a weak zero",
    config_type=IALSConfig,
    build=_build,
    sweeps=_Sweeps,
    space=_space,
    candidates=_candidates,
)

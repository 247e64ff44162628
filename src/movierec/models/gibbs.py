"""The Gibbs chain behind ``bmf``: one sample of every parameter per sweep, and the running posterior mean.

Each sweep draws the noise precision, then each user's factors and bias jointly (a
(dim+1)-variate Gaussian from the blocked normal equations of ``movierec.models.rows``),
then each item's, and the implicit vectors through an exact data augmentation; every prior
mean and precision is drawn from its Normal-Gamma hyperprior on the way. ``PosteriorMean``
averages the samples' U V^T at rank ``dim`` as they come, so the saved model stays a plain
biased factorisation (``movierec.models.bmf`` holds the model and its configuration).
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from movierec.models.base import RaterData
from movierec.models.rows import RowBlocks

if TYPE_CHECKING:
    from movierec.models.bmf import BMFConfig


class Sampler:
    """The state of one Gibbs chain: parameters, hyperparameters, residuals and random streams."""

    def __init__(self, ctx: RaterData, n_users: int, n_items: int, config: BMFConfig) -> None:
        self.u, self.i, self.y = ctx.user_idx, ctx.item_idx, ctx.target.float()
        self.n_users, self.n_items, self.k = n_users, n_items, config.dim
        self.config = config
        self.gen = ctx.generator
        # Scalar and per-factor hyperparameter draws come from a numpy stream seeded off the run's generator.
        self.rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=self.gen)))
        seeds = torch.randint(0, 2**62, (2,), generator=self.gen).tolist()
        self.streams = [torch.Generator().manual_seed(seed) for seed in seeds]
        dev = self.y.device
        self.count_u = torch.bincount(self.u, minlength=n_users).float()
        self.count_i = torch.bincount(self.i, minlength=n_items).float()
        self.w_u = torch.zeros(n_users, device=dev)
        self.w_i = torch.zeros(n_items, device=dev)
        # Factors are stored transposed, (dim, n), so one factor column is contiguous.
        self.U = torch.randn(self.k, n_users, generator=self.gen).to(dev) * config.init_std
        self.V = torch.randn(self.k, n_items, generator=self.gen).to(dev) * config.init_std
        self.z = torch.zeros(self.k, n_users, device=dev) if config.implicit_item else None
        self.yv = torch.zeros(self.k, n_items, device=dev) if config.implicit_user else None
        self.hyper: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.alpha = 1.0
        self.sweeps = 0
        self.sse = float(((self.y - self.predict(self.u, self.i)).double() ** 2).sum())
        # Each row's factors and bias are sampled jointly from blocked normal equations.
        self.by_user = RowBlocks(self.u, self.i, self.y, n_users, n_items)
        self.by_item = RowBlocks(self.i, self.u, self.y, n_items, n_users)
        # Who rated what, as sparse matrices: sums over raters (or rated items) of the implicit
        # vectors, for all factors at once, are then one sparse-dense product.
        self.rated_by_user = pattern(self.u, self.i, n_users, n_items)
        self.rated_by_item = pattern(self.i, self.u, n_items, n_users)

    # -- helpers ---------------------------------------------------------------------------
    def randn(self, *shape: int) -> Tensor:
        return torch.randn(*shape, generator=self.gen).to(self.y.device)

    def randn_halves(self, n: int, k: int) -> Tensor:
        """(n, k) standard normals, each half from its own seeded stream, the two drawn at once.

        torch's CPU normal sampler runs on one thread: the implicit vectors' per-pair noise
        (486M draws a sweep at ML-20M size) took 2.0 s that way, 1.2 s on two threads. The
        halves never depend on the thread count, so neither does the chain.
        """
        out = torch.empty(n, k)
        parts = (out[: n // 2], out[n // 2 :])
        with ThreadPoolExecutor(min(2, torch.get_num_threads())) as pool:
            list(pool.map(lambda part, gen: part.normal_(generator=gen), parts, self.streams))
        return out.to(self.y.device)

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        """Predictions of the current sample, in chunks: (dim, chunk) gathers stay small."""
        # index_select, not x[idx]: on CPU it is several times faster for long index vectors.
        out = self.w_u.index_select(0, users) + self.w_i.index_select(0, items)
        step = 1 << 18
        for s in range(0, len(users), step):
            u, i = users[s : s + step], items[s : s + step]
            out[s : s + step] += (self.U.index_select(1, u) * self.V.index_select(1, i)).sum(0)
        return out

    def normal_gamma(self, name: str, theta: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Draw (mean, precision) of the Gaussian prior of ``theta`` (rows: factors) given its values.

        libFM's hyperprior: precision ~ Gamma(1, 1), mean | precision ~ N(0, 1/precision).
        """
        t = theta.double().cpu().numpy().reshape(-1, theta.shape[-1])
        n = t.shape[1]
        mean = self.hyper.get(name, (np.zeros(len(t)), None))[0]
        spread = ((t - mean[:, None]) ** 2).sum(1) + mean**2
        lam = self.rng.gamma((2 + n) / 2, 2 / (1 + spread))
        mean = self.rng.normal(t.sum(1) / (n + 1), np.sqrt(1 / ((n + 1) * lam)))
        self.hyper[name] = (mean, lam)
        return mean, lam

    # -- one sweep -------------------------------------------------------------------------
    def sweep(self) -> None:
        self.sweeps += 1
        self.alpha = float(self.rng.gamma((1 + len(self.y)) / 2, 2 / (1 + self.sse)))
        user_offset = self.implicit_mean(self.yv, self.rated_by_user, self.count_u)
        self.rows(self.by_user, self.U, self.w_u, self.V, self.w_i, user_offset, "U", "w_u")
        if self.yv is not None:
            self.augment(self.yv, self.U, self.rated_by_user, self.i, self.count_u, "U", "y")
        item_offset = self.implicit_mean(self.z, self.rated_by_item, self.count_i)
        # The items are sampled last, so their blocks' residuals are those of the whole new sample.
        self.sse = self.rows(self.by_item, self.V, self.w_i, self.U, self.w_u, item_offset, "V", "w_i")
        if self.z is not None:
            self.augment(self.z, self.V, self.rated_by_item, self.u, self.count_i, "V", "z")

    def implicit_mean(self, vecs: Tensor | None, pattern: Tensor | None, count: Tensor) -> Tensor | None:
        """|N(j)|^-1/2 sum_{v in N(j)} vecs_v for every j of ``pattern``'s rows, (dim, n); None without."""
        if vecs is None or pattern is None:
            return None
        return torch.sparse.mm(pattern, vecs.T.contiguous()).T * count.clamp_min(1).rsqrt()

    def rows(self, side: RowBlocks, M: Tensor, w: Tensor, other_M: Tensor, other_w: Tensor, offset, name, w_name):
        """Sample every row's factors and bias (columns of ``M`` (dim, n), entries of ``w``) jointly.

        Row j's conditional is Gaussian with precision ``P = alpha X^T X + diag(lam)`` and mean
        ``P^-1 (alpha X^T y + lam * prior_mean_j)``, x = [other factors, 1], y = r - other bias;
        with ``P = L L^T`` a draw is that mean plus ``L^-T eps``. Returns the new sample's
        squared error over this side's ratings: ``y.y - 2 s.X^T y + s.X^T X.s`` per row.
        """
        mean, lam = self.normal_gamma(name, M if offset is None else M - offset)
        (w_mean,), (w_lam,) = self.normal_gamma(w_name, w[None])
        k, n = M.shape
        dev = M.device
        precision = torch.tensor([*lam, w_lam], dtype=torch.float32, device=dev)
        prior = torch.empty(n, k + 1, device=dev)
        prior[:, :k] = torch.tensor(mean, dtype=torch.float32, device=dev)
        if offset is not None:
            prior[:, :k] += offset.T
        prior[:, k] = float(w_mean)
        # Rows without ratings draw from their prior.
        draw = prior + self.randn(n, k + 1) / precision.sqrt()
        sse = 0.0
        for rows, xx, xy, yy in side.equations(other_M.T.contiguous(), other_w):
            p = xx.mul_(self.alpha)
            p.diagonal(dim1=1, dim2=2).add_(precision)
            chol = torch.linalg.cholesky(p)
            rhs = self.alpha * xy + precision * prior[rows]
            s = torch.cholesky_solve(rhs[..., None], chol)
            s += torch.linalg.solve_triangular(chol.mT, self.randn(len(rows), k + 1, 1), upper=True)
            s = s[..., 0]
            # s.X^T X.s from the precision: (s.P.s - sum lam s^2) / alpha.
            quad = ((s[:, :, None] * p).sum(1) * s).sum(1) - (precision * s * s).sum(1)
            sse += float((yy - 2 * (s * xy).sum(1) + quad / self.alpha).double().sum())
            draw[rows] = s
        M.copy_(draw[:, :k].T)
        w.copy_(draw[:, k])
        return sse

    def augment(self, vecs: Tensor, M: Tensor, pattern: Tensor, other: Tensor, count: Tensor, m_name: str, name: str):
        """Sample the implicit vectors feeding ``M``'s prior mean, given ``M``.

        For each row j of M and factor f: ``M_j - m = d_j sum_{v in N(j)} vecs_v + noise``,
        noise ~ N(0, 1/lam), d_j = |N(j)|^-1/2. Each j's sum is split into one part per
        rater, ``a_jv ~ N(d_j vecs_v, 1/(lam |N(j)|))``, which makes the vecs independent
        given the parts: sample the parts given (M, vecs), then vecs given the parts.

        The parts are never stored: vecs_v's conditional needs only
        ``s_v = sum_{j in N(v)} sqrt(|N(j)|) a_jv = |N(v)| vecs_v + sum_j (r_j d_j + zeta_jv - mean_j zeta)``
        where r_j is j's residual and zeta ~ N(0, 1/lam) one draw per (j, v) pair: the part's
        noise, conditioned on the parts of j summing to M_j, scaled by sqrt(|N(j)|).
        """
        m_mean, m_lam = self.hyper[m_name]
        n_own, n_other = M.shape[1], vecs.shape[1]
        own = self.i if other is self.u else self.u
        back = self.rated_by_user if pattern is self.rated_by_item else self.rated_by_item  # pattern^T
        dev = M.device
        d = count.clamp_min(1).rsqrt()[:, None]
        other_count = (self.count_u if other is self.u else self.count_i)[:, None]
        lam = torch.tensor(m_lam, dtype=torch.float32, device=dev)
        for _ in range(self.config.inner):
            v_mean, v_lam = (torch.tensor(x, dtype=torch.float32, device=dev) for x in self.normal_gamma(name, vecs))
            # All factors at once, (n, dim): the pairs' noise summed both ways in one pass over
            # the ratings (in chunks, so it is never held whole), the rest as sparse products.
            resid = M.T - torch.tensor(m_mean, dtype=torch.float32, device=dev) - d * torch.sparse.mm(pattern, vecs.T)
            zeta_own = torch.zeros(n_own, self.k, device=dev)
            zeta_other = torch.zeros(n_other, self.k, device=dev)
            step = 1 << 20
            for s in range(0, len(own), step):
                zeta = self.randn_halves(min(step, len(own) - s), self.k).mul_(lam.rsqrt())
                zeta_own.index_add_(0, own[s : s + step], zeta)
                zeta_other.index_add_(0, other[s : s + step], zeta)
            shift = resid * d - zeta_own / count.clamp_min(1)[:, None]
            total = other_count * vecs.T + zeta_other + torch.sparse.mm(back, shift)
            prec = v_lam + lam * other_count
            post = (v_lam * v_mean + lam * total) / prec
            vecs.copy_((post + self.randn(n_other, self.k) / prec.sqrt()).T)


def pattern(rows: Tensor, cols: Tensor, n_rows: int, n_cols: int) -> Tensor:
    """The (n_rows, n_cols) 0/1 matrix of the (row, col) pairs, as sparse CSR."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # torch calls sparse CSR "beta"
        ones = torch.ones(len(rows), device=rows.device)
        coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), ones, (n_rows, n_cols), check_invariants=False)
        return coo.coalesce().to_sparse_csr()


class PosteriorMean:
    """Running mean of the samples' biases and of U V^T, the latter kept at rank ``dim``."""

    def __init__(self, n_users: int, n_items: int, dim: int, device: torch.device) -> None:
        self.dim, self.count = dim, 0
        self.w_u = torch.zeros(n_users, dtype=torch.float64, device=device)
        self.w_i = torch.zeros(n_items, dtype=torch.float64, device=device)
        self.A = torch.zeros(n_users, 0, dtype=torch.float64, device=device)
        self.B = torch.zeros(n_items, 0, dtype=torch.float64, device=device)
        self.pending: list[tuple[Tensor, Tensor]] = []

    def add(self, s: Sampler) -> None:
        self.count += 1
        self.w_u += s.w_u.double()
        self.w_i += s.w_i.double()
        self.pending.append((s.U.T.double(), s.V.T.double()))
        if len(self.pending) >= 4:
            self.compress()

    def compress(self) -> None:
        """Fold pending samples into (A, B) with A B^T = sum of U V^T, truncated to rank ``dim``."""
        if not self.pending:
            return
        A = torch.cat([self.A, *(u for u, _ in self.pending)], 1)
        B = torch.cat([self.B, *(v for _, v in self.pending)], 1)
        self.pending = []
        qa, ra = torch.linalg.qr(A)
        qb, rb = torch.linalg.qr(B)
        left, sing, right_t = torch.linalg.svd(ra @ rb.T, full_matrices=False)  # rank < dim with few users
        root = sing[: self.dim].sqrt()
        self.A = qa @ left[:, : self.dim] * root
        self.B = qb @ right_t[: self.dim].T * root

    def factors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Mean biases and rank-``dim`` factors (padded with zeros if the rank came out lower)."""
        self.compress()
        c = max(self.count, 1)
        A, B = self.A / math.sqrt(c), self.B / math.sqrt(c)
        pad = self.dim - A.shape[1]
        if pad > 0:
            A = torch.cat([A, A.new_zeros(A.shape[0], pad)], 1)
            B = torch.cat([B, B.new_zeros(B.shape[0], pad)], 1)
        return self.w_u / c, self.w_i / c, A, B

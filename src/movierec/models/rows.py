"""One side's ratings grouped for batched per-row least squares (used by ``als`` and ``bmf``).

With the other side fixed, each user's (or item's) vector and bias is a regression on
the rows ``x_j = [q_j, 1]`` of the items they rated, targets ``y_j = r_uj - b_j``. Its
normal equations come from one product: ``[X, y]^T [X, y]`` holds ``X^T X``, ``X^T y``
and ``y^T y``. Rows are grouped by rating count into blocks of about 32k ratings, each
padded to its longest row with an all-zero rating, so a block is one gather that stays
in cache, one batched product (bmm) and one batched solve (bench/NOTES.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

BLOCK_RATINGS = 1 << 15
"""Padded ratings per block: the gathered rows (4 MB at dim 32) stay in cache for the product."""


class RowBlocks:
    """The ratings of one side (``own``), grouped into padded blocks of rows with similar counts."""

    def __init__(self, own: Tensor, other: Tensor, target: Tensor, n_own: int, n_other: int) -> None:
        self.n_other = n_other
        device = own.device
        self.count = torch.bincount(own, minlength=n_own)
        order = torch.argsort(own, stable=True)
        start = torch.cumsum(self.count, 0) - self.count
        # Padding points at one extra rating: the other side's all-zero row, target 0.
        other_ext = torch.cat([other[order], other.new_full((1,), n_other)])
        target_ext = torch.cat([target[order].float(), target.new_zeros(1, dtype=torch.float32)])
        rows = torch.argsort(self.count, stable=True)
        rows = rows[self.count[rows] > 0]
        counts = self.count[rows].cpu()
        self.blocks: list[tuple[Tensor, Tensor, Tensor]] = []
        s = 0
        while s < len(rows):
            # Rows of similar counts, so little is padding: up to 1.25x the first count (+8).
            end = int(torch.searchsorted(counts, int(counts[s]) * 1.25 + 8, right=True))
            end = min(end, s + max(1, BLOCK_RATINGS // int(counts[end - 1])))
            longest = int(counts[end - 1])
            block = rows[s:end]
            offset = torch.arange(longest, device=device)
            n = self.count[block][:, None]
            pos = torch.where(offset < n, start[block][:, None] + offset, len(order))
            self.blocks.append((block, other_ext[pos], target_ext[pos]))
            s = end

    def equations(self, other_factors: Tensor, other_bias: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Per block: ``(rows, X^T X, X^T y, y^T y)`` with x = [q, 1], y = r - b_other.

        Shapes: rows (B,), ``X^T X`` (B, k+1, k+1), ``X^T y`` (B, k+1), ``y^T y`` (B,); every
        row of the block has at least one rating. The tensors are views of one buffer per
        block: a caller may change ``X^T X`` in place.
        """
        k = other_factors.shape[1]
        table = other_factors.new_zeros(self.n_other + 1, k + 2)
        table[:-1, :k] = other_factors
        table[:-1, k] = 1.0
        table[:-1, k + 1] = -other_bias
        for block, other, target in self.blocks:
            x = table.index_select(0, other.view(-1)).view(*other.shape, k + 2)
            x[..., k + 1] += target
            gram = torch.bmm(x.transpose(1, 2), x)
            yield block, gram[:, : k + 1, : k + 1], gram[:, : k + 1, k + 1], gram[:, k + 1, k + 1]

    def linearised(self, other_factors: Tensor, other_bias: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Per block: ``(rows, x, offset, target)`` for rows whose prediction is a function of x . w + offset.

        ``x`` (B, L, k+1) holds ``[q, 1]`` of each rating's other side, ``offset`` (B, L) its
        bias and ``target`` (B, L) the rating; all three are zero on padding, so padding
        adds nothing to a sum weighted by x.
        """
        k = other_factors.shape[1]
        table = other_factors.new_zeros(self.n_other + 1, k + 2)
        table[:-1, :k] = other_factors
        table[:-1, k] = 1.0
        table[:-1, k + 1] = other_bias
        for block, other, target in self.blocks:
            x = table.index_select(0, other.view(-1)).view(*other.shape, k + 2)
            yield block, x[..., : k + 1], x[..., k + 1], target

    def gathered(self, other_factors: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Per block: ``(rows, x, values, real)`` for least squares with per-rating weights.

        ``x`` (B, L, k) holds the other side's factors of each rating (zeros on padding),
        ``values`` (B, L) the ratings (0 on padding) and ``real`` (B, L) is False on padding.
        """
        k = other_factors.shape[1]
        for block, other, values in self.blocks:
            # Gather, then zero the padding: no copy of the whole table with a zero row appended
            # (6.8 MB at ML-20M size, on every served request).
            real = other != self.n_other
            x = other_factors.index_select(0, torch.where(real, other, 0).view(-1)).view(*other.shape, k)
            yield block, x.masked_fill_(~real[..., None], 0.0), values, real

"""Explanations: "because you rated X", from the ranker's own weights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from movierec.models.base import Ranker, UserRows


def because(
    ranker: Ranker,
    item_ids: Sequence[object],
    items: np.ndarray,
    rated: np.ndarray,
    values: np.ndarray,
    device: torch.device,
) -> list[list]:
    """For each of ``items``: up to three liked ``rated`` item ids adding the most to its ranker score."""
    if not len(items):
        return []
    one = UserRows.one(
        torch.from_numpy(rated.astype(np.int64)).to(device), torch.from_numpy(values.astype(np.float32)).to(device)
    )
    share = ranker.contributions(one, torch.from_numpy(items.astype(np.int64)).to(device))
    if share is None:  # a ranker that lists the same for everyone has nothing to explain
        return [[] for _ in items]
    liked = values >= values.mean()
    reasons = []
    for contrib in share.cpu().numpy():
        usable = np.flatnonzero(liked & (contrib > 0))
        best = usable[np.lexsort((rated[usable], -contrib[usable]))][:3]
        reasons.append([item_ids[int(rated[j])] for j in best])
    return reasons

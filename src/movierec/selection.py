"""Choosing on the validation part what ``train`` cannot know in advance: how lists are made.

No one setting of a ranker suits every log: on ml-latest-small (sparse, a long tail of
items rated once) EASE wants a light ridge and a popularity discount; on denser logs a
heavier ridge and no discount (bench/NOTES.md). So ``train`` tries a few candidates of
the ranker's settings (``ModelSpec.candidates``) and of ``ListConfig`` (the discount, and
whether the rater's predictions reorder the list), each ranker fitted on the fit part
alone, and scores every combination's lists on the validation part by NDCG@10. The
defaults (the first candidate of each) stand unless another combination beats them by
``MARGIN`` (``SMALL_MARGIN`` on a small validation part): settings a few percent apart
on validation are a coin toss apart on test (bench/NOTES.md), and picking the top score
would only pick noise. Test ratings are never
looked at. The ranker is then fitted again, with the chosen settings, on fit and
validation together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import Tensor

from movierec import models
from movierec.data.ratings import Ratings
from movierec.evaluation import evaluate_ranking, relevance_of
from movierec.models.base import Ranker, RatingModel, UserRows
from movierec.progress import Progress
from movierec.recommend import ListConfig, Recommender

OnFitPart = Callable[[Ranker, object, ListConfig], Recommender]
"""(ranker, its config, list settings) -> a recommender of the fit part alone, its counts derived once."""
FitRanker = Callable[[object, Callable[[Ranker], float] | None, str], tuple[Ranker, object]]
"""(config, rank, label) -> the ranker fitted on the fit part and its config (see ``choose``)."""

DISCOUNTS = (0.2, 0.0, 0.1, 0.3)
"""Popularity discounts tried (``ListConfig.discount``), the default first."""
MARGIN = 0.02
"""How much better (relatively) than the defaults' validation NDCG@10 another choice must be."""
SMALL_MARGIN, SMALL_VAL = 0.10, 20_000
"""The margin for a validation part of fewer than ``SMALL_VAL`` ratings, which tells settings a
few percent apart no better than a coin: on ml-latest-small (about 4,000) the best of 24 on
validation beat the defaults by 3.6% on seed 2 and lost to them by 1.4% on test
(bench/NOTES.md). A setting that is far better still shows."""
MAX_USERS = 2000
"""Validation users whose lists score each candidate (a seeded sample beyond that)."""


class Remembered(Ranker):
    """A fitted ranker whose scores for a batch of rows are computed once and then recalled.

    Every list setting compared on one ranker fit ranks the same validation users from
    the same scores; only the discount and the reordering differ. On ml-latest-small the
    ranker's scores were most of each comparison's time (EASE: a sparse product with the
    9,724 x 9,724 matrix for every setting).
    """

    def __init__(self, ranker: Ranker) -> None:
        super().__init__(ranker.n_items, ranker.weighting)
        self.ranker = ranker
        self.rating_max.copy_(ranker.rating_max)  # the popular list of users with no ratings reads the scale
        self.rating_floor.copy_(ranker.rating_floor)
        self.known: dict[tuple[bytes, ...], Tensor] = {}

    def score(self, rows: UserRows) -> Tensor:
        key = tuple(t.cpu().numpy().tobytes() for t in (rows.indptr, rows.items, rows.ratings))
        if key not in self.known:
            self.known[key] = self.ranker.score(rows)
        return self.known[key].clone()  # the caller discounts its copy in place


class RememberedRatings(RatingModel):
    """A fitted rater whose prediction for a (user, item) pair is computed once and then recalled.

    The list settings reorder overlapping candidates (each discount's and each ridge's top
    50 share most items): on ml-latest-small the blend's knn member predicted the same
    pairs for every setting that reorders.
    """

    def __init__(self, rater: RatingModel) -> None:
        super().__init__()
        self.rater, self.n_users, self.n_items = rater, rater.n_users, rater.n_items
        self.keys = np.empty(0, dtype=np.int64)  # sorted
        self.values = torch.empty(0)

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        keys = user_idx.cpu().numpy() * self.n_items + item_idx.cpu().numpy()
        pos = np.searchsorted(self.keys, keys)
        missing = pos >= len(self.keys)
        missing[~missing] = self.keys[pos[~missing]] != keys[~missing]
        if missing.any():
            new, first = np.unique(keys[missing], return_index=True)
            at = torch.from_numpy(np.flatnonzero(missing)[first]).to(user_idx.device)
            values = self.rater(user_idx[at], item_idx[at]).to(self.values)
            merged = np.concatenate([self.keys, new])
            order = np.argsort(merged, kind="stable")
            self.keys, self.values = merged[order], torch.cat([self.values, values])[torch.from_numpy(order)]
            pos = np.searchsorted(self.keys, keys)
        return self.values[torch.from_numpy(pos)].to(user_idx.device)


@dataclass(frozen=True)
class Choice:
    """What was chosen for the lists, and what else was tried."""

    ranker_config: object
    """The ranker's settings."""
    lists: ListConfig
    """How lists combine the ranker and the rater."""
    ndcg: float | None
    """The chosen combination's validation NDCG@10 (None when nothing was compared)."""
    tried: list[dict]
    """Every combination scored: ``ranker_config``, ``lists``, ``ndcg``."""
    margin: float = MARGIN
    """How much another combination had to beat the defaults by."""

    def describe(self, ranker: str, rater: str | None) -> str:
        fields = asdict(self.ranker_config)  # type: ignore[call-overload]
        settings = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
        how = f"reordered by {rater}'s predicted ratings" if self.lists.gate and rater else "in the ranker's order"
        line = f"lists: {ranker} ({settings}), popularity discount {self.lists.discount:g}, {how}"
        if self.ndcg is None:
            return f"{line} (the defaults)"
        first = self.tried[0]
        kept = first["lists"] == asdict(self.lists) and first["ranker_config"] == fields
        how_chosen = (
            f"the defaults: none of the other {len(self.tried) - 1} beat them by {self.margin:.0%}"
            if kept
            else (f"beat the defaults ({first['ndcg']:.4f}) by over {self.margin:.0%} among {len(self.tried)}")
        )
        return f"{line}; {how_chosen} on the validation part (NDCG@10 {self.ndcg:.4f})"


def choose(
    on_fit_part: OnFitPart,
    rated: bool,
    fit_part: Ratings,
    val_part: Ratings | None,
    ranker: str,
    fit_ranker: FitRanker,
    *,
    ranker_config: object | None = None,
    lists: ListConfig | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Choice:
    """The best ranker settings and list config on ``val_part``; ``rated``: there is a rater to reorder lists.

    ``on_fit_part`` makes the recommender of the fit part alone that each try is scored as;
    ``fit_ranker(config, rank, label)`` fits the ranker on the fit part, ``rank`` giving the
    validation NDCG@10 of its own lists for a fit that stops when that stops rising, and
    returns it with its config (the sweeps it kept). A ``ranker_config`` or ``lists`` given is
    kept as it is (its sweeps too). With no validation part (or none of its ratings
    relevant), the defaults. ``progress`` hears of each fit and each setting scored.
    """
    progress = progress or Progress()
    spec = models.get(ranker)
    configs = [ranker_config] if ranker_config is not None else []
    if not configs and spec.candidates:
        configs = spec.candidates(fit_part.n_users, fit_part.n_items, len(fit_part))
    configs = configs or [spec.config_type()]
    gates = (True, False) if rated else (False,)
    candidates = [lists] if lists is not None else [ListConfig(gate=g, discount=d) for g in gates for d in DISCOUNTS]
    default = Choice(configs[0], lists or ListConfig(gate=rated), None, [])
    if val_part is None or len(val_part) == 0 or (len(configs) == 1 and len(candidates) == 1):
        return default
    margin = MARGIN if len(val_part) >= SMALL_VAL else SMALL_MARGIN
    relevance = relevance_of(fit_part)
    if not (val_part.rating >= relevance).any():
        return default
    remembered: RatingModel | None = None  # one for every try: the rater is the same
    tried = []
    best: tuple[float, object, ListConfig] | None = None  # the defaults, then what clearly beats them

    def rank(fitted: Ranker) -> float:  # the ranker's own lists: what its sweeps must improve
        alone = on_fit_part(fitted, None, ListConfig(gate=False, discount=0.0))
        return evaluate_ranking(alone, val_part, relevance=relevance, max_users=MAX_USERS, seed=seed)["ndcg"]

    for number, config in enumerate(configs, 1):
        label = ranker if len(configs) == 1 else f"{ranker}, settings {number} of {len(configs)}"
        fitted_ranker, config = fit_ranker(config, rank if ranker_config is None else None, label)
        # Every list setting ranks the same users from the same scores and reorders mostly the same
        # candidates: the ranker's scores and the rater's pairs are computed once and recalled.
        fitted = on_fit_part(Remembered(fitted_ranker).eval(), config, candidates[0])
        if fitted.rater is not None:
            remembered = remembered or RememberedRatings(fitted.rater).eval()
            fitted = replace(fitted, rater=remembered)
        with progress.phase(f"{label}: scoring {len(candidates)} list settings", total=len(candidates)) as phase:
            for scored_so_far, candidate in enumerate(candidates, 1):
                scored = evaluate_ranking(
                    replace(fitted, lists=candidate), val_part, relevance=relevance, max_users=MAX_USERS, seed=seed
                )
                tried.append({"ranker_config": asdict(config), "lists": asdict(candidate), "ndcg": scored["ndcg"]})  # type: ignore[call-overload]
                if best is None or scored["ndcg"] > best[0] * (1 + margin):
                    best = (scored["ndcg"], config, candidate)
                phase.advance(scored_so_far)
    assert best is not None
    return Choice(best[1], best[2], best[0], tried, margin)

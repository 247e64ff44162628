"""The contracts models keep, and the record that registers a model by name.

Two kinds of model, each a small ``nn.Module`` that sees only contiguous indices:

- a **rater** (``RatingModel``) predicts a rating *centred on the training mean*;
  adding the mean back, clipping to the rating scale and handling unknown ids is the
  recommender's job, not the model's;
- a **ranker** (``Ranker``) scores every item for a user given by the items they rated
  (and how), higher meaning more worth listing; its scores are not ratings.

A recommender pairs one of each: the ranker orders the list, the rater says what the
user would likely rate each listed item.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from movierec import stored
from movierec.errors import ConfigError
from movierec.stored import MAX_SCALE


class RatingModel(nn.Module):
    """Base class: ``forward(user_idx, item_idx)`` -> centred predicted ratings, shape (B,)."""

    n_users: int
    n_items: int

    def penalty(self, user_idx: Tensor, item_idx: Tensor) -> Tensor | float:
        """Regulariser added to a batch's mean squared error; none by default."""
        return 0.0

    def score(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        """Centred predictions for every pair of ``user_idx`` (B,) and ``item_idx`` (N,): shape (B, N).

        The default runs ``forward`` on the B*N pairs; factor models override it with a
        matrix product. Callers keep B*N bounded (see ``recommend``).
        """
        b, n = len(user_idx), len(item_idx)
        users = user_idx.repeat_interleave(n)
        items = item_idx.repeat(b)
        return self(users, items).view(b, n)

    def item_vectors(self) -> Tensor | None:
        """Learned item representations (n_items, d) for similar-item search; None if the model has none."""
        return None

    def check(self) -> None:
        """Raise ValueError if loaded state would index out of range; models with index tensors override it."""

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor] | None:
        """A new user from their centred ratings ``target`` of ``item_idx``, the item side frozen.

        Returns a scorer mapping item indices (N,) to centred predictions (N,) for that
        user, without retraining; None when the model cannot fold users in (the
        recommender then uses its bias-only fallback and says so).
        """
        return None


@dataclass(frozen=True)
class UserRows:
    """The rated items of a batch of users, as CSR: row r is ``items[indptr[r]:indptr[r + 1]]``."""

    indptr: Tensor
    """int64 (B + 1,): where each row starts."""
    items: Tensor
    """int64 (nnz,): item indices, each row's in any order without repeats."""
    ratings: Tensor
    """float32 (nnz,): the rating of each entry (1.0 throughout for an implicit log)."""
    users: Tensor | None = None
    """int64 (B,): the rows' user indices when they are users the model was trained with;
    None for new users. Rankers score from the rows alone; this is for raters used as rankers."""

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row_of_entry(self) -> Tensor:
        """int64 (nnz,): the row each entry belongs to."""
        counts = self.indptr[1:] - self.indptr[:-1]
        return torch.repeat_interleave(torch.arange(self.n_rows, device=self.indptr.device), counts)

    @classmethod
    def one(cls, items: Tensor, ratings: Tensor) -> UserRows:
        """A single row: one new user's ratings."""
        indptr = torch.tensor([0, len(items)], dtype=torch.int64, device=items.device)
        return cls(indptr, items.to(torch.int64), ratings.to(torch.float32))


class Ranker(nn.Module):
    """Base class of rankers: ``score(rows)`` -> (B, n_items), higher is better.

    A ranker is a function of a user's rated items, so a user it was trained with and a
    new user given by a few ratings take the same path, and nothing per user is stored.
    Scores are comparable within a row only. Items the user rated are scored like any
    other; leaving them out of a list is the recommender's job.
    """

    n_items: int
    rating_max: Tensor
    """The top of the rating scale, to turn a rating into the weight of its evidence."""
    rating_floor: Tensor
    """Where a rating would weigh nothing: one step of the scale's grid below its lowest rating
    (``Ratings.rating_floor``; 0 on MovieLens's 0.5-5 and 1-5, so there weights are r / r_max)."""

    def __init__(self, n_items: int, weighting: str) -> None:
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
        self.n_items, self.weighting = n_items, weighting
        self.register_buffer("rating_max", torch.ones(()))
        self.register_buffer("rating_floor", torch.zeros(()))

    def weights(self, ratings: Tensor) -> Tensor:
        """How much each rating says the user wants the item: (r - floor) / (r_max - floor), or 1 for ``binary``.

        Every rating is evidence of interest (people rate what they chose to watch), and a
        high one more so: on ml-latest-small's validation parts, EASE weighted by r / 5 gave
        NDCG@10 8-10% above EASE on the 0/1 matrix (bench/NOTES.md). Measured from the
        floor, not from zero, the weights do not depend on where zero sits on the scale: a
        -2.5..2 log weighs its ratings as the same log on 0.5..5 does.
        """
        if self.weighting == "binary":
            return torch.ones_like(ratings, dtype=torch.float32)
        return ((ratings.float() - self.rating_floor) / (self.rating_max - self.rating_floor)).clamp_min(0.0)

    def score(self, rows: UserRows) -> Tensor:
        """float32 (B, n_items): how worth listing each item is for each row's user."""
        raise NotImplementedError

    def contributions(self, rows: UserRows, item_idx: Tensor) -> Tensor | None:
        """float32 (len(item_idx), nnz) for a single row: each rated item's share of each item's score.

        ``score(rows)[0, item_idx]`` is the sum of each row of the result (up to rounding),
        so "because you rated X" names the rated items that add the most. None for a
        ranker whose scores do not come from the user's items (nothing to explain).
        """
        return None

    def similar(self, item_idx: Tensor) -> Tensor:
        """float32 (len(item_idx), n_items): how alike each item is to each given one (higher: more).

        Rankers without a similarity of their own leave this out; the recommender then
        uses co-rating similarity."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise ValueError if loaded state would index out of range or weigh ratings by nonsense.

        Rankers with index tensors extend it (and call it)."""
        top, floor = float(self.rating_max), float(self.rating_floor)
        if not (math.isfinite(top) and math.isfinite(floor) and floor < top and abs(top) <= MAX_SCALE):
            raise ValueError(f"ranker.rating_max {top:g} must be a finite number above ranker.rating_floor {floor:g}")


WEIGHTINGS = ("rating", "binary")
"""How a ranker weighs a rating as evidence: ``rating`` (r / r_max) or ``binary`` (every rating 1)."""


@torch.no_grad()
def predict_centred(model: RatingModel, users: Tensor, items: Tensor, batch: int = 65536) -> Tensor:
    """The model's centred predictions for index pairs, in batches, in eval mode.

    Batches are taken in user order: a model that works a user at a time (``knn`` builds
    each user's rated row once per call) then sees each user in one or two batches, not
    in every one (at ML-20M size: 330 s down to seconds for the training ratings).
    """
    was_training = model.training
    if was_training:  # eval() walks every submodule: a served request should not pay for it
        model.eval()
    if 0 < len(users) <= batch:  # one batch: no order to keep (a served list's few candidates)
        out = model(users, items).to(torch.get_default_dtype())
    else:
        order = torch.argsort(users, stable=True)
        out = torch.empty(len(users), device=users.device)
        for s in range(0, len(users), batch):
            rows = order[s : s + batch]
            out[rows] = model(users[rows], items[rows])
    if was_training:
        model.train()
    return out


@dataclass(frozen=True)
class RaterData:
    """What a rater fitted by sweeps gets: the fit part, centred, and the validation part."""

    user_idx: Tensor
    """int64 (n,): the fit ratings' users."""
    item_idx: Tensor
    """int64 (n,): the fit ratings' items."""
    target: Tensor
    """float32 (n,): the fit ratings, centred on the training mean."""
    generator: torch.Generator
    """The run's random generator (seeded from the training seed)."""
    val: tuple[Tensor, Tensor, Tensor] | None = None
    """The validation part as (user_idx, item_idx, centred target), or None: for fits that
    average or weigh several predictors on held-out ratings (a sampler's running mean, a blend)."""
    bounds: tuple[float, float] | None = None
    """The rating scale's ends, centred like the targets (lowest - mean, highest - mean): for
    models whose predictions saturate at the ends of the scale."""


class Sweeps:
    """How a model is fitted, one sweep at a time; the training loop drives it.

    A sweep is one pass over the training data: an epoch of gradient steps, one round of
    alternating least squares, one Gibbs sample, or the whole of a one-pass fit. The loop
    (``movierec.training.run``) times each sweep, validates, keeps the history, reports
    progress, stops early and keeps the best state; a model supplies only the sweep.
    """

    planned: int | None = None
    """Sweeps this fit always makes (1 for a one-pass fit, a ranker's own count); None: the training config's epochs."""
    stops_early: bool = True
    """False when the model is whole only after ``finish`` (a sampler's mean): no early stop, no best state."""
    validates_itself: bool = False
    """True when ``val_rmse`` gives each sweep's validation figure (a sampler's running mean's), not the loop."""
    resumable: bool = False
    """True when the model's state (and ``optimizer``'s) is all a sweep needs: a checkpoint can resume the fit."""
    optimizer: torch.optim.Optimizer | None = None
    """The optimiser whose state a checkpoint keeps with the model's; None: none."""

    def sweep(self, epoch: int) -> float | None:
        """One sweep (``epoch`` counts from 0); returns its training loss, or None where there is none."""
        raise NotImplementedError

    def val_rmse(self) -> float | None:
        """This sweep's own validation RMSE, for fits that ``validates_itself``."""
        return None

    def finish(self, validate: Callable[[], float | None]) -> float | None:
        """After the last planned sweep: complete the model; returns its validation RMSE if that changed."""
        return None


def fit_quietly(fitter: Sweeps, sweeps: int) -> None:
    """Every sweep of ``fitter`` and its finish, no validation or history: for a model's parts (a blend's members)."""
    for epoch in range(fitter.planned or sweeps):
        fitter.sweep(epoch)
    fitter.finish(lambda: None)


@dataclass(frozen=True)
class RankerData:
    """What a ranker's fit gets: the training ratings as they are (not centred)."""

    user_idx: Tensor
    """int64 (n,): each rating's user."""
    item_idx: Tensor
    """int64 (n,): each rating's item."""
    rating: Tensor
    """float32 (n,): the ratings (1.0 throughout for an implicit log)."""
    n_users: int
    """Users in the index (some may have no ratings here)."""
    rating_max: float
    """Top of the rating scale."""
    generator: torch.Generator
    """The run's random generator."""
    genres: Tensor | None = None
    """float32 (n_genres, n_items): 1 where an item has a genre; None when the data has no genres."""
    rating_floor: float = 0.0
    """Where a rating would weigh nothing (``Ratings.rating_floor``): below the scale's lowest rating."""

    def rows(self) -> UserRows:
        """Every user's ratings, as one batch of rows (users with none get an empty row)."""
        order = torch.argsort(self.user_idx, stable=True)
        counts = torch.bincount(self.user_idx, minlength=self.n_users)
        indptr = torch.zeros(self.n_users + 1, dtype=torch.int64, device=counts.device)
        indptr[1:] = torch.cumsum(counts, 0)
        return UserRows(indptr, self.item_idx[order], self.rating[order].float())


@dataclass(frozen=True)
class ModelSpec:
    """How to make, and by default train, one kind of model."""

    name: str
    """The name users pass as ``--model`` (raters) or ``--ranker`` (rankers)."""
    summary: str
    """One line for ``movierec models``."""
    config_type: type
    """Frozen dataclass of the model's hyperparameters (saved in the manifest)."""
    build: Callable[[Any, int, int, torch.Generator], Any]
    """``build(config, n_users, n_items, generator)``: a freshly initialised model."""
    training: dict
    """Defaults for ``TrainConfig`` fields this model wants (epochs, lr, optimizer, ...)."""
    sweeps: Callable[[Any, Any, Any], Sweeps] | None = None
    """For models not trained by gradient steps: ``sweeps(model, config, data)`` -> how to fit it
    (``data`` a ``RaterData`` for raters, a ``RankerData`` for rankers); None: the gradient loop."""
    kind: str = "rater"
    """``rater`` (predicts ratings) or ``ranker`` (orders lists)."""
    one_pass: bool = False
    """True for models fitted in one pass (closed form): ``--epochs`` means nothing to them."""
    space: Callable[[Any], tuple[dict, dict]] | None = None
    """What ``movierec tune`` searches: an Optuna trial -> (config fields, training settings); None: nothing."""
    training_by_size: Callable[[int], dict] | None = None
    """Training defaults that depend on the log: ``training_by_size(n_train)`` -> fields over
    ``training`` for ``n_train`` training ratings; flags given still override them."""
    candidates: Callable[[int, int, int], list] | None = None
    """``candidates(n_users, n_items, n_ratings)`` -> the few configs ``train`` compares on the
    validation part, the defaults first: a ranker's by NDCG@10 (``movierec.selection``), a
    rater's by RMSE (``movierec.fitting``); None or empty: the defaults alone."""
    too_large: Callable[[int, int], str | None] | None = None
    """``too_large(n_users, n_items)`` -> why this catalogue is too large for the model, or None
    where it fits; ``--ranker auto`` then passes it over."""
    as_fitted: Callable[[Any, Any], Any] | None = None
    """``as_fitted(config, data)`` -> the config as the data lets it apply (a setting the data
    cannot use, set to what the fit did), so reports and the manifest say what was fitted."""
    saved_before: dict = field(default_factory=dict)
    """Config fields added after configs were first saved -> what a saved config without
    the field meant (EASE's ``genres``: 0, as it fitted then); a new config's default may differ."""

    def saved_config(self, fields: dict) -> Any:
        """The config a manifest or tuned-config file saved as ``fields``, each value of its field's kind.

        The file is JSON from anywhere, so a value of the wrong kind ("abc", true, null for a
        number) or size (a dim of 10^9, which would ask for terabytes) is a ConfigError naming
        the field (``stored.check``), not a TypeError inside or an allocation that cannot succeed.
        """
        saved = {**self.saved_before, **fields}
        for f in dataclasses.fields(self.config_type):
            if f.name in saved:
                try:
                    stored.check(saved[f.name], f.default, f.name)
                except stored.Invalid as exc:
                    raise ConfigError(str(exc)) from None
        return self.config_type(**saved)


def ranker_spec(
    name: str,
    summary: str,
    config_type: type,
    build: Callable[[Any, int, int, torch.Generator], Any],
    sweeps: Callable[[Any, Any, Any], Sweeps],
    **more: Any,
) -> ModelSpec:
    """A ranker's spec: its ``sweeps`` count themselves (``Sweeps.planned``), so the loop's epochs stay 1."""
    return ModelSpec(name, summary, config_type, build, training={"epochs": 1}, sweeps=sweeps, kind="ranker", **more)

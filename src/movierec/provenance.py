"""Whether ratings are the ones a model was trained on, by content rather than by name or size.

A model keeps its training ratings (``Recommender.history``) and their fingerprint
(``data.ratings.fingerprint``, recorded in the manifest). ``evaluate`` re-splits a log to
find the model's own held-out part only when that split gives back exactly those training
ratings, and warns when ratings given as a test part were seen in training: either would
otherwise score a model on what it learnt, and overstate it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from movierec.data.ids import UNKNOWN
from movierec.data.ratings import Ratings, fingerprint
from movierec.errors import ConfigError

if TYPE_CHECKING:
    from movierec.recommend import Recommender


def check_same_training(recommender: Recommender, fit: Ratings, val: Ratings) -> None:
    """Refuse a re-split whose training parts (``fit`` and ``val``) are not the model's training ratings."""
    same_ids = recommender.index.n_users == fit.index.n_users and recommender.index.n_items == fit.index.n_items
    if same_ids and fingerprint(fit.index, fit.by_user(val)) == fingerprint(recommender.index, recommender.history):
        return
    raise ConfigError(
        f"{fit.name} split as in training does not give back the ratings this model was trained on (the file "
        "differs, or its rows are in another order), so its held-out part would overlap training; score "
        "held-out ratings with --test PATH"
    )


def seen_in_training(recommender: Recommender, part: Ratings) -> int:
    """How many of ``part``'s (user, item) pairs the model was trained on."""
    users = recommender.index.find_many("user", part.index.user_ids[part.user_idx])
    items = recommender.index.find_many("item", part.index.item_ids[part.item_idx])
    known = (users != UNKNOWN) & (items != UNKNOWN)
    n_items = max(recommender.index.n_items, 1)
    history = recommender.history
    trained = history.user_of_entry() * n_items + history.items.astype(np.int64)
    return int(np.isin(users[known] * n_items + items[known], trained).sum())


def check_test(recommender: Recommender, part: Ratings) -> str | None:
    """Refuse a test part wholly seen in training; a note to show when part of it was, else None."""
    seen = seen_in_training(recommender, part)
    if seen and seen == len(part):
        raise ConfigError(
            f"{part.name}: every one of its {len(part):,} ratings is one the model was trained on (is it the "
            "training file?), so scores on it say nothing of new ratings; score held-out ratings"
        )
    if seen:
        return (
            f"note: {seen:,} of the {len(part):,} ratings in {part.name} were in the training data; "
            "the scores below overstate the model"
        )
    return None

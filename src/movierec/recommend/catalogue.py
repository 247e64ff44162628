"""The items as people see them: raw ids, titles, how often rated, and title search."""

from __future__ import annotations

import re

import numpy as np

from movierec.recommend.lists import ListItem, finite

_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")
_ARTICLE = re.compile(r"^(.*), (the|a|an|les|la|le|l'|il|el|der|die|das)(\s*\(\d{4}\))?$", re.IGNORECASE)


class Catalogue:
    """Raw item ids and titles by item index, with the rows that lists and searches show.

    Search ranks the whole title (with or without its "(year)", and with a trailing
    article moved back to the front: "Matrix, The (1999)" is found as "the matrix"),
    then titles starting with the query, then the query as whole words, then starting a
    word, then anywhere; within a tier, the most rated first, then the lower item index.
    """

    def __init__(self, item_ids: np.ndarray, titles: np.ndarray | None, item_counts: np.ndarray) -> None:
        self.item_ids = item_ids.tolist()  # plain Python values: rows are built from them
        self.titles = None if titles is None else [str(t) for t in titles]
        self.counts = item_counts
        lowered = [] if self.titles is None else [t.lower() for t in self.titles]
        # Each title as typed in searches: as stored, and with "X, The (1999)" read "the x (1999)".
        self._forms = [(t, _natural(t)) for t in lowered]

    def row(self, item_idx: int) -> dict:
        """``item_id`` and ``title`` (None when the data has no titles)."""
        return {"item_id": self.item_ids[item_idx], "title": None if self.titles is None else self.titles[item_idx]}

    def summary(self, item_idx: int) -> dict:
        """``row`` plus ``n_ratings``, the item's number of training ratings."""
        return {**self.row(item_idx), "n_ratings": int(self.counts[item_idx])}

    def listed(
        self, items: np.ndarray, ratings: np.ndarray | None, rating_source: str | None, because: list | None = None
    ) -> tuple[ListItem, ...]:
        """``ListItem``s of item indices, -1 padding left out; ``ratings`` None: a list without ratings.

        ``because``, where given, holds one entry for each item that is not padding.
        """
        listed = items >= 0
        rated = [None] * int(listed.sum()) if ratings is None else [finite(r) for r in ratings[listed]]
        return tuple(
            ListItem(
                self.item_ids[i],
                self.title(i),
                rating,
                None if ratings is None else rating_source,
                because=() if because is None else tuple(because[j]),
            )
            for j, (i, rating) in enumerate(zip(items[listed].tolist(), rated, strict=True))
        )

    def title(self, item_idx: int) -> str | None:
        return None if self.titles is None else self.titles[item_idx]

    def search(self, query: str, limit: int) -> list[dict]:
        """Item summaries whose title contains ``query`` (case-insensitive), best matches first."""
        q = " ".join(query.lower().split())
        if not q:
            return []
        hits = []
        for i, forms in enumerate(self._forms):
            tier = min((t for t in (_tier(form, q) for form in forms) if t is not None), default=None)
            if tier is not None:
                hits.append((tier, -int(self.counts[i]), i))
        hits.sort()
        return [self.summary(i) for _, _, i in hits[:limit]]


def _natural(title: str) -> str:
    """'matrix, the (1999)' -> 'the matrix (1999)'; other titles unchanged."""
    m = _ARTICLE.match(title)
    return f"{m.group(2)} {m.group(1)}{m.group(3) or ''}" if m else title


def _tier(title: str, q: str) -> int | None:
    at = title.find(q)
    if at < 0:
        return None
    end = at + len(q)
    if title == q or _YEAR.sub("", title) == q:
        return 0
    if at == 0:
        return 1
    starts_word = not title[at - 1].isalnum()
    ends_word = end == len(title) or not title[end].isalnum()
    if starts_word and ends_word:
        return 2
    return 3 if starts_word else 4

"""Lists as JSON bodies: what ``movierec recommend --json`` prints and the HTTP service sends.

The recommender returns typed ``ItemList``s; this is the one place they become JSON-shaped
dicts, so the command line and the server give the same list the same way. Ratings and
scores are rounded to 4 decimals here (the lists keep them whole). Every item of a user's
list carries ``because``; a popular list explains nothing, and says so with ``[]``.
"""

from __future__ import annotations

from movierec.recommend.lists import ItemList, ListItem


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def listed_item(item: ListItem, source: str) -> dict:
    """One item of a user's list: ``item_id``, ``title``, ``rating``, ``rating_source``, ``source``, ``because``."""
    return {
        "item_id": item.item_id,
        "title": item.title,
        "rating": _rounded(item.rating),
        "rating_source": item.rating_source,
        "source": source,
        "because": list(item.because),
    }


def user_list(found: ItemList) -> dict:
    """A user's list: ``items`` and the ``source`` that made it."""
    return {"items": [listed_item(item, found.source) for item in found], "source": found.source}


def known_user_list(user_id: object, found: ItemList) -> dict:
    """A known user's list under their raw id: ``user_id``, ``items``, ``source``."""
    return {"user_id": user_id, **user_list(found)}


def new_user_list(found: ItemList) -> dict:
    """A new user's list and the rated item ids it ``ignored`` (unknown to the model)."""
    return {**user_list(found), "ignored": list(found.ignored)}


def similar_list(item_id: object, found: ItemList) -> dict:
    """The items like ``item_id``: each with its similarity ``score``; ``source`` names the similarity."""
    items = [
        {"item_id": item.item_id, "title": item.title, "score": _rounded(item.score), "source": found.source}
        for item in found
    ]
    return {"item_id": item_id, "items": items, "source": found.source}

"""Top-N lists for many users, streamed to a CSV or Parquet file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from movierec import outdir
from movierec.errors import ConfigError
from movierec.progress import Phase
from movierec.recommend.lists import ItemList, ListItem
from movierec.recommend.ranked import block_size
from movierec.recommend.recommender import Recommender

if TYPE_CHECKING:
    import pyarrow as pa


def write_recommendations(
    recommender: Recommender,
    path: str | Path,
    user_ids: Sequence | None = None,
    *,
    k: int = 10,
    exclude_seen: bool = True,
    phase: Phase | None = None,
) -> int:
    """Write top-``k`` lists for ``user_ids`` (all users when None) to a .csv or .parquet file.

    One row per recommendation: ``user_id``, ``rank`` (1 = best), ``item_id``, ``title``
    (when the model has titles), ``rating`` (predicted; empty without a rating model),
    ``source``. Users are scored in blocks and the file is streamed, so memory stays
    bounded; it is written to a temporary sibling and renamed into place only when
    complete. An existing file is replaced only if it is an earlier recommendations file.
    Returns the number of rows written; ``phase`` (``movierec.progress``) hears of the users done.
    """
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"{path}: write recommendations to a .csv or .parquet file")
    lists = recommender.recommend_many(user_ids, k, exclude_seen=exclude_seen)  # unknown ids fail here
    # Checked now and again just before the rename: scoring every user can take minutes.
    check = partial(outdir.check_file_replaceable, path, is_recommendations, "a recommendations file")
    check()
    index, titled = recommender.index, recommender.titles is not None
    total = index.n_users if user_ids is None else len(user_ids)
    written = done = 0
    writer = None
    with outdir.atomic_file(path, before_replace=check) as tmp:
        for chunk in _chunks(lists, block_size(index.n_items)):
            table = _table(chunk, index.user_ids.dtype, index.item_ids.dtype, titled)
            if writer is None:
                parquet = suffix == ".parquet"
                writer = pq.ParquetWriter(tmp, table.schema) if parquet else pa_csv.CSVWriter(tmp, table.schema)
            writer.write_table(table)
            written += table.num_rows
            done += len(chunk)
            if phase is not None:
                phase.advance(done, total)
        if writer is not None:
            writer.close()
    return written


def _chunks(lists: Iterator[tuple[object, ItemList]], size: int) -> Iterator[list[tuple[object, ItemList]]]:
    """``size`` lists at a time; one empty chunk when there are none, so the file still gets its header."""
    chunk = list(islice(lists, size))
    yield chunk
    while chunk := list(islice(lists, size)):
        yield chunk


def _table(lists: list[tuple[object, ItemList]], user_dtype: np.dtype, item_dtype: np.dtype, titled: bool) -> pa.Table:
    """One row per listed item: user, rank (1 = best), item, title (when the model has titles), rating, source."""
    import pyarrow as pa

    users: list[object] = []
    ranks: list[int] = []
    items: list[ListItem] = []
    sources: list[str] = []
    for user, found in lists:
        users += [user] * len(found)
        ranks += range(1, len(found) + 1)
        items += found.items
        sources += [found.source] * len(found)
    columns = {
        "user_id": pa.array(users, type=pa.from_numpy_dtype(user_dtype)),
        "rank": pa.array(ranks, type=pa.int32()),
        "item_id": pa.array([item.item_id for item in items], type=pa.from_numpy_dtype(item_dtype)),
    }
    if titled:
        columns["title"] = pa.array([item.title for item in items], type=pa.string())
    ratings = np.array([np.nan if item.rating is None else item.rating for item in items], dtype=np.float32)
    columns["rating"] = pa.array(ratings, mask=np.isnan(ratings))
    columns["source"] = pa.array(sources, type=pa.string())
    return pa.table(columns)


HEADERS = (
    ("user_id", "rank", "item_id", "title", "rating", "source"),
    ("user_id", "rank", "item_id", "rating", "source"),
)
"""The columns of a recommendations file, with titles and without: how an earlier one is recognised.

All of them, in order: a file of the user's own that merely starts ``user_id,rank,item_id``
is not one of ours and is never replaced."""


def is_recommendations(path: Path) -> bool:
    """True when ``path`` reads as a file ``write_recommendations`` wrote (and so may be replaced)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return tuple(pq.read_schema(path).names) in HEADERS
    with path.open("rb") as f:
        head = f.readline(4096)
    names = head.rstrip(b"\r\n").replace(b'"', b"").split(b",")
    return tuple(n.decode("utf-8", "replace") for n in names) in HEADERS

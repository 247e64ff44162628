"""Top-N lists for many users, streamed to a CSV or Parquet file."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from movierec import outdir
from movierec.errors import ConfigError
from movierec.progress import Phase
from movierec.recommend.lists import check_k
from movierec.recommend.recommender import BLOCK_PAIRS, Recommender


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
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"{path}: write recommendations to a .csv or .parquet file")
    check_k(k)
    if user_ids is None:
        users = np.arange(recommender.index.n_users, dtype=np.int64)
    else:
        users = np.array([recommender.user_index(u) for u in user_ids], dtype=np.int64)
    # Checked now and again just before the rename: scoring every user can take minutes.
    check = partial(outdir.check_file_replaceable, path, is_recommendations, "a recommendations file")
    check()
    index, titles = recommender.index, recommender.titles
    block = max(1, BLOCK_PAIRS // max(index.n_items, 1))
    written = 0
    writer = None
    with outdir.atomic_file(path, before_replace=check) as tmp:
        for s in range(0, max(len(users), 1), block):
            top = recommender.top_n(users[s : s + block], k, exclude_seen=exclude_seen)
            valid = top.items >= 0
            row_user = np.repeat(top.users, k).reshape(-1, k)[valid]
            rank = np.tile(np.arange(1, k + 1), (len(top.users), 1))[valid]
            items = top.items[valid]
            columns = {
                "user_id": pa.array(index.user_ids[row_user]),
                "rank": pa.array(rank.astype(np.int32)),
                "item_id": pa.array(index.item_ids[items]),
            }
            if titles is not None:
                columns["title"] = pa.array(titles[items].astype(str))
            ratings = top.ratings[valid].astype(np.float32)
            columns["rating"] = pa.array(ratings, mask=np.isnan(ratings))
            columns["source"] = pa.array(np.repeat(top.sources, k).reshape(-1, k)[valid].astype(str))
            table = pa.table(columns)
            if writer is None:
                parquet = suffix == ".parquet"
                writer = pq.ParquetWriter(tmp, table.schema) if parquet else pa_csv.CSVWriter(tmp, table.schema)
            writer.write_table(table)
            written += table.num_rows
            if phase is not None:
                phase.advance(min(s + block, len(users)), len(users))
        if writer is not None:
            writer.close()
    return written


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

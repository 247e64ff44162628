"""Any ratings file: columns found by name, ids kept as they are, every bad row named by line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.data.readers import read_ratings_file
from movierec.data.tables import index_ids
from movierec.errors import DataError

ML_HEADER = "userId,movieId,rating,timestamp\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        read_ratings_file(path, **kwargs)
    return str(info.value)


# --- what reads ----------------------------------------------------------------------


def test_movielens_csv_header_is_recognised(tmp_path):
    path = write(tmp_path, "log.csv", ML_HEADER + "1,10,4.0,100\n2,10,3.5,200\n1,30,5,300\n")
    r = read_ratings_file(path)
    assert len(r) == 3 and r.name == "log.csv"
    assert r.index.user_ids.tolist() == [1, 2] and r.index.item_ids.tolist() == [10, 30]
    assert r.index.item_ids[r.item_idx].tolist() == [10, 10, 30]
    assert r.rating.tolist() == [4.0, 3.5, 5.0] and r.rating.dtype == np.float32
    assert r.timestamp.tolist() == [100, 200, 300]
    assert r.user_idx.dtype == np.int32 and r.item_idx.dtype == np.int32


def test_crlf_bom_and_blank_lines(tmp_path):
    path = write(tmp_path, "log.csv", b"\xef\xbb\xbfuserId,movieId,rating\r\n1,10,4\r\n\r\n2,20,3\r\n")
    r = read_ratings_file(path)
    assert len(r) == 2 and r.timestamp is None


def test_string_ids_stay_strings_and_columns_are_named_by_flags(tmp_path):
    path = write(tmp_path, "log.tsv", "who\twhat\tstars\twhen\nalice\tm-1\t4\t10\nbob\t007\t2\t20\n")
    r = read_ratings_file(path, user_col="who", item_col="what", rating_col="stars", time_col="when")
    assert r.index.user_ids.tolist() == ["alice", "bob"]
    assert r.index.item_ids.tolist() == ["007", "m-1"]  # strings, "007" not turned into 7
    assert r.index.item_ids[r.item_idx].tolist() == ["m-1", "007"]
    assert r.timestamp.tolist() == [10, 20]


def test_quoted_fields_and_other_separators(tmp_path):
    path = write(tmp_path, "log.txt", 'user;item;rating\n"a;1";x;4.5\nb;y;1\n')
    r = read_ratings_file(path)
    assert r.index.user_ids.tolist() == ["a;1", "b"]


def test_headerless_file_is_user_item_rating_timestamp(tmp_path):
    path = write(tmp_path, "u.txt", "1\t10\t4\t881250949\n2\t10\t5\t881250950\n")
    r = read_ratings_file(path)
    assert len(r) == 2 and r.timestamp.tolist() == [881250949, 881250950]


def test_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    table = pa.table({"user_id": ["u1", "u2"], "item_id": [5, 6], "rating": [1.5, 2.0], "ts": [1, 2]})
    pq.write_table(table, path)
    r = read_ratings_file(path, time_col="ts")
    assert r.index.user_ids.tolist() == ["u1", "u2"] and r.index.item_ids.tolist() == [5, 6]
    assert r.timestamp.tolist() == [1, 2]


def test_rating_range_widens_the_scale(tmp_path):
    path = write(tmp_path, "log.csv", "user,item,rating\n1,1,7\n1,2,10\n")
    assert read_ratings_file(path, rating_range=(1, 10)).rating.tolist() == [7, 10]


# --- what does not, and how it says so ------------------------------------------------


def test_missing_column_lists_columns_and_flag(tmp_path):
    path = write(tmp_path, "log.csv", "uid,movieId,rating\n1,1,4\n")
    msg = error(path)
    assert str(path) in msg and "['uid', 'movieId', 'rating']" in msg and "--user-col" in msg
    assert "--time-col" in error(path, user_col="uid", time_col="when")


def test_one_column_named_for_two_fields_is_refused(tmp_path):
    path = write(tmp_path, "log.csv", "userId,movieId,rating\n1,1,4\n")
    msg = error(path, user_col="movieId")  # the item column is found by its name, movieId, too
    assert "'movieId' would hold both the user and the item" in msg and "--item-col" in msg


def test_non_numeric_rating(tmp_path):
    path = write(tmp_path, "log.csv", ML_HEADER + "1,1,4,5\n\n2,1,four,5\n")
    assert error(path) == f"{path}:4: rating 'four' is not a number; fix or delete the line"


def test_out_of_range_rating_names_the_flag(tmp_path):
    path = write(tmp_path, "log.csv", ML_HEADER + "1,1,4,5\n2,1,6,5\n")
    msg = error(path)
    assert msg.startswith(f"{path}:3: rating 6 ") and "--rating-range LO,HI" in msg


def test_missing_value(tmp_path):
    path = write(tmp_path, "log.csv", ML_HEADER + "1,1,4,5\n2,1,3,5\n3,,3,5\n")
    assert error(path).startswith(f"{path}:4: missing item id (empty cell)")


def test_blank_cell_is_missing(tmp_path):
    path = write(tmp_path, "log.csv", "user,item,rating\nalice,x,4\n  ,y,3\n")
    assert error(path).startswith(f"{path}:3: missing user id")


def test_repeated_pair_names_both_lines(tmp_path):
    path = write(tmp_path, "log.csv", ML_HEADER + "1,1,4,5\n2,2,3,5\n3,3,3,5\n2,2,1,9\n")
    msg = error(path)
    assert msg.startswith(f"{path}:5: user 2 rated item 2 twice, on lines 3 and 5")


def test_empty_file_and_header_only(tmp_path):
    assert "empty" in error(write(tmp_path, "a.csv", ""))
    assert "no rating rows" in error(write(tmp_path, "b.csv", ML_HEADER))


def test_undecodable_line(tmp_path):
    path = write(tmp_path, "log.csv", b"user,item,rating\nalice,x,4\nbob,caf\xe9,3\n")
    msg = error(path)
    assert msg.startswith(f"{path}:3: byte b'\\xe9'") and "UTF-8" in msg


def test_a_line_longer_than_a_read_block_is_named(tmp_path):
    # A file with no line breaks (or one huge cell) is the wrong file, not a pyarrow puzzle.
    path = write(tmp_path, "log.csv", "userId,movieId,rating\n1,1,4\n1,2," + "9" * 3_000_000 + "\n2,1,3\n")
    msg = error(path)
    assert msg.startswith(f"{path}:3: the line is 3,000,005 bytes long") and "straddl" not in msg


def test_wrong_number_of_fields(tmp_path):
    path = write(tmp_path, "log.csv", ML_HEADER + "1,1,4,5\n2,1,3\n")
    msg = error(path)
    assert msg.startswith(f"{path}:3: found 3 fields") and "'2,1,3'" in msg


def test_fractional_timestamp(tmp_path):
    path = write(tmp_path, "log.csv", ML_HEADER + "1,1,4,5\n2,1,3,5.5\n")
    assert error(path).startswith(f"{path}:3: timestamp '5.5' is not whole seconds")


def test_earliest_problem_is_reported(tmp_path):
    path = write(tmp_path, "log.csv", ML_HEADER + "1,1,4,5\n2,1,x,5\n3,,3,5\n")
    assert error(path).startswith(f"{path}:3: rating 'x'")


def test_parquet_errors_name_the_row(tmp_path):
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [1, None], "rating": [4.0, 3.0]}), path)
    assert error(path) == f"{path}: row 2: missing item id (empty cell); fill it in or delete the line"


@pytest.mark.parametrize(
    ("columns", "says"),
    [
        ({"user": ["1", "2", None]}, "row 3: missing user id (empty cell)"),  # a null among strings
        ({"user": [1.0, 2.0, 1e300]}, "row 3: user id 1e+300 is beyond signed 64-bit integers"),
        ({"user": [1.0, 2.0, float("inf")]}, "row 3: user id inf is beyond signed 64-bit integers"),
        ({"user": [1.0, 2.5, 3.0]}, "row 2: user id 2.5 is not a whole number"),
        ({"time": [1.0, 1e30, 3.0]}, "row 2: timestamp 1e+30 is beyond signed 64-bit integers"),
    ],
)
def test_parquet_bad_cells_are_named_by_their_own_row(tmp_path, columns, says):
    path = tmp_path / "log.parquet"
    table = {"user": [1, 2, 3], "item": [1, 2, 3], "rating": [4.0, 3.0, 5.0], "time": [1, 2, 3], **columns}
    pq.write_table(pa.table(table), path)
    assert error(path).startswith(f"{path}: {says}")


def test_parquet_unsigned_ids_beyond_int64_are_named(tmp_path):
    path = tmp_path / "log.parquet"
    ids = pa.array([1, 2**64 - 1], pa.uint64())
    pq.write_table(pa.table({"user": ids, "item": pa.array([1, 2], pa.uint64()), "rating": [4.0, 3.0]}), path)
    assert error(path) == f"{path}: row 2: user id {2**64 - 1} is beyond signed 64-bit integers; use smaller ids"
    small = tmp_path / "small.parquet"
    pq.write_table(pa.table({"user": pa.array([1, 2], pa.uint64()), "item": [1, 2], "rating": [4.0, 3.0]}), small)
    assert read_ratings_file(small).index.user_ids.tolist() == [1, 2]


# --- the id map -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=50))
def test_index_ids_matches_np_unique(ids):
    uniq, inverse = index_ids(pa.chunked_array([ids[: len(ids) // 2], ids[len(ids) // 2 :]], pa.int64()))
    want_uniq, want_inverse = np.unique(np.array(ids, dtype=np.int64), return_inverse=True)
    assert uniq.tolist() == want_uniq.tolist() and inverse.tolist() == want_inverse.tolist()


_ID = st.one_of(st.integers(0, 10**6).map(str), st.text("abxyz-_ é", min_size=1, max_size=6).map(str.strip))


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.tuples(_ID.filter(bool), _ID.filter(bool)), st.sampled_from([0.5, 1.0, 3.5, 5.0]), min_size=1)
)
def test_raw_ids_round_trip_through_a_file(tmp_path_factory, pairs):
    """Whatever the ids (ints, strings, a mix), each row reads back as the raw ids written."""
    path = tmp_path_factory.mktemp("ids") / "log.csv"
    lines = [f'"{u}","{i}",{r}' for (u, i), r in pairs.items()]
    path.write_text("user,item,rating\n" + "\n".join(lines) + "\n", encoding="utf-8")
    r = read_ratings_file(path)
    users = r.index.user_ids[r.user_idx].astype(str)
    items = r.index.item_ids[r.item_idx].astype(str)
    assert dict(zip(zip(users, items, strict=True), r.rating.tolist(), strict=True)) == pairs
    assert list(r.index.user_ids) == sorted(set(r.index.user_ids))


def test_a_bad_file_never_aborts_the_process_on_exit(tmp_path):
    # pyarrow's reader threads once held a Python callback, released while the interpreter
    # exited: about 1 run in 10 then died with SIGABRT after printing the right message.
    import subprocess
    import sys

    bad_value = write(tmp_path, "inf.csv", ML_HEADER + "1,1,4.0,1\n1,2,inf,2\n2,1,3.0,3\n")
    bad_row = write(tmp_path, "row.csv", ML_HEADER + "1,1,4.0,1\n1,2\n2,1,3.0,3\n")
    for k in range(12):
        path = bad_value if k % 2 else bad_row
        result = subprocess.run(
            [sys.executable, "-m", "movierec", "train", "--data", str(path), "--out", str(tmp_path / "m")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr[-1000:]
        assert "terminate called" not in result.stderr and "Traceback" not in result.stderr
        assert ":3:" in result.stderr

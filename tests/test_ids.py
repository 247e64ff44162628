"""Properties of the one id index: raw ids round-trip, unknowns are flagged, order is irrelevant."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.data.ids import UNKNOWN, IdIndex, distinct
from movierec.errors import MovierecError

int_ids = st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=60)
str_ids = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=60)


@given(st.one_of(int_ids, str_ids), st.one_of(int_ids, str_ids))
def test_round_trip(users, items):
    index, user_idx, item_idx = IdIndex.build(np.asarray(users), np.asarray(items))
    assert index.user_ids[user_idx].tolist() == np.asarray(users).tolist()
    assert index.item_ids[item_idx].tolist() == np.asarray(items).tolist()
    np.testing.assert_array_equal(index.user_idx(users), user_idx)
    np.testing.assert_array_equal(index.item_idx(items), item_idx)
    assert sorted(set(user_idx.tolist())) == list(range(index.n_users))


@given(int_ids)
def test_index_does_not_depend_on_row_order(users):
    a, _, _ = IdIndex.build(np.asarray(users), np.asarray(users))
    b, _, _ = IdIndex.build(np.asarray(users[::-1]), np.asarray(users[::-1]))
    np.testing.assert_array_equal(a.user_ids, b.user_ids)


@given(int_ids)
def test_json_round_trip(users):
    index, _, _ = IdIndex.build(np.asarray(users), np.asarray(users))
    again = IdIndex.from_json(index.to_json())
    np.testing.assert_array_equal(again.user_ids, index.user_ids)
    assert again.user_ids.dtype == np.int64


def test_unknown_ids_raise_or_map_to_unknown():
    index, _, _ = IdIndex.build(np.array([10, 20, 30]), np.array(["a", "b", "c"]))
    with pytest.raises(MovierecError, match="unknown user"):
        index.user_idx([20, 99])
    assert index.user_idx([20, 99, 5, 31], strict=False).tolist() == [1, UNKNOWN, UNKNOWN, UNKNOWN]
    assert index.item_idx(["c", "zz"], strict=False).tolist() == [2, UNKNOWN]


def test_string_ids_from_urls_match_integer_ids():
    index, _, _ = IdIndex.build(np.array([10, 20]), np.array([1, 2]))
    assert index.user_idx(["20"]).tolist() == [1]
    assert index.user_idx(["twenty"], strict=False).tolist() == [UNKNOWN]


@given(st.lists(st.integers(-(2**62), 2**62), max_size=300))
def test_distinct_is_numpys_unique(values):
    keys = np.array(values, dtype=np.int64)
    out = distinct(keys)
    assert out.dtype == keys.dtype
    np.testing.assert_array_equal(out, np.unique(keys))


def test_an_id_from_outside_follows_the_ratings_readers_rule():
    index, _, _ = IdIndex.build(np.array([10, 20]), np.array(["a", "b"]))
    for same in (20, "20", "20.0", "20.", "+20", 20.0, np.float32(20.0)):
        assert index.find("user", same) == 1, same
    for other in (20.5, "20.5", " 20", "2e1", float("nan"), float("inf"), 1e300, True, None):
        assert index.find("user", other) == UNKNOWN, other
    assert index.find_many("user", [20.0, "10.0", 3.5]).tolist() == [1, 0, UNKNOWN]
    assert index.find("item", "a") == 0 and index.find("item", 1.0) == UNKNOWN

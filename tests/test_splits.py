"""Properties of the hold-out splits: disjoint, complete, deterministic, and true to their kind."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec import pipeline
from movierec.data.splits import random_split, time_split, user_split
from movierec.errors import ConfigError

fractions = st.floats(0.05, 0.95)


def _partition(a: np.ndarray, b: np.ndarray, n: int) -> None:
    assert len(np.intersect1d(a, b)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([a, b])), np.arange(n))


@given(st.integers(1, 500), fractions, st.integers(0, 2**32 - 1))
def test_random_split_partitions_with_the_asked_size(n, fraction, seed):
    train, test = random_split(n, fraction, seed)
    _partition(train, test, n)
    assert len(test) == int(round(n * fraction))
    again = random_split(n, fraction, seed)
    np.testing.assert_array_equal(again[1], test)


@given(st.lists(st.integers(0, 20), min_size=1, max_size=300), fractions, st.integers(0, 1000))
def test_user_split_keeps_every_user_in_training(users, fraction, seed):
    user_idx = np.asarray(users)
    train, test = user_split(user_idx, fraction, seed)
    _partition(train, test, len(user_idx))
    assert set(user_idx[train].tolist()) == set(user_idx.tolist())


def test_user_split_holds_out_about_the_fraction_per_user():
    user_idx = np.repeat(np.arange(50), 40)
    _, test = user_split(user_idx, 0.25, 0)
    per_user = np.bincount(user_idx[test], minlength=50)
    assert per_user.min() >= 9 and per_user.max() <= 11


@given(st.lists(st.integers(0, 10**9), min_size=2, max_size=300), fractions)
def test_time_split_holds_out_the_latest(timestamps, fraction):
    ts = np.asarray(timestamps)
    train, test = time_split(ts, fraction)
    _partition(train, test, len(ts))
    if len(test) and len(train):
        assert ts[test].min() >= ts[train].max()


def test_time_split_needs_timestamps():
    with pytest.raises(ConfigError, match="timestamps"):
        time_split(None, 0.2)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 2])
def test_fraction_must_be_inside_zero_one(fraction):
    with pytest.raises(ConfigError):
        random_split(10, fraction, 0)


def test_pipeline_split_parts_are_disjoint_and_complete(small):
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(test_fraction=0.2, val_fraction=0.1, seed=4))
    n = len(small.ratings)
    assert len(parts.fit) + len(parts.val) + len(parts.test) == n
    assert len(parts.test) == round(0.2 * n)
    keys = [p.user_idx.astype(np.int64) * 100_000 + p.item_idx for p in (parts.fit, parts.val, parts.test)]
    assert len(np.unique(np.concatenate(keys))) == n

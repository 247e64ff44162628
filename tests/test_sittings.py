"""Sittings: finding them, their shifts on a log with a known mood per sitting, saving them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_persist import rewrite

from movierec import fitting, persist, pipeline
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError, ModelError
from movierec.evaluation import evaluate
from movierec.sittings import SittingConfig, Sittings, find_sittings

DAY = 86_400


def moody_log(n_users: int = 200, n_items: int = 60, per_sitting: int = 12, seed: int = 0) -> tuple[Ratings, dict]:
    """Each user rates in three sittings a week apart, each with its own mood (sd 0.7 stars)."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(0, 0.6, n_items)
    users, items, ratings, times, moods = [], [], [], [], {}
    for u in range(n_users):
        for s in range(3):
            mood = rng.normal(0, 0.7)
            start = 1_000_000_000 + u * 100 * DAY + s * 7 * DAY
            moods[(u, s)] = mood
            picked = rng.choice(n_items, per_sitting, replace=False)
            users += [u] * per_sitting
            items += list(picked)
            times += list(start + np.sort(rng.integers(0, 1800, per_sitting)))
            ratings += list(np.clip(3.5 + quality[picked] + mood + rng.normal(0, 0.3, per_sitting), 0.5, 5))
    log = Ratings.from_ids(np.array(users) + 1, np.array(items) + 1, np.array(ratings), np.array(times), name="moody")
    return log, moods


def test_sittings_split_at_long_pauses_and_shrink_their_mean_residual():
    user = np.array([0, 0, 0, 1, 1])
    time = np.array([5000, 0, 100, 0, 10_000])
    residual = np.array([-1.0, 1.0, 1.0, 2.0, 0.0])
    found = find_sittings(user, time, residual, SittingConfig(gap=3600, shrinkage=2.0))
    assert found.user_idx.tolist() == [0, 0, 1, 1]
    assert found.start.tolist() == [0, 5000, 0, 10_000]
    assert found.end.tolist() == [100, 5000, 0, 10_000]
    np.testing.assert_allclose(found.shift, [2 / 4, -1 / 3, 2 / 3, 0.0], rtol=1e-6)
    # Within the gap of a sitting's ends it applies; between sittings, nearer than the gap, the earlier wins.
    assert found.find(np.array([0, 0, 0, 1, 0, 2]), np.array([3700, 3701, 1401, 5000, -3600, 0])).tolist() == [
        0,
        1,
        0,
        -1,
        0,
        -1,
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200)), min_size=1, max_size=30),
    st.lists(st.tuples(st.integers(-1, 4), st.integers(-50, 250)), min_size=1, max_size=30),
    st.integers(0, 40),
)
def test_find_agrees_with_a_scan_of_every_sitting(ratings, queries, gap):
    user, time = (np.array(c) for c in zip(*ratings, strict=True))
    found = find_sittings(user, time, np.zeros(len(user)), SittingConfig(gap=gap))
    found.check(n_users=4)
    q_user, q_time = (np.array(c) for c in zip(*queries, strict=True))
    expected = []
    for u, t in zip(q_user, q_time, strict=True):
        mine = [s for s in range(len(found.start)) if found.user_idx[s] == u]
        started = [s for s in mine if found.start[s] <= t]
        later = [s for s in mine if found.start[s] > t]
        if started and t <= found.end[started[-1]] + gap:
            expected.append(started[-1])
        elif later and t >= found.start[later[0]] - gap:
            expected.append(later[0])
        else:
            expected.append(-1)
    assert found.find(q_user, q_time).tolist() == expected


@pytest.fixture(scope="module")
def moody():
    log, moods = moody_log()
    parts = pipeline.split(log, pipeline.SplitConfig(seed=0))
    rec, _ = fitting.fit(parts.fit, parts.val, "baseline")
    return log, moods, parts, rec


def test_shifts_recover_each_sittings_mood_and_cut_the_test_error(moody):
    log, moods, parts, rec = moody
    assert rec.sittings is not None
    assert "sitting shifts" in rec.info["sittings_choice"]
    # Shifts follow the moods they were made to find (the rater's user bias takes each user's mean mood).
    truth = np.array(
        [
            moods[(int(log.index.user_ids[u]) - 1, (int(s) - 1_000_000_000) % (100 * DAY) // (7 * DAY))]
            for u, s in zip(rec.sittings.user_idx, rec.sittings.start, strict=True)
        ]
    )
    users = rec.sittings.user_idx
    centred = truth - np.bincount(users, truth)[users] / np.bincount(users)[users]
    assert np.corrcoef(centred, rec.sittings.shift)[0, 1] > 0.8
    with_shifts = evaluate(rec, parts.test)["rmse"]
    alone = evaluate(replace(rec, sittings=None), parts.test)["rmse"]
    assert with_shifts < 0.8 * alone
    # A prediction with no time is the rater's alone, and the lists never see the shifts.
    u, i = parts.test.user_idx[:50], parts.test.item_idx[:50]
    np.testing.assert_array_equal(rec.predict_idx(u, i), replace(rec, sittings=None).predict_idx(u, i))
    assert rec.recommend(rec.user_id(0), 5) == replace(rec, sittings=None).recommend(rec.user_id(0), 5)


def test_no_shifts_without_times_or_without_sittings_shared_with_validation(moody):
    log, _, parts, _ = moody
    untimed = fitting.fit(replace(parts.fit, timestamp=None), replace(parts.val, timestamp=None), "baseline")[0]
    assert untimed.sittings is None and "no times" in untimed.info["sittings_choice"]
    # Validation ratings a year after every training rating share no sitting with them.
    later = replace(parts.val, timestamp=parts.val.timestamp + 365 * DAY)
    apart = fitting.fit(parts.fit, later, "baseline")[0]
    assert apart.sittings is None and "0% of validation ratings" in apart.info["sittings_choice"]
    assert fitting.fit(parts.fit, parts.val, "baseline", sitting_config=None)[0].sittings is None


def test_shifts_survive_a_round_trip_and_a_forged_table_is_refused(moody, tmp_path):
    _, _, parts, rec = moody
    persist.save(rec, tmp_path / "m")
    again = persist.load(tmp_path / "m")
    assert isinstance(again.sittings, Sittings)
    t = parts.test
    np.testing.assert_array_equal(
        again.predict_idx(t.user_idx, t.item_idx, t.timestamp), rec.predict_idx(t.user_idx, t.item_idx, t.timestamp)
    )
    rewrite(
        tmp_path / "m", tensors={"sessions.user_idx": torch.full_like(torch.from_numpy(rec.sittings.user_idx), 10**6)}
    )
    with pytest.raises(ModelError, match="out of range"):
        persist.load(tmp_path / "m")
    rewrite(tmp_path / "m", manifest={"sessions": {"n": -1, "gap": 3600}})
    with pytest.raises(ModelError, match="sessions"):
        persist.load(tmp_path / "m")
    n = len(rec.sittings.user_idx)
    for gap in (2**63, True):  # past int64 (end + gap would overflow), and a bool posing as a number
        persist.save(rec, tmp_path / f"gap-{gap}")
        rewrite(tmp_path / f"gap-{gap}", manifest={"sessions": {"n": n, "gap": gap}})
        with pytest.raises(ModelError, match="gap"):
            persist.load(tmp_path / f"gap-{gap}")
    with pytest.raises(ConfigError, match="whole-number gap"):
        SittingConfig(gap=1800.0)  # type: ignore[arg-type]

"""The parse cache: same answer as parsing, invalidated by any change, plain arrays only."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from movierec.data import cache
from movierec.data import load as load_module
from movierec.data.readers import read_ratings_file

LOG = "user,item,rating,timestamp\nalice,m1,4,10\nbob,m2,3.5,20\nalice,m2,5,30\n"


def counting(path: Path):
    calls = []

    def build():
        calls.append(1)
        return read_ratings_file(path)

    return build, calls


def assert_same(a, b) -> None:
    assert a.name == b.name
    for field in ("user_idx", "item_idx", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert getattr(a, field).dtype == getattr(b, field).dtype
    np.testing.assert_array_equal(a.index.user_ids, b.index.user_ids)
    np.testing.assert_array_equal(a.index.item_ids, b.index.item_ids)


def test_second_read_comes_from_the_cache(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    build, calls = counting(path)
    first = cache.cached([path], {"v": 1}, build, tmp_path / "c")
    second = cache.cached([path], {"v": 1}, build, tmp_path / "c")
    assert len(calls) == 1
    assert_same(first, second)
    assert second.index.user_ids.tolist() == ["alice", "bob"]  # string ids survive as strings


def test_a_changed_file_is_parsed_again(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    build, calls = counting(path)
    cache.cached([path], {}, build, tmp_path / "c")
    path.write_text(LOG.replace("3.5", "2.5"))  # same size: only the mtime tells
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    again = cache.cached([path], {}, build, tmp_path / "c")
    assert len(calls) == 2 and 2.5 in again.rating.tolist()
    assert len(list((tmp_path / "c" / "parsed").iterdir())) == 1  # replaced, not piled up


def test_different_params_are_different_entries(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    build, calls = counting(path)
    cache.cached([path], {"rating_range": None}, build, tmp_path / "c")
    cache.cached([path], {"rating_range": [1, 10]}, build, tmp_path / "c")
    assert len(calls) == 2


def test_entries_are_plain_arrays_and_json(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    cache.cached([path], {}, counting(path)[0], tmp_path / "c")
    (entry,) = (tmp_path / "c" / "parsed").iterdir()
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["sources"][0][0] == str(path.resolve())
    names = sorted(p.name for p in entry.iterdir())
    assert names == sorted(["meta.json"] + [f"{a}.npy" for a in meta["arrays"]])
    for name in meta["arrays"]:
        np.load(entry / f"{name}.npy", allow_pickle=False)  # raises if anything needed pickle
    assert not [p for p in (tmp_path / "c" / "parsed").iterdir() if p.name.startswith(".")]


def test_titles_and_genres_survive_the_cache(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(LOG)

    def build():
        r = read_ratings_file(path)
        return replace(r, titles=np.array(["One", "Two"]), genres=np.array(["Drama|War", ""]))

    cache.cached([path], {}, build, tmp_path / "c")
    again = cache.cached([path], {}, lambda: pytest.fail("parsed again"), tmp_path / "c")
    assert again.titles.tolist() == ["One", "Two"] and again.genres.tolist() == ["Drama|War", ""]
    assert again.genre_matrix().tolist() == [[1.0, 0.0], [1.0, 0.0]]


def test_a_damaged_entry_is_rebuilt(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    build, calls = counting(path)
    cache.cached([path], {}, build, tmp_path / "c")
    (entry,) = (tmp_path / "c" / "parsed").iterdir()
    (entry / "rating.npy").write_bytes(b"not an array")
    assert_same(cache.cached([path], {}, build, tmp_path / "c"), read_ratings_file(path))
    assert len(calls) == 2
    (entry / "rating.npy").write_bytes(b"")  # cut to nothing by a crash: np.load raises EOFError
    assert_same(cache.cached([path], {}, build, tmp_path / "c"), read_ratings_file(path))
    assert len(calls) == 3


def test_an_unwritable_cache_costs_speed_not_the_result(tmp_path, monkeypatch):
    path = tmp_path / "log.csv"
    path.write_text(LOG)

    def refuse(*args):
        raise OSError("read-only file system")

    monkeypatch.setattr(cache, "save", refuse)
    with pytest.warns(UserWarning, match="could not write the parse cache"):
        r = cache.cached([path], {}, counting(path)[0], tmp_path / "c")
    assert len(r) == 3


def test_cache_root_follows_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MOVIEREC_CACHE", str(tmp_path / "env"))
    assert cache.cache_root() == tmp_path / "env"
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MOVIEREC_CACHE")
    assert cache.cache_root() == Path.home() / ".cache" / "movierec"


def test_load_uses_the_cache(tmp_path, monkeypatch):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    monkeypatch.setattr(load_module, "CACHE_MIN_BYTES", 0)
    first = load_module.load(path, cache_dir=tmp_path / "c")

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(load_module, "read_ratings_file", no_parsing)
    assert_same(first, load_module.load(path, cache_dir=tmp_path / "c"))
    path.write_text(LOG + "carol,m1,1,40\n")
    with pytest.raises(AssertionError, match="parsed again"):
        load_module.load(path, cache_dir=tmp_path / "c")

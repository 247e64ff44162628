"""Model directories: written atomically, never over someone else's files, refused when corrupt."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from movierec import fitting, persist, pipeline
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.errors import ConfigError, ModelError
from movierec.models.als import ALSConfig


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    ratings = generate(SyntheticConfig(n_users=120, n_items=80, n_ratings=2400, seed=2)).ratings
    parts = pipeline.split(ratings)
    # The linear defaults, whatever train would choose: the manifests below rewrite its config.
    rec, _ = fitting.fit(parts.fit, parts.val, "als", model_config=ALSConfig())
    out = tmp_path_factory.mktemp("persist") / "model"
    persist.save(rec, out)
    return out


def copy_of(saved, tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    for f in saved.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


def rewrite(model_dir, *, manifest=None, tensors=None):
    """Change a model dir as a careful forger would: the checksum made to match again."""
    if tensors is not None:
        current = load_file(str(model_dir / "model.safetensors"))
        # A value may be a function of the tensor it replaces (to keep its shape).
        current.update({k: v(current[k]) if callable(v) else v for k, v in tensors.items()})
        save_file(current, str(model_dir / "model.safetensors"))
    data = json.loads((model_dir / "manifest.json").read_text())
    data.update(manifest or {})
    data["weights_sha256"] = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    (model_dir / "manifest.json").write_text(json.dumps(data))


def test_round_trip_and_permissions_follow_the_umask(saved, tmp_path):
    rec = persist.load(saved)
    again = tmp_path / "again"
    old = os.umask(0o022)
    try:
        persist.save(rec, again)
    finally:
        os.umask(old)
    assert stat.S_IMODE(again.stat().st_mode) == 0o755
    assert stat.S_IMODE((again / "model.safetensors").stat().st_mode) == 0o644
    assert persist.load(again).recommend(rec.user_id(0), 5) == rec.recommend(rec.user_id(0), 5)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"global_mean": float("nan")}, "NaN is not a number"),
        ({"global_mean": 1e308}, "global_mean"),
        ({"rating_scale": [5.0, 0.5]}, "rating_scale"),
        ({"rating_scale": [0.5, float("nan")]}, "NaN is not a number"),
        ({"rating_scale": [0.5, 1e308]}, "rating_scale must be from"),  # a rating of 1e300 would be accepted
        ({"lists": {"candidates": 50.5}}, "lists.candidates must be a whole number, got 50.5"),
        ({"lists": {"gate": "no"}}, "lists.gate must be true or false, got 'no'"),
        ({"lists": {"window": 3}}, "unknown field"),
        ({"rater": {"name": "als", "config": {"dim": 10**9}}}, "dim must be from 0 to 4096"),
        ({"n_users": True}, "n_users/n_items"),
        ({"user_ids": [2**64] + list(range(2, 121))}, "beyond signed 64-bit"),
        ({"rating_scale": "0.5-5"}, "rating_scale"),
        ({"user_ids": [1, 1] + list(range(3, 121))}, "unique and sorted"),
        ({"titles": ["just one"]}, "titles"),
        ({"rater": {"name": "als", "config": {"dim": 4000}}}, "shape"),
        ({"rater": {"name": "als", "config": {"dim": -3}}}, "dim must be"),
        ({"rater": {"name": "nope", "config": {}}}, "unknown model"),
        ({"ranker": {"name": "als", "config": {}}}, "not a ranker"),
        ({"format_version": 1}, "version 1"),
        ({"lists": {"candidates": 0}}, "candidates"),
        ({"lists": {"candidates": 10**15}}, "candidates"),  # each list would rate this many items
        ({"lists": None}, "field 'lists' must be an object, got null"),
        ({"item_ids": "1,2,3"}, "field 'item_ids' must be a list, got '1,2,3'"),
        ({"rater": {"name": "baseline", "config": [1]}}, "field 'rater.config' must be an object, got a list"),
        ({"rater": {"name": "baseline", "config": {"reg_user": -2.0}}}, "reg_user and reg_item must be"),
    ],
)
def test_a_consistent_but_wrong_manifest_is_refused(saved, tmp_path, manifest, message):
    target = copy_of(saved, tmp_path)
    rewrite(target, manifest=manifest)
    started = time.perf_counter()
    with pytest.raises(ModelError, match=message) as refused:
        persist.load(target)
    assert time.perf_counter() - started < 10  # refused before allocating a huge model
    assert str(target) in str(refused.value) and "retrain" in str(refused.value)  # where, and what to do


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"rater.item_factors.weight": lambda t: torch.full_like(t, float("nan"))}, "NaN"),
        ({"history.indptr": torch.arange(121, dtype=torch.int64) * 1000}, "indptr"),
        ({"history.items": torch.full((1,), 10_000, dtype=torch.int32)}, "shape|out of range"),
        ({"fallback.user_bias": torch.zeros(3)}, "shape"),
    ],
)
def test_consistent_but_wrong_weights_are_refused(saved, tmp_path, tensors, message):
    target = copy_of(saved, tmp_path)
    rewrite(target, tensors=tensors)
    with pytest.raises(ModelError, match=message):
        persist.load(target)


def test_history_items_out_of_range_are_refused(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    items = load_file(str(target / "model.safetensors"))["history.items"].clone()
    items[0] = 10_000
    rewrite(target, tensors={"history.items": items})
    with pytest.raises(ModelError, match="out of range"):
        persist.load(target)


@pytest.mark.parametrize("content", ["[]", "null", "[" * 200_000 + "]" * 200_000, "{", '"text"', "\xff\xfe"])
def test_a_manifest_that_is_not_an_object_is_refused(saved, tmp_path, content):
    target = copy_of(saved, tmp_path)
    (target / "manifest.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(ModelError, match="corrupt|not a JSON object"):
        persist.load(target)


def test_changed_weights_fail_the_checksum(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    data = bytearray((target / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (target / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        persist.load(target)
    (target / "model.safetensors").write_bytes(bytes(data[:100]))
    with pytest.raises(ModelError, match="SHA-256"):
        persist.load(target)


def test_save_never_replaces_what_is_not_a_model(saved, tmp_path):
    rec = persist.load(saved)
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    for target in (thesis, plain):
        with pytest.raises(ConfigError, match="--out"):
            persist.save(rec, target)
    assert (thesis / "chapter1.tex").read_text() == "years of work" and plain.read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    persist.save(rec, empty)  # an empty folder, and then a model, may be replaced
    persist.save(rec, empty)
    assert np.array_equal(persist.load(empty).item_counts, rec.item_counts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes.txt", "thesis"]  # nothing left over
    (empty / "recs.csv").write_text("a user's own file, written into the model's folder")
    with pytest.raises(ConfigError, match=r"did not write there \(recs.csv\)"):
        persist.save(rec, empty)  # replacing the model would delete it
    assert (empty / "recs.csv").exists() and (empty / "manifest.json").exists()
    with pytest.raises(ValueError, match="writes only"):
        persist.save(rec, tmp_path / "new", extra_files={"notes.txt": b""})  # what check_replaceable could not know


def test_an_ease_config_saved_before_genres_existed_loads_as_fitted_without_them(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    ranker = json.loads((target / "manifest.json").read_text())["ranker"]
    assert ranker["name"] == "ease" and ranker["config"]["genres"] == 0.0  # synthetic data: no genres
    rewrite(target, manifest={"ranker": {"name": "ease", "config": {"l2": 100.0, "weighting": "rating"}}})
    assert persist.load(target).ranker_config.genres == 0.0  # not today's default of 10
    rewrite(target, manifest={"ranker": {"name": "ease", "config": {**ranker["config"], "genres": 3.0}}})
    assert persist.load(target).ranker_config.genres == 3.0


@pytest.mark.parametrize(("field", "value"), [("genres", "abc"), ("genres", True), ("l2", None), ("weighting", 3)])
def test_a_saved_config_value_of_the_wrong_kind_is_refused_by_name(saved, tmp_path, field, value):
    target = copy_of(saved, tmp_path)
    ranker = json.loads((target / "manifest.json").read_text())["ranker"]
    rewrite(target, manifest={"ranker": {"name": "ease", "config": {**ranker["config"], field: value}}})
    with pytest.raises(ModelError, match=f"{field} must be a"):
        persist.load(target)


def _titles_manifest(target, title):
    data = json.loads((target / "manifest.json").read_text())
    return {"titles": [title] + [f"movie {k}" for k in range(1, data["n_items"])]}


@pytest.mark.parametrize(
    ("title", "message"),
    [("x" * 5_000_000, "5,000,000 characters long"), ("caf\ud800", "lone surrogate"), (7, "must be a string")],
)
def test_a_title_too_long_or_not_unicode_is_refused_at_load(saved, tmp_path, title, message):
    target = copy_of(saved, tmp_path)
    rewrite(target, manifest=_titles_manifest(target, title))
    with pytest.raises(ModelError, match=message):
        persist.load(target)


def test_control_characters_in_titles_are_removed_at_load(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    rewrite(target, manifest=_titles_manifest(target, "\x1b]0;owned\x07Heat\x1b[2J (1995)\x9b1m\x00"))
    assert persist.load(target).titles[0] == "Heat (1995)"


@pytest.mark.parametrize("name", ["manifest.json", "metrics.json"])
def test_an_integer_of_thousands_of_digits_is_refused(saved, tmp_path, name):
    from movierec import manifest

    target = copy_of(saved, tmp_path)
    rewrite(target)
    path = target / name
    text = path.read_text() if path.exists() else '{"rmse": 0.9}'
    path.write_text(text.replace("{", '{"big": ' + "9" * 5000 + ",", 1))
    with pytest.raises(ModelError, match="5,000 digits"):
        persist.load(target) if name == "manifest.json" else manifest.read_metrics(target)


@pytest.mark.parametrize(("value", "message"), [(0.0, "rating_max 0 must be"), (-1.0, "rating_max -1 must be")])
def test_a_ranker_weighing_ratings_by_nonsense_is_refused(saved, tmp_path, value, message):
    target = copy_of(saved, tmp_path)
    rewrite(target, tensors={"ranker.rating_max": torch.tensor(value)})
    with pytest.raises(ModelError, match=message):
        persist.load(target)


def test_a_model_saved_before_the_rating_floor_loads_with_r_over_r_max(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    tensors = load_file(str(target / "model.safetensors"))
    del tensors["ranker.rating_floor"]
    save_file(tensors, str(target / "model.safetensors"))
    rewrite(target)
    loaded = persist.load(target)
    assert float(loaded.ranker.rating_floor) == 0.0
    assert loaded.recommend(loaded.user_id(0), 5) == persist.load(saved).recommend(loaded.user_id(0), 5)


def test_training_ratings_that_do_not_match_the_fingerprint_are_refused(saved, tmp_path):
    target = copy_of(saved, tmp_path)
    ratings = load_file(str(target / "model.safetensors"))["history.ratings"].clone()
    ratings[0] = 3.0 if float(ratings[0]) != 3.0 else 4.0
    rewrite(target, tensors={"history.ratings": ratings})
    with pytest.raises(ModelError, match="fingerprint"):
        persist.load(target)

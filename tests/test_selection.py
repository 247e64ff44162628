"""train's choice of list settings on the validation part: defaults stand unless clearly beaten."""

from __future__ import annotations

import pytest

from movierec import fitting, pipeline, selection
from movierec.models.ease import EASEConfig

DEFAULT, OTHER = EASEConfig(l2=100.0), EASEConfig(l2=400.0)


@pytest.fixture(scope="module")
def setting(small):
    parts = pipeline.split(small.ratings)
    base, _ = fitting.fit(parts.fit, parts.val, "baseline", ranker="popular")
    return parts, base


def _choose(setting, monkeypatch, other_gain: float, val_size: int | None = None):
    """``choose`` with planted validation scores: OTHER's lists score ``other_gain`` x the defaults'."""
    parts, base = setting

    def planted(rec, target, **_):
        gain = other_gain if rec.ranker_config == OTHER else 1.0
        default_lists = rec.lists == selection.ListConfig()
        return {"ndcg": 0.2 * gain * (1.0 if default_lists else 0.999)}

    monkeypatch.setattr(selection, "evaluate_ranking", planted)
    if val_size is not None:
        monkeypatch.setattr(selection, "SMALL_VAL", val_size)
    return selection.choose(
        base, parts.fit, parts.val, "ease", lambda config: base.ranker, ranker_config=None, seed=0
    ), parts


@pytest.fixture(autouse=True)
def two_ridges(monkeypatch):
    from dataclasses import replace

    from movierec import models

    spec = models.get("ease")
    monkeypatch.setitem(models.MODELS, "ease", replace(spec, candidates=lambda *_: [DEFAULT, OTHER]))


def test_a_small_validation_part_needs_a_ten_percent_gain(setting, monkeypatch):
    choice, parts = _choose(setting, monkeypatch, other_gain=1.05)
    assert len(parts.val) < selection.SMALL_VAL
    assert choice.ranker_config == DEFAULT and choice.lists == selection.ListConfig()
    assert "none of the other" in choice.describe("ease", "baseline") and len(choice.tried) == 16
    choice, _ = _choose(setting, monkeypatch, other_gain=1.2)
    assert choice.ranker_config == OTHER and "by over 10%" in choice.describe("ease", "baseline")


def test_a_large_validation_part_needs_two_percent(setting, monkeypatch):
    choice, _ = _choose(setting, monkeypatch, other_gain=1.05, val_size=0)
    assert choice.ranker_config == OTHER and "by over 2%" in choice.describe("ease", "baseline")
    choice, _ = _choose(setting, monkeypatch, other_gain=1.015, val_size=0)
    assert choice.ranker_config == DEFAULT

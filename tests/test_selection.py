"""train's choice of list settings on the validation part: defaults stand unless clearly beaten."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from movierec import fitting, pipeline, selection
from movierec.evaluation import evaluate
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
    fit_ranker = lambda config, rank, label: (base.ranker, config)  # noqa: E731
    return selection.choose(_on_fit_part(base), True, parts.fit, parts.val, "ease", fit_ranker, seed=0), parts


def _on_fit_part(base):
    """Recommenders of the fit part as ``fitting`` makes them: ``base`` with another ranker and lists."""
    return lambda ranker, config, lists: replace(base, ranker=ranker, ranker_config=config, lists=lists)


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


@pytest.fixture()
def als_candidates(monkeypatch):
    """als's candidates replaced by the two given, in order."""
    from dataclasses import replace

    from movierec import models

    def plant(*configs):
        monkeypatch.setitem(models.MODELS, "als", replace(models.get("als"), candidates=lambda *_: list(configs)))

    return plant


def test_train_keeps_the_rater_settings_that_validate_lowest(setting, als_candidates):
    from movierec.models.als import ALSConfig

    parts, _ = setting
    good, absurd = ALSConfig(dim=4), ALSConfig(dim=4, reg=50.0, reg_bias=50.0)  # a ridge that flattens everything
    for first, second in ((absurd, good), (good, absurd)):
        als_candidates(first, second)
        rec, report = fitting.fit(parts.fit, parts.val, "als", ranker="popular")
        history = report.history
        assert rec.rater_config == good
        line = report.rater_choice
        assert line.startswith("als: ") and "2 settings" in line
        assert ("defaults" in line.split(",")[0]) == (first == good)
        # The history is the kept fit's: its best validation RMSE is the lowest listed.
        scores = [float(s.rsplit(": ", 1)[1]) for s in line.split("(", 1)[1].rstrip(")").split("; ")]
        assert min(h.val_rmse for h in history) == pytest.approx(min(scores), abs=1e-4)
        # ...and so is the model: it scores that on the validation part.
        assert evaluate(rec, parts.val)["rmse"] == pytest.approx(min(scores), abs=1e-4)
        assert report.rater_seconds >= sum(h.seconds for h in history)
        assert rec.info["rater_choice"] == line  # what the manifest keeps


def test_resume_is_refused_where_settings_are_compared(setting, als_candidates, tmp_path):
    from movierec.errors import ConfigError
    from movierec.models.als import ALSConfig

    parts, _ = setting
    als_candidates(ALSConfig(dim=4), ALSConfig(dim=4, reg=50.0, reg_bias=50.0))
    with pytest.raises(ConfigError, match="compares 2 settings"):
        fitting.fit(parts.fit, parts.val, "als", ranker="popular", checkpoint_dir=tmp_path, resume=True)


def test_a_rater_config_given_is_trained_alone(setting, als_candidates):
    from movierec.models.als import ALSConfig

    parts, _ = setting
    als_candidates(ALSConfig(dim=4), ALSConfig(dim=4, reg=50.0, reg_bias=50.0))
    given = ALSConfig(dim=3)
    rec, _ = fitting.fit(parts.fit, parts.val, "als", ranker="popular", model_config=given)
    assert rec.rater_config == given and rec.info["rater_choice"] is None


def test_the_ranker_stops_on_validation_unless_its_settings_were_given(setting, monkeypatch):
    parts, base = setting
    monkeypatch.setattr(selection, "evaluate_ranking", lambda *_, **__: {"ndcg": 0.2})
    calls = []

    def fit_ranker(config, rank, label):
        calls.append(rank)
        return base.ranker, config

    selection.choose(_on_fit_part(base), True, parts.fit, parts.val, "ease", fit_ranker)
    assert len(calls) == 2 and all(callable(rank) for rank in calls)  # both candidates, each may stop early
    assert calls[0](base.ranker) == 0.2  # the ranker's own lists, scored on the validation part
    calls.clear()
    selection.choose(_on_fit_part(base), True, parts.fit, parts.val, "ease", fit_ranker, ranker_config=OTHER)
    assert calls == [None]  # settings given are kept, sweeps and all


@pytest.mark.parametrize("small_val", [True, False])
def test_a_small_validation_part_gives_a_ranker_more_patience(setting, monkeypatch, small_val):
    parts, _ = setting
    real, seen = fitting.fit_ranker, []

    def recorded(*args, **kwargs):
        if kwargs.get("rank") is not None:
            seen.append(kwargs["patience"])
        return real(*args, **kwargs)

    monkeypatch.setattr(fitting, "fit_ranker", recorded)
    monkeypatch.setitem(fitting.models.MODELS, "ials", replace(fitting.models.get("ials"), candidates=None))
    if not small_val:
        monkeypatch.setattr(selection, "SMALL_VAL", 0)
    fitting.fit(parts.fit, parts.val, "baseline", ranker="ials", ranker_config=None)
    want = fitting.SMALL_RANKER_PATIENCE if small_val else fitting.RANKER_PATIENCE
    assert seen == [want]


def test_remembered_scores_are_the_rankers_and_a_callers_changes_do_not_stick(setting):
    parts, base = setting
    ranker, _, _ = fitting.fit_ranker([parts.fit], "ease")
    rows = replace(base, ranker=ranker)._user_rows(np.arange(5))
    remembered = selection.Remembered(ranker)
    first = remembered.score(rows)
    torch.testing.assert_close(first, ranker.score(rows))
    first.fill_(-1.0)  # as the recommender discounts its copy in place
    torch.testing.assert_close(remembered.score(rows), ranker.score(rows))
    other = replace(base, ranker=ranker)._user_rows(np.arange(5, 9))
    torch.testing.assert_close(remembered.score(other), ranker.score(other))


def test_remembered_ratings_predict_each_new_pair_once_and_every_pair_as_the_rater(setting):
    _, base = setting
    rater, asked = base.rater, []

    class Counting(torch.nn.Module):
        n_users, n_items = rater.n_users, rater.n_items

        def forward(self, u, i):
            asked.append(len(u))
            return rater(u, i)

    remembered = selection.RememberedRatings(Counting())
    u, i = torch.tensor([0, 1, 1, 2]), torch.tensor([3, 4, 4, 5])
    torch.testing.assert_close(remembered(u, i), rater(u, i))
    u2, i2 = torch.tensor([2, 0, 3]), torch.tensor([5, 7, 3])  # one pair known, two new
    torch.testing.assert_close(remembered(u2, i2), rater(u2, i2))
    assert asked == [3, 2]

"""blend: weights from the validation part, a config that round-trips, members that must have their own fit."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from movierec import fitting, models, pipeline
from movierec.errors import ConfigError
from movierec.models.blend import BlendConfig, blend_weights
from movierec.models.knn import KNNConfig
from movierec.training import TrainConfig


def test_weights_recover_a_known_linear_mix():
    rng = np.random.default_rng(0)
    preds = torch.tensor(rng.normal(size=(5000, 3)))
    target = preds @ torch.tensor([0.5, 0.3, -0.2], dtype=torch.float64) + 0.1
    w = blend_weights(preds, target, ridge=0.0)
    np.testing.assert_allclose(w.numpy(), [0.5, 0.3, -0.2, 0.1], atol=1e-8)


def test_config_survives_the_manifest_round_trip():
    config = BlendConfig(members=("baseline", "knn"), configs=({}, KNNConfig(k=7, damping=0.5)))
    again = BlendConfig(**asdict(config))  # what persist.load does with the manifest's config
    assert again == config
    assert again.configs[1] == KNNConfig(k=7, damping=0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"members": ("mf",)}, "cannot be blended"),
        ({"members": ("nope",)}, "cannot be blended"),
        ({"members": ("knn",), "configs": ({"k": 3}, {"k": 4})}, "needs 1 configs"),
        ({"members": ("knn",), "configs": ({"kk": 3},)}, "bad config"),
        ({"members": ()}, "at least one"),
    ],
)
def test_bad_configs_are_refused_clearly(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BlendConfig(**kwargs)


def test_blend_fits_validation_at_least_as_well_as_each_member(small):
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    config = BlendConfig(members=("baseline", "knn"), configs=({}, {"k": 20}))
    spec = models.get("blend")
    recommender, report = fitting.fit(
        parts.fit, parts.val, "blend", train_config=TrainConfig.for_model(spec, device="cpu"), model_config=config
    )
    history = report.history
    net = recommender.rater
    vu = torch.from_numpy(parts.val.user_idx.astype(np.int64))
    vi = torch.from_numpy(parts.val.item_idx.astype(np.int64))
    target = torch.from_numpy(parts.val.rating) - recommender.global_mean
    with torch.no_grad():
        blended = float(torch.sqrt(torch.mean((net(vu, vi) - target) ** 2)))
        members = [float(torch.sqrt(torch.mean((m(vu, vi) - target) ** 2))) for m in net.members]
    # Least squares on the validation part cannot do worse there than any single member.
    assert blended <= min(members) + 1e-6
    # Two one-pass members make a one-pass blend, whatever the epochs say.
    assert len(net.weights) == 3 and [h.epoch for h in history] == [1]


def test_refit_trains_members_on_validation_too_and_keeps_the_blind_figure(small):
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    spec = models.get("blend")
    config = TrainConfig.for_model(spec, device="cpu")
    runs = {}
    for refit in (False, True):
        blend = BlendConfig(members=("baseline", "knn"), refit=refit)
        runs[refit] = fitting.fit(parts.fit, parts.val, "blend", train_config=config, model_config=blend)
    (plain, plain_report), (refitted, refit_report) = runs[False], runs[True]
    plain_history, refit_history = plain_report.history, refit_report.history
    knn_plain, knn_refit = plain.rater.members[1], refitted.rater.members[1]
    assert len(knn_plain.seen_residual) == len(parts.fit)
    assert len(knn_refit.seen_residual) == len(parts.fit) + len(parts.val)
    # Same weights and the same validation figure: it was measured before the members saw the validation part.
    torch.testing.assert_close(plain.rater.weights, refitted.rater.weights)
    assert plain_history[-1].val_rmse == refit_history[-1].val_rmse


def test_the_default_blend_has_the_clip_link_als_and_members_stop_at_their_own_epochs(small, monkeypatch):
    from movierec.models import blend as blend_module
    from movierec.models.als import ALSConfig

    config = BlendConfig()
    assert config.members == ("bmf", "knn", "baseline", "als")
    assert config.configs[3] == blend_module.MEMBER_DEFAULTS["als"] and config.configs[3].link == "clip"
    assert config.configs[0] == models.get("bmf").config_type()  # the others keep their own defaults
    # bmf leads for 30 sweeps; als, fitted after it, stops at its own 25 epochs.
    sweeps, real = [], blend_module.fit_quietly
    monkeypatch.setattr(blend_module, "fit_quietly", lambda fitter, n: sweeps.append(n) or real(fitter, n))
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    spec = models.get("blend")
    two = BlendConfig(members=("bmf", "als"), configs=({"dim": 4}, ALSConfig(dim=4)))
    fitting.fit(
        parts.fit,
        parts.val,
        "blend",
        train_config=TrainConfig.for_model(spec, epochs=30, device="cpu"),
        model_config=two,
    )
    assert sweeps == [models.get("als").training["epochs"]] == [25]


def test_a_member_config_of_the_wrong_kind_names_the_member_and_field():
    with pytest.raises(ConfigError, match="blend member 'als': dim must be a whole number, got 2.5"):
        BlendConfig(members=("baseline", "als"), configs=({}, {"dim": 2.5}))


def test_members_fitted_beside_the_lead_give_the_same_blend(small, monkeypatch):
    from movierec.models import blend as blend_module

    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    spec = models.get("blend")
    config = BlendConfig(members=("bmf", "knn", "baseline", "als"), configs=({"dim": 4}, {}, {}, {"dim": 4}))
    train = TrainConfig.for_model(spec, epochs=27, device="cpu")
    threads = torch.get_num_threads()
    monkeypatch.setattr(blend_module.os, "sched_getaffinity", lambda _: set(range(threads + 1)))  # a core to spare
    beside = []
    real = blend_module.ThreadPoolExecutor
    monkeypatch.setattr(blend_module, "ThreadPoolExecutor", lambda n: beside.append(n) or real(n))
    runs = []
    for limit in (0, blend_module.SIDE_BY_SIDE):
        monkeypatch.setattr(blend_module, "SIDE_BY_SIDE", limit)
        runs.append(fitting.fit(parts.fit, parts.val, "blend", train_config=train, model_config=config)[0].rater)
    assert beside == [1]  # the second fit alone had members beside its lead
    torch.testing.assert_close(runs[0].weights, runs[1].weights)
    for one, other in zip(runs[0].members, runs[1].members, strict=True):
        for (name, a), (_, b) in zip(one.state_dict().items(), other.state_dict().items(), strict=True):
            torch.testing.assert_close(a, b, msg=name)

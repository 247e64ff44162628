"""The one training loop: resume is exact, early stopping keeps the best, divergence is reported."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from movierec import fitting, models, pipeline
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.errors import ConfigError, MovierecError
from movierec.models.base import Sweeps
from movierec.progress import Phase, Progress
from movierec.training import Epoch, TrainConfig, run, train


@pytest.fixture(scope="module")
def parts(small):
    return pipeline.split(small.ratings, pipeline.SplitConfig(seed=1))


def _run(parts, config, **kwargs):
    spec = models.get("mlp")
    cfg = spec.config_type(dim=4, hidden=16)
    net = spec.build(cfg, parts.fit.n_users, parts.fit.n_items, torch.Generator().manual_seed(config.seed))
    mean = float(parts.fit.rating.mean())
    history = train(net, spec, cfg, parts.fit, parts.val, config, global_mean=mean, scale=(0.5, 5.0), **kwargs)
    return net, history


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])  # both keep per-row state for the sparse tables
def test_resume_continues_exactly_where_it_stopped(parts, tmp_path, optimizer):
    config = TrainConfig(epochs=4, batch_size=512, lr=0.05, momentum=0.9, optimizer=optimizer, device="cpu")
    full, full_history = _run(parts, config)
    _run(parts, TrainConfig(**{**config.__dict__, "epochs": 2}), checkpoint_dir=tmp_path)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 2
    resumed, history = _run(parts, config, checkpoint_dir=tmp_path, resume=True)
    assert [h.epoch for h in history] == [1, 2, 3, 4]
    assert [h.train_loss for h in history] == pytest.approx([h.train_loss for h in full_history])
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_als_resumes_exactly_too(parts, tmp_path):
    # A model fitted by sweeps whose state is all in the model checkpoints through the same loop.
    spec = models.get("als")
    cfg = spec.config_type(dim=4)
    mean = float(parts.fit.rating.mean())

    def fitted(epochs: int, **kwargs):
        net = spec.build(cfg, parts.fit.n_users, parts.fit.n_items, torch.Generator().manual_seed(0))
        config = TrainConfig.for_model(spec, epochs=epochs, patience=None, device="cpu")
        return net, train(net, spec, cfg, parts.fit, parts.val, config, global_mean=mean, scale=(0.5, 5.0), **kwargs)

    full, full_history = fitted(4)
    fitted(2, checkpoint_dir=tmp_path)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 2
    ran: list = []

    class Recorded(Progress):
        def epoch(self, label, row, total):
            ran.append(row)

    resumed, history = fitted(4, checkpoint_dir=tmp_path, resume=True, phase=Phase(Recorded()))
    assert [h.epoch for h in ran] == [3, 4]  # the first two sweeps came from the checkpoint
    assert [h.epoch for h in history] == [1, 2, 3, 4]
    assert [h.train_loss for h in history] == pytest.approx([h.train_loss for h in full_history])
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_early_stopping_stops_and_keeps_the_best_epoch(parts):
    # A learning rate this high overfits fast; patience 2 must stop before 30 epochs.
    config = TrainConfig(epochs=30, batch_size=256, lr=0.1, momentum=0.9, patience=2, device="cpu")
    net, history = _run(parts, config)
    assert len(history) < 30
    best = min(h.val_rmse for h in history)
    assert history[-1].val_rmse > best  # stopped after non-improving epochs
    users = torch.from_numpy(parts.val.user_idx.astype(np.int64))
    items = torch.from_numpy(parts.val.item_idx.astype(np.int64))
    mean = float(parts.fit.rating.mean())
    with torch.no_grad():
        pred = (net.eval()(users, items) + mean).clamp(0.5, 5.0)
    restored = float(torch.sqrt(torch.mean((pred - torch.from_numpy(parts.val.rating)) ** 2)))
    assert restored == pytest.approx(best, abs=1e-5)


def test_divergence_is_a_clear_error(parts):
    with pytest.raises(MovierecError, match="diverged.*lower --lr"):
        _run(parts, TrainConfig(epochs=2, batch_size=64, lr=1e6, momentum=0.9, device="cpu"))


@pytest.mark.parametrize(
    "bad",
    [{"lr": -1.0}, {"epochs": 0}, {"optimizer": "rmsprop"}, {"momentum": 1.0}, {"patience": 0}, {"device": "tpu"}],
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_model_defaults_then_overrides():
    config = TrainConfig.for_model(models.get("mlp"), lr=0.01, epochs=None)
    assert (config.lr, config.epochs, config.batch_size, config.momentum) == (0.01, 25, 1024, 0.9)
    with pytest.raises(ConfigError, match="unknown training setting"):
        TrainConfig.for_model(models.get("mlp"), learning_rate=0.1)


@pytest.mark.parametrize(
    "damage",
    [
        "json",
        "truncated",
        "other-data",
        "missing-weights",
        "epoch-negative",
        "epoch-huge",
        "history-row",
        "lr-fast",
        "momentum-nan",
    ],
)
def test_resume_from_a_damaged_or_foreign_checkpoint_is_a_clear_error(tmp_path, monkeypatch, capsys, damage):
    from helpers import run_cli

    from movierec import checkpoints
    from movierec.data.synthetic import SyntheticConfig, generate

    # A checkpoint as an interrupted run leaves it: one epoch of the same run, on the same split.
    ratings = generate(SyntheticConfig(n_users=300, n_items=200, n_ratings=6000, seed=0)).ratings
    parts = pipeline.split(ratings)
    partial = tmp_path / "m.partial"
    config = TrainConfig.for_model(models.get("mlp"), epochs=1)
    fitting.fit(parts.fit, parts.val, "mlp", ranker="popular", train_config=config, checkpoint_dir=partial)
    if damage == "json":
        (partial / checkpoints.META).write_text("{half a")
    elif damage == "truncated":
        data = (partial / checkpoints.WEIGHTS).read_bytes()
        (partial / checkpoints.WEIGHTS).write_bytes(data[: len(data) // 2])
    elif damage == "missing-weights":
        (partial / checkpoints.WEIGHTS).unlink()
    elif damage.startswith("epoch"):
        meta = json.loads((partial / checkpoints.META).read_text())
        meta["epoch"] = -3 if damage == "epoch-negative" else 10**30
        (partial / checkpoints.META).write_text(json.dumps(meta))
    elif damage in ("lr-fast", "momentum-nan"):  # accepted by the optimiser, then failing mid-training
        meta = json.loads((partial / checkpoints.META).read_text())
        key, value = ("lr", "fast") if damage == "lr-fast" else ("momentum", float("nan"))
        meta["param_groups"][0][key] = value
        (partial / checkpoints.META).write_text(json.dumps(meta))
    elif damage == "history-row":
        meta = json.loads((partial / checkpoints.META).read_text())
        meta["history"] = [{"epoch": "one", "loss": []}]
        (partial / checkpoints.META).write_text(json.dumps(meta))
    size = "300x200x6100" if damage == "other-data" else "300x200x6000"
    args = ["train", "--model", "mlp", "--synthetic", size, "--epochs", "2", "--out", str(tmp_path / "m"), "--resume"]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "--resume" in err and "Traceback" not in err, err
    assert ("other data" in err) if damage == "other-data" else ("damaged" in err)
    assert not (tmp_path / "m").exists()


class _Counted(Sweeps):
    """Planted sweeps: a scripted validation figure per sweep, and a record of every call."""

    def __init__(self, model: torch.nn.Module, scores: list[float], stops_early: bool = True) -> None:
        self.model, self.scores, self.stops_early, self.calls = model, scores, stops_early, []

    def sweep(self, epoch: int) -> float:
        self.calls.append(("sweep", epoch))
        with torch.no_grad():
            self.model.weight.fill_(float(epoch))  # the state says which sweep made it
        return 1.0 / (epoch + 1)

    def finish(self, validate):
        self.calls.append(("finish", None))
        return 0.5


def test_the_loop_stops_early_and_restores_the_best_sweeps_state():
    model = torch.nn.Linear(1, 1, bias=False)
    scores = [0.9, 0.8, 0.85, 0.87, 0.7]
    fitter = _Counted(model, scores)
    seen = []
    history = run(model, fitter, 5, validate=lambda: scores[len(seen)], patience=2, on_epoch=seen.append)
    assert [h.epoch for h in history] == [1, 2, 3, 4] and seen == history
    assert [h.val_rmse for h in history] == scores[:4] and history[1].train_loss == 0.5
    assert float(model.weight.detach()) == 1.0  # the second sweep's state, the best validation figure
    assert ("finish", None) not in fitter.calls  # stopped before the last planned sweep


def test_a_rankers_fit_stops_when_its_validation_ndcg_stops_rising():
    model = torch.nn.Linear(1, 1, bias=False)
    ndcg = [0.10, 0.30, 0.25, 0.29, 0.40]  # the RMSE is not consulted: a ranker has none
    seen = []
    history = run(model, _Counted(model, []), 5, rank=lambda: ndcg[len(seen)], patience=2, on_epoch=seen.append)
    assert [h.val_ndcg for h in history] == ndcg[:4] and all(h.val_rmse is None for h in history)
    assert float(model.weight.detach()) == 1.0  # the second sweep's state: the highest NDCG
    # An old checkpoint's rows have no val_ndcg, and still read back; a row with a stray field does not.
    row = {"epoch": 1, "train_loss": 0.5, "val_rmse": 0.9, "seconds": 1.0}
    assert Epoch.of(row).val_ndcg is None and Epoch.of({**row, "val_ndcg": 0.2}).val_ndcg == 0.2
    with pytest.raises(ValueError, match="fields"):
        Epoch.of({**row, "val_mae": 0.7})


def test_the_finish_gives_the_last_rows_figure_and_refuses_patience():
    model = torch.nn.Linear(1, 1, bias=False)
    fitter = _Counted(model, [], stops_early=False)
    history = run(model, fitter, 3, validate=lambda: 0.9)
    assert [h.val_rmse for h in history] == [0.9, 0.9, 0.5]
    assert fitter.calls[-2:] == [("sweep", 2), ("finish", None)]
    with pytest.raises(ConfigError, match="patience does not apply"):
        run(model, _Counted(model, [], stops_early=False), 3, patience=1)


def test_training_defaults_follow_the_log_size_and_flags_still_win():
    from movierec.models import bmf

    for name in ("bmf", "blend"):
        spec = models.get(name)
        assert TrainConfig.for_model(spec).epochs == 60  # size unknown: the plain defaults
        assert TrainConfig.for_model(spec, bmf.SMALL_LOG).epochs == bmf.SMALL_LOG_SWEEPS
        assert TrainConfig.for_model(spec, bmf.SMALL_LOG + 1).epochs == 60
        assert TrainConfig.for_model(spec, 100, epochs=7).epochs == 7
    assert TrainConfig.for_model(models.get("mlp"), 100).epochs == 25  # models without a size rule keep theirs


def test_a_late_non_finite_validation_rmse_keeps_the_best_epoch():
    # An epoch that blows up after good ones ends the fit with the best state restored, not an error.
    from movierec.models.base import Sweeps

    model = torch.nn.Linear(1, 1, bias=False)
    scores = itertools.chain([1.0, 0.8, 0.9], itertools.repeat(float("nan")))

    class Fitter(Sweeps):
        def sweep(self, epoch: int) -> float:
            with torch.no_grad():
                model.weight.fill_(float(epoch))
            return 0.0

    history = run(model, Fitter(), 10, validate=lambda: next(scores), patience=3)
    assert len(history) == 10 and float(model.weight.detach()) == 1.0  # epoch 2's state (weight 1)


@pytest.mark.parametrize("name", ["checkpoint.json", "checkpoint.safetensors"])
def test_a_fresh_run_leaves_files_it_did_not_write_in_its_checkpoint_folder(tmp_path, monkeypatch, capsys, name):
    from helpers import run_cli

    partial = tmp_path / "m.partial"
    partial.mkdir()
    (partial / name).write_text('{"x": 1}')  # a user's file that merely has a checkpoint's name
    args = ["train", "--model", "mf", "--synthetic", "300x200x6000", "--epochs", "1", "--out", str(tmp_path / "m")]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "is not a checkpoint movierec wrote" in err and name in err, err
    assert (partial / name).read_text() == '{"x": 1}' and not (tmp_path / "m").exists()
    (partial / name).unlink()  # an interrupted run's own checkpoint is the next run's to replace
    config = TrainConfig.for_model(models.get("mf"), epochs=1)
    parts = pipeline.split(generate(SyntheticConfig(n_users=300, n_items=200, n_ratings=6000, seed=0)).ratings)
    fitting.fit(parts.fit, parts.val, "mf", ranker="popular", train_config=config, checkpoint_dir=partial)
    assert (partial / "checkpoint.json").exists()
    assert run_cli(monkeypatch, capsys, *args)[0] == 0 and not partial.exists()

"""tune: a search on the validation part, the config file it writes, and `train --config` reading it."""

from __future__ import annotations

import json
import sys

import pytest
from helpers import run_cli

from movierec import models, pipeline, tuning
from movierec.errors import ConfigError
from movierec.models.ease import EASEConfig
from movierec.models.knn import KNNConfig

TINY = ["--synthetic", "300x200x6000"]


@pytest.fixture(scope="module")
def tuned(small):
    pytest.importorskip("optuna")
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    return tuning.tune(parts, "knn", trials=5, seed=1, device="cpu")


def test_search_is_never_worse_than_the_defaults_on_validation(tuned):
    assert tuned.trials == 5
    assert tuned.metric == "rmse" and tuned.value <= tuned.default_value
    assert tuned.model == "knn" and set(tuned.model_config) == set(KNNConfig().__dict__)


def test_written_config_loads_back_as_the_model_and_its_settings(tuned, tmp_path):
    path = tuning.save(tuned, tmp_path / "best.json")
    name, config, train = tuning.load_config(path)
    assert name == "knn" and isinstance(config, KNNConfig)
    assert config.__dict__ == tuned.model_config
    assert train == tuned.train


def test_a_tuned_config_replaces_only_an_earlier_one(tuned, tmp_path, monkeypatch, capsys):
    notes, side = tmp_path / "notes.json", tmp_path / "notes.json.tmp"
    notes.write_text('{"mine": true}')
    side.write_text("also mine")
    with pytest.raises(ConfigError, match="will not be overwritten"):
        tuning.save(tuned, notes)
    code, _, err = run_cli(monkeypatch, capsys, "tune", "--model", "knn", "--trials", "1", "--out", str(notes), *TINY)
    assert code == 2 and "will not be overwritten" in err and "trial" not in err  # refused before any trial
    assert notes.read_text() == '{"mine": true}' and side.read_text() == "also mine"
    best = tuning.save(tuned, tmp_path / "best.json")
    tuning.save(tuned, best)  # a rerun replaces its own file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "notes.json", "notes.json.tmp"]


def test_train_with_config_trains_the_tuned_model(tmp_path, monkeypatch, capsys):
    pytest.importorskip("optuna")
    best = tmp_path / "best.json"
    code, out, _ = run_cli(
        monkeypatch, capsys, "tune", "--model", "knn", "--trials", "3", "--out", str(best), "--json", *TINY
    )
    assert code == 0, out
    written = json.loads(best.read_text())
    assert json.loads(out)["value"] == written["value"] <= written["default_value"]
    run = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "train", "--config", str(best), "--out", str(run), "--json", *TINY)
    assert code == 0, err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["rater"]["name"] == "knn" and manifest["rater"]["config"] == written["model_config"]


def test_config_for_another_model_than_asked_is_refused(tmp_path, monkeypatch, capsys):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"format": tuning.FORMAT, "model": "knn", "model_config": {}, "train": {}}))
    code, _, err = run_cli(monkeypatch, capsys, "train", "--config", str(best), "--model", "mf", *TINY)
    assert code == 2 and "differs" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such config file"),
        ("{not json", "not valid JSON"),
        ('{"model": "knn"}', "not a movierec tuned config"),
        ('{"format": "movierec-tuned-config", "model": "knn", "model_config": {"kk": 1}}', "does not fit"),
        ('{"format": "movierec-tuned-config", "model": "knn", "train": {"seed": 3}}', "unknown training"),
        ('{"format": "movierec-tuned-config", "model": "nope"}', "unknown model"),
    ],
)
def test_bad_config_files_are_named_and_explained(tmp_path, content, message):
    path = tmp_path / "best.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        tuning.load_config(path)
    assert str(path) in str(info.value)


def test_missing_optuna_is_a_clear_user_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    code, _, err = run_cli(monkeypatch, capsys, "tune", "--model", "knn", "--trials", "2", *TINY)
    assert code == 2 and "pip install" in err and "Traceback" not in err


def test_a_ranker_is_tuned_for_ndcg_and_never_worse_than_its_defaults(small):
    pytest.importorskip("optuna")
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    tuned = tuning.tune(parts, "ease", trials=4, seed=2)
    assert tuned.metric == "ndcg@10" and tuned.value >= tuned.default_value > 0
    assert set(tuned.model_config) == {"l2", "weighting", "genres"}
    assert tuned.model_config["genres"] == 0.0  # synthetic items have no genres: the fitted config says so


def test_every_model_but_the_fixed_popular_list_can_be_tuned():
    tunable = {name for name, spec in models.MODELS.items() if spec.space is not None}
    assert tunable == set(models.MODELS) - {"popular"}
    with pytest.raises(ConfigError, match="nothing to tune"):
        tuning.check_tunable("popular")


@pytest.mark.parametrize("trials", ["0", "-1"])
def test_no_trials_is_refused_before_any_data_is_read(monkeypatch, capsys, trials):
    pytest.importorskip("optuna")
    code, _, err = run_cli(monkeypatch, capsys, "tune", "--model", "knn", "--trials", trials, *TINY)
    assert code == 2 and f"--trials must be at least 1, got {trials}" in err
    assert "tuning" not in err and "ratings" not in err  # no progress bar, no data summary first


def test_a_tuned_ease_config_from_before_genres_loads_without_them(tmp_path):
    path = tmp_path / "best.json"
    path.write_text('{"format": "movierec-tuned-config", "model": "ease", "model_config": {"l2": 50.0}}')
    assert tuning.load_config(path)[1] == EASEConfig(l2=50.0, genres=0.0)
    path.write_text('{"format": "movierec-tuned-config", "model": "ease", "model_config": {"genres": 2.0}}')
    assert tuning.load_config(path)[1] == EASEConfig(genres=2.0)


@pytest.mark.parametrize("bad", ['"abc"', "true", "null", "[1]"])
def test_a_tuned_value_of_the_wrong_kind_names_its_field(tmp_path, bad):
    path = tmp_path / "best.json"
    config = {"format": "movierec-tuned-config", "model": "ease", "model_config": {"genres": json.loads(bad)}}
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="genres must be a number"):
        tuning.load_config(path)


@pytest.mark.parametrize(
    ("part", "value", "message"),
    [
        ("model_config", {"dim": 1_000_000_000}, "dim must be from 0 to 4096, got 1000000000"),  # 7 TB of factors
        ("model_config", {"dim": 10.5}, "dim must be a whole number"),
        ("train", {"epochs": "many"}, "train.epochs must be a whole number, got 'many'"),
        ("train", {"lr": "fast"}, "train.lr must be a number, got 'fast'"),
        ("train", {"lr": -1.0}, "learning rate must be a positive number"),
        ("train", {"batch_size": 10**12}, "train.batch_size must be from 0 to"),
        ("train", {"patience": True}, "train.patience must be a whole number"),
    ],
)
def test_a_tuned_config_is_checked_before_anything_is_allocated(tmp_path, part, value, message):
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"format": "movierec-tuned-config", "model": "mf", part: value}))
    with pytest.raises(ConfigError, match=message) as refused:
        tuning.load_config(path)
    assert str(path) in str(refused.value)


@pytest.mark.parametrize("number", ["9" * 5000, "NaN", "1e999"])
def test_a_tuned_config_with_a_number_json_should_not_hold_is_refused(tmp_path, number):
    path = tmp_path / "best.json"
    path.write_text('{"format": "movierec-tuned-config", "model": "mf", "model_config": {"reg": ' + number + "}}")
    with pytest.raises(ConfigError, match="digits|not a number|overflows"):
        tuning.load_config(path)


def test_a_patience_of_null_means_never_stop_early(tmp_path):
    path = tmp_path / "best.json"
    path.write_text('{"format": "movierec-tuned-config", "model": "mf", "train": {"patience": null, "epochs": 3}}')
    assert tuning.load_config(path)[2] == {"patience": None, "epochs": 3}


def test_a_rating_model_is_not_tuned_on_a_log_without_ratings(small, monkeypatch, capsys, tmp_path):
    pytest.importorskip("optuna")
    plays = tmp_path / "plays.csv"
    plays.write_text("user,item\n" + "".join(f"{u},{(u * 7 + k) % 40}\n" for u in range(60) for k in range(8)))
    out = tmp_path / "best.json"
    code, _, err = run_cli(monkeypatch, capsys, "tune", "--model", "baseline", "--data", str(plays), "--out", str(out))
    assert code == 2 and "has no ratings" in err and "--model ease" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_ctrl_c_during_tune_is_one_line_and_exit_130(monkeypatch, capfd, tmp_path):
    pytest.importorskip("optuna")
    from movierec import fitting

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting, "fit", interrupted)
    monkeypatch.setattr(
        sys, "argv", ["movierec", "tune", "--model", "baseline", *TINY, "--out", str(tmp_path / "b.json")]
    )
    from movierec import cli
    from movierec.cli import main

    # main ends a Ctrl-C with os._exit(130), which would end this test process too.
    monkeypatch.setattr(cli, "hard_exit", sys.exit)

    with pytest.raises(SystemExit) as exited:
        main()
    err = capfd.readouterr().err
    assert exited.value.code == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not (tmp_path / "b.json").exists()


def test_a_failed_trial_says_why(small, monkeypatch):
    pytest.importorskip("optuna")
    from movierec import fitting
    from movierec.errors import MovierecError

    def failing(*args, **kwargs):
        raise MovierecError("the model diverged")

    monkeypatch.setattr(fitting, "fit", failing)
    states = []
    parts = pipeline.split(small.ratings, pipeline.SplitConfig(seed=3))
    with pytest.raises(ConfigError, match="no trial completed"):
        tuning.tune(parts, "baseline", trials=2, on_trial=lambda n, v, b, state: states.append(state))
    assert states == ["fail: the model diverged"] * 2

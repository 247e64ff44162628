"""Hyperparameter search on the validation part, and the tuned-config file ``train --config`` reads.

The search never sees the test ratings: each trial trains on the fit part and is scored
by its RMSE on the validation part (the recommender's predictions, fallbacks included:
what the test will measure). The first trial is always the model's defaults, so the
best configuration found is never worse on validation than the defaults. Optuna's TPE
sampler proposes the rest (seeded: the same seed gives the same trials); trials of
gradient-trained models report each epoch, so hopeless ones are pruned early.

Optuna is an optional extra (``pip install 'movierec[tune]'``); it is imported only here,
only when a search runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from movierec import models
from movierec.errors import ConfigError, MovierecError
from movierec.evaluate import evaluate
from movierec.training import TrainConfig

FORMAT = "movierec-tuned-config"

TRAIN_KEYS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "patience")
"""Training settings a tuned config may carry (seed and device stay the command line's)."""


def _space_mf(trial) -> tuple[dict, dict]:  # noqa: ANN001
    model = {
        "dim": trial.suggest_int("dim", 16, 256, log=True),
        "reg": trial.suggest_float("reg", 1e-3, 1.0, log=True),
        "reg_bias": trial.suggest_float("reg_bias", 1e-4, 0.1, log=True),
    }
    train = {
        "lr": trial.suggest_float("lr", 1e-3, 3e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [1024, 4096, 16384]),
    }
    return model, train


def _space_bmf(trial) -> tuple[dict, dict]:  # noqa: ANN001
    model = {
        "dim": trial.suggest_int("dim", 8, 96, log=True),
        "burn_in": trial.suggest_int("burn_in", 5, 40),
        "implicit_user": trial.suggest_categorical("implicit_user", [False, True]),
    }
    return model, {"epochs": trial.suggest_int("epochs", 40, 160, step=20)}


def _space_knn(trial) -> tuple[dict, dict]:  # noqa: ANN001
    model = {
        "k": trial.suggest_int("k", 10, 120, log=True),
        "shrinkage": trial.suggest_float("shrinkage", 5.0, 500.0, log=True),
        "reg_user": trial.suggest_float("reg_user", 1.0, 50.0, log=True),
        "reg_item": trial.suggest_float("reg_item", 1.0, 50.0, log=True),
    }
    return model, {}


def _space_baseline(trial) -> tuple[dict, dict]:  # noqa: ANN001
    model = {
        "reg_user": trial.suggest_float("reg_user", 0.5, 50.0, log=True),
        "reg_item": trial.suggest_float("reg_item", 0.5, 50.0, log=True),
    }
    return model, {}


def _space_mlp(trial) -> tuple[dict, dict]:  # noqa: ANN001
    model = {
        "dim": trial.suggest_int("dim", 8, 64, log=True),
        "hidden": trial.suggest_int("hidden", 64, 1024, log=True),
    }
    train = {
        "lr": trial.suggest_float("lr", 1e-3, 0.2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-7, 1e-3, log=True),
        "patience": 3,
    }
    return model, train


def _space_blend(trial) -> tuple[dict, dict]:  # noqa: ANN001
    from movierec.models.bmf import BMFConfig
    from movierec.models.knn import KNNConfig

    bmf = BMFConfig(dim=trial.suggest_int("bmf_dim", 8, 96, log=True))
    knn = KNNConfig(
        k=trial.suggest_int("knn_k", 10, 120, log=True),
        shrinkage=trial.suggest_float("knn_shrinkage", 5.0, 500.0, log=True),
    )
    return {"members": ("bmf", "knn"), "configs": (bmf, knn)}, {}


SPACES: dict[str, Callable[[Any], tuple[dict, dict]]] = {
    "mf": _space_mf,
    "bmf": _space_bmf,
    "knn": _space_knn,
    "baseline": _space_baseline,
    "mlp": _space_mlp,
    "blend": _space_blend,
}
"""What ``tune`` searches, per model: a trial -> (model config fields, training settings)."""


@dataclass(frozen=True)
class Tuned:
    """A tuned configuration: what ``train --config`` applies, and how it was found."""

    model: str
    """Registered model name."""
    model_config: dict
    """Every field of the model's config (JSON-able)."""
    train: dict
    """Training settings that differ from the model's defaults (a subset of ``TRAIN_KEYS``)."""
    val_rmse: float
    """Validation RMSE of this configuration (the search's objective)."""
    default_val_rmse: float
    """Validation RMSE of the model's defaults on the same split (trial 0)."""
    trials: int
    """Trials run (pruned and failed ones included)."""
    data: str = ""
    """What it was tuned on."""
    split: dict | None = None
    """The split the validation part came from."""

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1) + "\n"


def _objective_parts(model: str, trial) -> tuple[Any, dict]:  # noqa: ANN001
    spec = models.get(model)
    if model not in SPACES:
        raise ConfigError(f"no search space for model {model!r}; tunable: {', '.join(SPACES)}")
    model_fields, train_fields = SPACES[model](trial)
    return spec.config_type(**model_fields), train_fields


def tune(
    parts,  # noqa: ANN001  (pipeline.Parts)
    model: str,
    *,
    trials: int = 30,
    seed: int = 0,
    device: str = "auto",
    timeout: float | None = None,
    on_trial: Callable[[int, float | None, float, str], None] | None = None,
) -> Tuned:
    """Search ``model``'s hyperparameters on ``parts.val``; returns the best configuration.

    ``on_trial(number, val_rmse or None, best so far, state)`` is called after each trial
    (``state``: ``complete``, ``pruned`` or ``failed``).
    """
    optuna = _optuna()
    from movierec import pipeline

    spec = models.get(model)
    if model not in SPACES:
        raise ConfigError(f"no search space for model {model!r}; tunable: {', '.join(SPACES)}")
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if len(parts.val) == 0:
        raise ConfigError("tuning needs a validation part; raise --val-fraction")
    defaults = TrainConfig.for_model(spec)

    def objective(trial) -> float:  # noqa: ANN001
        if trial.number == 0:
            model_config, train_fields = spec.config_type(), dict[str, object]()
        else:
            model_config, train_fields = _objective_parts(model, trial)
        train_config = TrainConfig.for_model(spec, **{**train_fields, "seed": seed, "device": device})
        trial.set_user_attr("model_config", _plain(asdict(model_config)))
        trial.set_user_attr("train", {k: v for k, v in train_fields.items() if getattr(defaults, k) != v})

        def on_epoch(row: dict) -> None:
            if row.get("val_rmse") is None or spec.fit is not None:
                return
            trial.report(row["val_rmse"], row["epoch"])
            if trial.number > 0 and trial.should_prune():
                raise optuna.TrialPruned()

        recommender, _ = pipeline.fit(
            parts.fit, parts.val, model, train_config=train_config, model_config=model_config, on_epoch=on_epoch
        )
        return evaluate(recommender, parts.val)["rmse"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the caller shows progress its own way
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    )

    def callback(study, trial) -> None:  # noqa: ANN001
        best = study.best_value if any(t.value is not None for t in study.trials) else math.inf
        if on_trial:
            on_trial(trial.number, trial.value, best, trial.state.name.lower())

    # A diverging or failing trial is recorded as failed and the search goes on.
    failures = (MovierecError, RuntimeError)
    study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[callback], catch=failures)
    completed = [t for t in study.trials if t.value is not None]
    if not completed:
        raise ConfigError("no trial completed; see the errors above")
    best = study.best_trial
    default = study.trials[0]
    return Tuned(
        model=model,
        model_config=best.user_attrs["model_config"],
        train=best.user_attrs["train"],
        val_rmse=float(best.value),
        default_val_rmse=float(default.value) if default.value is not None else float("nan"),
        trials=len(study.trials),
        data=parts.fit.name,
    )


def save(tuned: Tuned, path: str | Path) -> Path:
    """Write ``tuned`` as JSON (atomically: a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tuned.to_json())
    tmp.replace(path)
    return path


def load_config(path: str | Path) -> tuple[str, object, dict]:
    """Read a tuned-config file: (model name, model config, training overrides).

    Errors name the file and what is wrong with it.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; write one with `movierec tune --out {path}`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ConfigError(f'{path}: not a movierec tuned config (expected "format": "{FORMAT}")')
    try:
        spec = models.get(raw["model"])
        model_config = spec.config_type(**raw.get("model_config", {}))
    except KeyError as exc:
        raise ConfigError(f"{path}: missing {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{path}: the model_config does not fit model {raw['model']!r} ({exc})") from None
    train = raw.get("train", {})
    unknown = set(train) - set(TRAIN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown training setting(s) {', '.join(sorted(unknown))}; allowed: {TRAIN_KEYS}")
    return spec.name, model_config, train


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the JSON written reads back equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "tuning needs Optuna, an optional extra: pip install 'movierec[tune]' (or pip install optuna)"
        ) from None
    return optuna


__all__ = ["FORMAT", "SPACES", "TRAIN_KEYS", "Tuned", "load_config", "save", "tune"]

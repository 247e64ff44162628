"""Hyperparameter search on the validation part, and the tuned-config file ``train --config`` reads.

The search never sees the test ratings: each trial trains on the fit part and is scored
on the validation part, by what that kind of model is for:
- a rating model by its RMSE there (the recommender's predictions, fallbacks included:
  what the test will measure), lower is better;
- a ranker by the NDCG@10 of its lists there (every item the user did not rate in the
  fit part ranked; a validation rating >= 4 relevant, as evaluation counts it), higher
  is better.

The first trial is always the model's defaults, so the best configuration found is
never worse on validation than the defaults. Optuna's TPE sampler proposes the rest
(seeded: the same seed gives the same trials); trials of gradient-trained models report
each epoch, so hopeless ones are pruned early. Each model's search space lives with the
model (``ModelSpec.space``).

Optuna is an optional extra (``pip install 'movierec[tune]'``); it is imported only here,
only when a search runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from movierec import models, outdir, stored
from movierec.errors import ConfigError, MovierecError
from movierec.evaluation import evaluate, evaluate_ranking, relevance_of
from movierec.progress import Progress, Relay
from movierec.training import TrainConfig

if TYPE_CHECKING:
    from movierec.data.ratings import Ratings
    from movierec.training import Epoch

FORMAT = "movierec-tuned-config"
MAX_CONFIG_BYTES = 1 << 24
"""A tuned config is a few hundred bytes; a file over 16 MiB is refused unread."""

TRAIN_KEYS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "patience")
"""Training settings a tuned config may carry (seed and device stay the command line's)."""


@dataclass(frozen=True)
class Tuned:
    """A tuned configuration: what ``train --config`` applies, and how it was found."""

    model: str
    """Registered model name (a rating model or a ranker)."""
    model_config: dict
    """Every field of the model's config (JSON-able)."""
    train: dict
    """Training settings that differ from the model's defaults (a subset of ``TRAIN_KEYS``)."""
    metric: str
    """What was optimised on the validation part: ``rmse`` (lower is better) or ``ndcg@10`` (higher)."""
    value: float
    """The best configuration's validation score."""
    default_value: float
    """The model's defaults' validation score on the same split (trial 0)."""
    trials: int
    """Trials run (pruned and failed ones included)."""
    data: str = ""
    """What it was tuned on."""
    split: dict | None = None
    """The split the validation part came from."""

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1) + "\n"


def check_tunable(model: str) -> models.ModelSpec:
    """The model's spec if it has a search space; a clear error otherwise (before any data is read)."""
    spec = models.get(model)
    if spec.space is None:
        tunable = ", ".join(n for n, s in models.MODELS.items() if s.space is not None)
        raise ConfigError(f"{model!r} has nothing to tune; tunable models: {tunable}")
    return spec


def check_data(ratings: Ratings, model: str) -> None:
    """Refuse to tune a rating model on a log without ratings (before a progress bar or any trial)."""
    if ratings.implicit and models.get(model).kind != "ranker":
        rankers = " or ".join(n for n, s in models.MODELS.items() if s.space is not None and s.kind == "ranker")
        raise ConfigError(
            f"{ratings.name} has no ratings (every row is a positive), so {model!r}, a rating model, cannot be "
            f"tuned on it; tune a ranker instead: --model {rankers}"
        )


def tune(
    parts,  # noqa: ANN001  (pipeline.Parts)
    model: str,
    *,
    trials: int = 30,
    seed: int = 0,
    device: str = "auto",
    timeout: float | None = None,
    on_trial: Callable[[int, float | None, float, str], None] | None = None,
    progress: Progress | None = None,
) -> Tuned:
    """Search ``model``'s hyperparameters on ``parts.val``; returns the best configuration.

    ``on_trial(number, value or None, best so far, state)`` is called after each trial
    (``state``: ``complete``, ``pruned`` or ``failed``); ``progress`` hears of each trial's fit.
    """
    progress = progress or Progress()
    optuna = _optuna()
    from movierec import fitting

    spec = check_tunable(model)
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if len(parts.val) == 0:
        raise ConfigError("tuning needs a validation part; raise --val-fraction")
    check_data(parts.fit, model)
    ranker = spec.kind == "ranker"
    n_train = parts.n_train
    defaults = TrainConfig.for_model(spec, n_train)
    relevance = relevance_of(parts.fit)
    failures = (MovierecError, RuntimeError)  # a trial failing so is recorded, with why, and the search goes on

    reasons: dict[int, str] = {}  # why each failed trial failed, for its line

    def objective(trial) -> float:  # noqa: ANN001
        try:
            return attempt(trial)
        except failures as exc:
            reasons[trial.number] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise

    def attempt(trial) -> float:  # noqa: ANN001
        if trial.number == 0:
            model_config, train_fields = spec.config_type(), dict[str, object]()
        else:
            fields, train_fields = spec.space(trial)  # type: ignore[misc]
            model_config = spec.config_type(**fields)
        trial.set_user_attr("model_config", _lists_for_tuples(asdict(model_config)))
        trial.set_user_attr("train", {k: v for k, v in train_fields.items() if getattr(defaults, k) != v})
        if ranker:
            # Trained on the fit part alone, so the validation ratings are unseen, as the test's will be.
            rec, _ = fitting.fit(parts.fit, None, None, ranker=model, ranker_config=model_config, progress=progress)
            # As fitted: a setting the data cannot use (genres, in a log without them) says so.
            trial.set_user_attr("model_config", _lists_for_tuples(asdict(rec.ranker_config)))  # type: ignore[call-overload]
            rec = replace(rec, lists=replace(rec.lists, gate=False))
            return evaluate_ranking(rec, parts.val, relevance=relevance, seed=seed)["ndcg"]
        train_config = TrainConfig.for_model(spec, n_train, **{**train_fields, "seed": seed, "device": device})

        class Pruning(Relay):
            """Each epoch's validation RMSE to Optuna, which may stop an unpromising trial."""

            def epoch(self, label: str, row: Epoch, total: int) -> None:
                super().epoch(label, row, total)
                if row.val_rmse is None or spec.sweeps is not None:
                    return
                trial.report(row.val_rmse, row.epoch)
                if trial.number > 0 and trial.should_prune():
                    raise optuna.TrialPruned()

        recommender, _ = fitting.fit(
            parts.fit,
            parts.val,
            model,
            ranker="popular",
            train_config=train_config,
            model_config=model_config,
            progress=Pruning(progress),
        )
        # Without sitting shifts: their weight was fitted on these very ratings.
        return evaluate(replace(recommender, sittings=None), parts.val)["rmse"]

    # The caller shows progress and failures its own way: Optuna's warnings would add a
    # traceback for every failed trial, and one for a Ctrl-C before the command's own line.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        direction="maximize" if ranker else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    )

    def callback(study, trial) -> None:  # noqa: ANN001
        done = any(t.value is not None for t in study.trials)
        best = study.best_value if done else (-math.inf if ranker else math.inf)
        if on_trial:
            state = trial.state.name.lower()
            on_trial(
                trial.number,
                trial.value,
                best,
                f"{state}: {reasons[trial.number]}" if trial.number in reasons else state,
            )

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
        metric="ndcg@10" if ranker else "rmse",
        value=float(best.value),
        default_value=float(default.value) if default.value is not None else float("nan"),
        trials=len(study.trials),
        data=parts.fit.name,
    )


def check_out(path: str | Path) -> None:
    """Refuse an ``--out`` that exists and is not an earlier tuned-config file (before any trial runs)."""
    outdir.check_file_replaceable(Path(path), _is_tuned, "a tuned-config file")


def _is_tuned(path: Path) -> bool:
    with path.open("rb") as f:
        raw = json.loads(f.read(1 << 20))
    return isinstance(raw, dict) and raw.get("format") == FORMAT


def save(tuned: Tuned, path: str | Path) -> Path:
    """Write ``tuned`` as JSON (atomically: a temporary file renamed into place)."""
    path = Path(path)
    check_out(path)
    with outdir.atomic_file(path) as tmp:
        tmp.write_text(tuned.to_json())
    return path


def load_config(path: str | Path) -> tuple[str, object, dict]:
    """Read a tuned-config file: (model name, model config, training overrides).

    Errors name the file and what is wrong with it.
    """
    path = Path(path)
    try:
        raw = stored.read_json(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; write one with `movierec tune --out {path}`") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except stored.Invalid as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ConfigError(f'{path}: not a movierec tuned config (expected "format": "{FORMAT}")')
    try:
        stored.utf8(raw, "the config")
        spec = models.get(stored.text(raw["model"], "model", 100))
        model_config = spec.saved_config(raw.get("model_config", {}))
    except KeyError as exc:
        raise ConfigError(f"{path}: missing {exc}") from None
    except (ConfigError, stored.Invalid) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{path}: the model_config does not fit model {spec.name!r} ({exc})") from None
    train = raw.get("train", {})
    if not isinstance(train, dict):
        raise ConfigError(f"{path}: train must be an object of training settings")
    unknown = set(train) - set(TRAIN_KEYS)
    if unknown:
        names = ", ".join(sorted(stored.printable(str(k))[:40] for k in unknown))
        raise ConfigError(f"{path}: unknown training setting(s) {names}; allowed: {', '.join(TRAIN_KEYS)}")
    defaults = TrainConfig()
    try:
        for key, value in train.items():
            if key == "patience" and value is None:
                continue  # never stop early
            default = 1 if key == "patience" else getattr(defaults, key)
            stored.check(value, default, f"train.{key}")
        TrainConfig(**train)  # ranges: epochs and batch size at least 1, lr > 0, a known optimizer
    except (stored.Invalid, ConfigError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return spec.name, model_config, train


def _lists_for_tuples(value: Any) -> Any:
    """Tuples to lists, recursively, so the JSON written reads back equal."""
    if isinstance(value, dict):
        return {k: _lists_for_tuples(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists_for_tuples(v) for v in value]
    return value


def _optuna():  # noqa: ANN202
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "tuning needs Optuna, an optional extra: pip install 'movierec[tune]' (or pip install optuna)"
        ) from None
    return optuna


__all__ = ["FORMAT", "TRAIN_KEYS", "Tuned", "check_data", "check_tunable", "load_config", "save", "tune"]

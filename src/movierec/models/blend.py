"""A linear blend of models, its weights fitted on the validation part (how the Netflix Prize was won).

Prediction (centred): ``w_0 + sum_m w_m f_m(u, i)``. Each member is fitted on the
training part by its own sweeps (so members are the models not trained by gradient
steps: ``bmf``, ``knn``, ``baseline``, ``als``); the weights are then the ridge least
squares fit of the members' validation predictions to the validation ratings. No member
looks at the validation ratings while fitting, so the weights are fitted on predictions
the members made blind; only the blend's own validation figure is slightly optimistic
(a handful of weights fitted to thousands of ratings).

The saved model holds every member's tensors under ``members.<m>.`` and the weights; the
manifest's config (member names and configs) is enough to rebuild its structure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, is_dataclass, replace

import torch
from torch import Tensor, nn

from movierec.errors import ConfigError
from movierec.models import als, baseline, bmf, knn
from movierec.models.base import ModelSpec, RaterData, RatingModel, Sweeps, fit_quietly, predict_centred
from movierec.models.bmf import BMFConfig
from movierec.models.knn import KNNConfig

MEMBERS: dict[str, ModelSpec] = {s.name: s for s in (baseline.SPEC, als.SPEC, bmf.SPEC, knn.SPEC)}
"""The models a blend can mix: the rating models with sweeps of their own (no gradient steps)."""
MEMBER_DEFAULTS: dict[str, object] = {
    "als": als.SMALL_CLIP,
}
"""A member's config when none is given, where it is not the model's own default: ``als`` as
its small clip-link candidate, what bmf and knn lack at ML-20M's shape (bench/NOTES.md)."""


def _member_spec(name: str) -> ModelSpec:
    try:
        return MEMBERS[name]
    except KeyError:
        raise ConfigError(
            f"blend member {name!r} cannot be blended; members must have sweeps of their own: {', '.join(MEMBERS)}"
        ) from None


@dataclass(frozen=True)
class BlendConfig:
    """Which models are blended, with their own configs."""

    members: tuple[str, ...] = ("bmf", "knn", "baseline", "als")
    """Registered names of the models blended (each fitted by its own sweeps)."""
    configs: tuple = field(default=())
    """One config per member (a dataclass, or a dict of its fields as saved); empty: ``MEMBER_DEFAULTS``, else
    each member's own defaults."""
    ridge: float = 1e-3
    """Ridge penalty on the member weights (relative to the validation size); steadies correlated members."""
    refit: bool = False
    """Once the weights are fitted, fit every member again on the training and validation parts
    together (same settings and seeds): more data, as peers without early stopping get; twice the time."""

    def __post_init__(self) -> None:
        members = tuple(self.members)
        if not members:
            raise ConfigError("a blend needs at least one member")
        specs = [_member_spec(name) for name in members]
        configs = tuple(self.configs) or tuple(MEMBER_DEFAULTS.get(spec.name) or spec.config_type() for spec in specs)
        if len(configs) != len(members):
            raise ConfigError(f"a blend of {len(members)} members needs {len(members)} configs, got {len(configs)}")
        built = []
        for spec, cfg in zip(specs, configs, strict=True):
            if isinstance(cfg, dict):
                try:
                    cfg = spec.saved_config(cfg)  # a dict is a saved config: from a manifest or tuned file
                except TypeError as exc:
                    raise ConfigError(f"blend member {spec.name!r}: bad config {cfg} ({exc})") from None
                except ConfigError as exc:
                    raise ConfigError(f"blend member {spec.name!r}: {exc}") from None
            elif not (is_dataclass(cfg) and isinstance(cfg, spec.config_type)):
                raise ConfigError(f"blend member {spec.name!r} needs a {spec.config_type.__name__}, got {cfg!r}")
            built.append(cfg)
        if self.ridge < 0:
            raise ConfigError(f"ridge must be >= 0, got {self.ridge}")
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "configs", tuple(built))


class Blend(RatingModel):
    """Members side by side and the weights that mix their predictions (intercept last)."""

    weights: Tensor
    members: list[RatingModel]  # an nn.ModuleList; typed by what it holds

    def __init__(self, members: list[RatingModel]) -> None:
        super().__init__()
        self.n_users, self.n_items = members[0].n_users, members[0].n_items
        self.members = nn.ModuleList(members)  # type: ignore[assignment]
        self.register_buffer("weights", torch.zeros(len(members) + 1))

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        out = self.weights[-1].expand(len(user_idx)).clone()
        for w, member in zip(self.weights[:-1], self.members, strict=True):
            out += w * member(user_idx, item_idx)
        return out

    def score(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        out = self.weights[-1].expand(len(user_idx), len(item_idx)).clone()
        for w, member in zip(self.weights[:-1], self.members, strict=True):
            out += w * member.score(user_idx, item_idx)
        return out

    def check(self) -> None:
        for member in self.members:
            member.check()

    def item_vectors(self) -> Tensor | None:
        """The first member's item vectors that exist (the factor model's, in the default blend)."""
        for member in self.members:
            vectors = member.item_vectors()
            if vectors is not None:
                return vectors
        return None

    def fold_in(self, item_idx: Tensor, target: Tensor) -> Callable[[Tensor], Tensor] | None:
        """Each member folds the user in; their scorers are mixed with the blend's weights."""
        scorers: list[Callable[[Tensor], Tensor]] = []
        for member in self.members:
            one = member.fold_in(item_idx, target)
            if one is None:  # one member without a fold-in: no blend of the others stands in for it
                return None
            scorers.append(one)
        weights = self.weights

        def scorer(items: Tensor) -> Tensor:
            out = weights[-1].expand(len(items)).clone()
            for w, s in zip(weights[:-1], scorers, strict=True):
                out += w * s(items)
            return out

        return scorer


def blend_weights(preds: Tensor, target: Tensor, ridge: float) -> Tensor:
    """Ridge least squares of ``target`` (n,) on the columns of ``preds`` (n, m) plus an intercept (last)."""
    x = torch.cat([preds.double(), torch.ones(len(preds), 1, dtype=torch.float64, device=preds.device)], 1)
    penalty = torch.full((x.shape[1],), ridge * len(x), dtype=torch.float64, device=preds.device)
    penalty[-1] = 0.0  # the intercept is not shrunk
    return torch.linalg.solve(x.T @ x + torch.diag(penalty), x.T @ target.double().to(preds.device))


SIDE_BY_SIDE = 1_000_000
"""Most fit ratings for which members are fitted beside the lead: below it every member's working
state is small (at ML-20M's shape knn's alone took 4.3 GB)."""


class _Sweeps(Sweeps):
    """The first member's sweeps are the blend's; the others, the weights and any refit come at the finish.

    The blend's history is its first member's: that member's training loss, and its own
    validation figure where it has one (a sampler's running mean), until the last row,
    which is the blend's. Members are fitted one after another, each one's working state
    (a sampler's) dropped before the next starts, so the blend's peak memory is its
    largest member's.
    """

    stops_early = False  # the blend is whole only once its weights are fitted
    validates_itself = True

    def __init__(self, model: RatingModel, config: BlendConfig, data: RaterData) -> None:
        assert isinstance(model, Blend)  # the registry pairs these sweeps with this build
        self.model, self.config, self.data = model, config, data
        self.seeds = [int(torch.randint(0, 2**62, (1,), generator=data.generator)) for _ in config.members]
        self.lead: Sweeps | None = self._member(0, data)
        self.lead_rmse: float | None = None
        self.done = 0
        self.beside: dict[int, Future] = {}
        side_by_side = len(data.target) <= SIDE_BY_SIDE and torch.get_num_threads() < len(os.sched_getaffinity(0))
        self.pool = ThreadPoolExecutor(1) if side_by_side and len(config.members) > 1 else None
        if all(_member_spec(name).one_pass for name in config.members):  # the blend is one pass too
            self.planned = 1

    def _member(self, m: int, data: RaterData) -> Sweeps:
        make = _member_spec(self.config.members[m]).sweeps
        assert make is not None  # members are chosen among models with sweeps of their own
        generator = torch.Generator().manual_seed(self.seeds[m])
        return make(self.model.members[m], self.config.configs[m], replace(data, generator=generator))

    def _fit_member(self, m: int, sweeps: int) -> None:
        fit_quietly(self._member(m, self.data), sweeps)

    def _sweeps_of(self, m: int) -> int:
        """The lead's sweeps, or fewer: no member runs past its own epochs (als: 25, where bmf takes 60)."""
        own = _member_spec(self.config.members[m]).training.get("epochs")
        return self.done if m == 0 or own is None else min(self.done, int(own))

    def sweep(self, epoch: int) -> float | None:
        self.done = epoch + 1
        lead = self.lead
        assert lead is not None  # sweeps come before the finish
        if epoch >= (lead.planned or epoch + 1):
            return None  # a one-pass first member beside iterative ones: it is done
        loss = lead.sweep(epoch)
        self.lead_rmse = lead.val_rmse() if lead.validates_itself else None
        for m in range(1, len(self.config.members)):
            own = _member_spec(self.config.members[m]).training.get("epochs")
            if self.pool is not None and m not in self.beside and own is not None and self.done >= int(own):
                # Its sweep count is settled: it can be fitted now, on the spare core.
                self.beside[m] = self.pool.submit(self._fit_member, m, self._sweeps_of(m))
        return loss

    def val_rmse(self) -> float | None:
        return self.lead_rmse

    def finish(self, validate: Callable[[], float | None]) -> float | None:
        model, config, val = self.model, self.config, self.data.val
        assert self.lead is not None
        self.lead.finish(lambda: None)
        self.lead = None  # its working state goes before the next member's comes
        for m in range(1, len(config.members)):
            if m in self.beside:
                self.beside[m].result()  # re-raises what went wrong on its thread
            else:
                fit_quietly(self._member(m, self.data), self._sweeps_of(m))
        if self.pool is not None:
            self.pool.shutdown()
        with torch.no_grad():
            if val is not None:
                preds = torch.stack([predict_centred(m, val[0], val[1]) for m in model.members], 1)
                model.weights.copy_(blend_weights(preds, val[2], config.ridge).float())
            else:  # nothing to fit the weights on: an even mix
                even = torch.tensor([1.0 / len(config.members)] * len(config.members) + [0.0])
                model.weights.copy_(even)
        val_rmse = validate()  # before any refit: afterwards the validation ratings are training data
        if config.refit and val is not None:
            d = self.data
            users, items = torch.cat([d.user_idx, val[0]]), torch.cat([d.item_idx, val[1]])
            both = RaterData(users, items, torch.cat([d.target, val[2]]), d.generator, bounds=d.bounds)
            for m in range(len(config.members)):
                fit_quietly(self._member(m, both), self._sweeps_of(m))
        return val_rmse


def _build(config: BlendConfig, n_users: int, n_items: int, generator: torch.Generator) -> Blend:
    pairs = zip(config.members, config.configs, strict=True)
    return Blend([_member_spec(name).build(cfg, n_users, n_items, generator) for name, cfg in pairs])


def _space(trial) -> tuple[dict, dict]:  # noqa: ANN001
    """What ``movierec tune`` searches: a trial -> (config fields, training settings)."""
    bmf = BMFConfig(dim=trial.suggest_int("bmf_dim", 8, 96, log=True))
    knn = KNNConfig(
        k=trial.suggest_int("knn_k", 10, 120, log=True),
        shrinkage=trial.suggest_float("knn_shrinkage", 5.0, 500.0, log=True),
    )
    return {"members": ("bmf", "knn"), "configs": (bmf, knn)}, {}


SPEC = ModelSpec(
    name="blend",
    summary="bmf + knn + baseline + als mixed by weights fitted on the validation part; the most accurate model",
    config_type=BlendConfig,
    build=_build,
    training={"epochs": 60},  # the lead member's (bmf's) Gibbs sweeps
    training_by_size=bmf.training_by_size,
    sweeps=_Sweeps,
    space=_space,
)

"""Several models trained on one split and scored side by side: the question every new user has.

Each model is scored at its own job. A rating model: RMSE and MAE on the test ratings,
and the NDCG@10 and recall@10 of lists ordered by its predicted ratings (how rating
models listed items before rankers: usually worse than the most-popular list). A
ranker: the NDCG@10 and recall@10 of its own lists (its settings and popularity
discount as ``train`` chose them on the validation part; no rater reorders them), and
no RMSE. Every model trains on the same fit part (rankers on fit and validation, as
``train`` fits them) and is tested once on the same test part.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from movierec import models
from movierec.evaluation import evaluate, evaluate_ranking, relevance_of
from movierec.fitting import fit
from movierec.models.popular import RatingRanker
from movierec.pipeline import RANKING_MAX_USERS, Parts
from movierec.progress import Progress
from movierec.recommend import ListConfig, Recommender
from movierec.training import TrainConfig

DEFAULT_MODELS = ("baseline", "mlp", "als", "ease", "ials", "popular")
"""What ``movierec compare`` trains when no ``--models`` are named."""


def compare(
    parts: Parts,
    names: list[str],
    *,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
) -> list[dict]:
    """One row per model: model, kind, rmse and mae (None for rankers), ndcg, recall, seconds.

    ``rmse`` is what ``train`` reports, sitting shifts included where the rater has them;
    ``rmse_without_sittings`` is then the rater's alone (what peers that see no times
    compare with), and None where no shifts apply.

    Rows come in the order of ``names``; ``progress`` hears of each model's fit and scoring
    (by default, the ``movierec`` logger).
    """
    progress = progress or Progress()
    for name in names:
        models.get(name)  # every name checked before anything trains
    rows = []
    relevance = relevance_of(parts.fit)
    for number, name in enumerate(names, 1):
        with progress.phase(f"model {number} of {len(names)}: {name}", key=name):
            rows.append(_row(parts, name, relevance, seed, device, progress))
        progress.note(f"{name}: trained and scored in {rows[-1]['wall_seconds']:.1f} s")
    return rows


def _row(parts: Parts, name: str, relevance: float, seed: int, device: str, progress: Progress) -> dict:
    """One model fitted on ``parts`` and scored on its test part."""
    spec = models.get(name)
    started = time.perf_counter()
    if spec.kind == "ranker":
        rec, report = fit(
            parts.fit, parts.val, None if parts.fit.implicit else "baseline", ranker=name, progress=progress
        )
        rec = replace(rec, lists=replace(rec.lists, gate=False))  # its own order, as train chose it
        seconds = report.ranker_seconds
    else:
        config = TrainConfig.for_model(spec, parts.n_train, seed=seed, device=device)
        rec, report = fit(parts.fit, parts.val, name, ranker="popular", train_config=config, progress=progress)
        seconds = report.rater_seconds
        rec = by_rating(rec)
    row: dict = {
        "model": name,
        "kind": spec.kind,
        "rmse": None,
        "mae": None,
        "rmse_without_sittings": None,
        "seconds": seconds,
    }
    with progress.phase(f"{name}: scoring the test part"):
        if spec.kind == "rater":
            scores = evaluate(rec, parts.test)
            row.update(rmse=scores["rmse"], mae=scores["mae"])
            if rec.sittings is not None:
                row.update(rmse_without_sittings=evaluate(replace(rec, sittings=None), parts.test)["rmse"])
        ranking = evaluate_ranking(rec, parts.test, relevance=relevance, max_users=RANKING_MAX_USERS, seed=seed)
    row.update(ndcg=ranking["ndcg"], recall=ranking["recall"], wall_seconds=time.perf_counter() - started)
    return row


def by_rating(recommender: Recommender) -> Recommender:
    """The recommender listing by its rater's predicted rating, as lists were made before rankers."""
    rater = recommender.rater
    assert rater is not None
    cold = torch.from_numpy((recommender.item_counts == 0).nonzero()[0])
    ranker = RatingRanker(rater, torch.from_numpy(recommender.user_bias), torch.from_numpy(recommender.item_bias), cold)
    ranker.rating_max.copy_(recommender.ranker.rating_max)  # the popular fallback's scale, unchanged
    ranker.rating_floor.copy_(recommender.ranker.rating_floor)
    return replace(
        recommender,
        ranker=ranker,
        ranker_name=f"{recommender.rater_name} ratings",
        lists=ListConfig(gate=False, discount=0.0),
    )

"""Evaluation: ranking over all unrated items, error by user activity, rating histograms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_recommend import make_recommender
from typer.testing import CliRunner

from movierec import pipeline
from movierec.cli import app
from movierec.data.ratings import Ratings
from movierec.errors import ConfigError
from movierec.evaluation import default_relevance, error_by_activity, evaluate_ranking, rating_distribution


def held_out(rec, rows) -> Ratings:
    """Test ratings over the hand-made recommender's own index: rows of (user_id, item_id, rating)."""
    users = rec.index.user_idx([r[0] for r in rows]).astype(np.int32)
    items = rec.index.item_idx([r[1] for r in rows]).astype(np.int32)
    rating = np.array([r[2] for r in rows], dtype=np.float32)
    return Ratings(users, items, rating, None, rec.index, name="hand-made test")


HAND = [(10, 101, 5.0), (10, 102, 2.0), (20, 100, 4.5), (40, 100, 4.0), (30, 104, 3.0)]


def test_ranking_metrics_by_hand():
    rec = make_recommender()
    out = evaluate_ranking(rec, held_out(rec, HAND), k=2, relevance=4.0)
    # Top-2 lists: user 10 [101, 103] hit at 1; user 20 [100, 101] hit at 1; user 40 (no
    # training ratings) gets popular [100, 102], hit at 1. User 30 has no relevant item.
    assert out["n_users"] == 3 and out["n_users_popular"] == 1
    assert out["precision"] == pytest.approx(0.5)
    assert out["recall"] == pytest.approx(1.0)
    assert out["hit_rate"] == pytest.approx(1.0)
    assert out["ndcg"] == pytest.approx(1.0)
    assert out["map"] == pytest.approx(1.0)
    # Moving user 20's relevant item to rank 2 costs exactly its discount.
    moved = evaluate_ranking(rec, held_out(rec, [(10, 101, 5.0), (20, 101, 4.5), (40, 100, 4.0)]), k=2)
    assert moved["ndcg"] == pytest.approx((1 + 1 / math.log2(3) + 1) / 3)
    assert moved["map"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert out["coverage"] == pytest.approx(4 / 5)  # 100, 101, 102, 103 appear
    assert out["sampled"] is False


def test_relevance_threshold_and_user_sampling():
    rec = make_recommender()
    test = held_out(rec, HAND)
    strict = evaluate_ranking(rec, test, k=2, relevance=5.0)
    assert strict["n_users"] == 1 and strict["precision"] == pytest.approx(0.5)
    sampled = evaluate_ranking(rec, test, k=2, relevance=4.0, max_users=2, seed=1)
    assert sampled["n_users"] == 2 and sampled["sampled"] is True
    assert sampled == evaluate_ranking(rec, test, k=2, relevance=4.0, max_users=2, seed=1)  # seeded
    with pytest.raises(Exception, match="no item is relevant"):
        evaluate_ranking(rec, test, relevance=5.5)


def test_ranking_on_a_test_file_with_unseen_users_and_items():
    rec = make_recommender()
    # A separately indexed test file: user 50 is new (popular list), item 999 is unknown
    # (relevant, never recommendable: it stays in recall's denominator).
    test = Ratings.from_ids(np.array([10, 10, 50]), np.array([101, 999, 100]), np.array([5.0, 5.0, 4.5]))
    out = evaluate_ranking(rec, test, k=1, relevance=4.0)
    assert out["n_users"] == 2 and out["n_users_popular"] == 1
    assert out["recall"] == pytest.approx((1 / 2 + 1) / 2)
    assert out["precision"] == pytest.approx(1.0)


def test_default_relevance():
    assert default_relevance((0.5, 5.0)) == 4.0
    assert default_relevance((1.0, 5.0)) == 4.0
    assert default_relevance((1.0, 10.0)) == pytest.approx(7.75)


def test_error_by_activity_buckets():
    rec = make_recommender()
    rows = error_by_activity(rec, held_out(rec, HAND))
    assert [r["bucket"] for r in rows] == ["0", "1-10", "11-30", "31-100", "101-300", ">300"]
    by = {r["bucket"]: r for r in rows}
    assert (by["0"]["n"], by["0"]["n_users"]) == (1, 1)  # user 40 has no training ratings
    assert (by["1-10"]["n"], by["1-10"]["n_users"]) == (4, 3)
    assert by[">300"]["n"] == 0 and by[">300"]["rmse"] is None
    # User 40 on item 100 falls back to mean + item bias = 3.5; the rating was 4.0.
    assert by["0"]["rmse"] == pytest.approx(0.5) and by["0"]["mae"] == pytest.approx(0.5)
    assert by["1-10"]["lo"] == 1 and by["1-10"]["hi"] == 10 and by[">300"]["hi"] is None


def test_rating_distribution_histograms():
    rec = make_recommender()
    test = held_out(rec, HAND)
    out = rating_distribution(rec, test)
    assert out["bins"] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert out["test"] == [0, 0, 0, 1, 0, 1, 0, 1, 1, 1]
    assert sum(out["predicted"]) == len(test)
    # Predictions: 3.9 (->4.0), 3.0, 3.0, 3.5, 3.0 (cold item: mean + 0 for user 30, whose vector . 104 is not used).
    assert out["predicted"][out["bins"].index(3.0)] >= 2


def test_training_run_writes_ranking_activity_and_distribution(small, tmp_path):
    metrics = pipeline.run(small.ratings, "baseline", tmp_path / "run", split_config=pipeline.SplitConfig(seed=1))
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["ranking"] == metrics["ranking"]
    ranking = saved["ranking"]
    assert ranking["k"] == 10 and ranking["relevance"] == 4.0
    assert 0 < ranking["ndcg"] <= 1 and 0 < ranking["coverage"] <= 1
    assert sum(r["n"] for r in saved["error_by_activity"]) == saved["n_test"]
    dist = saved["rating_distribution"]
    assert sum(dist["test"]) == sum(dist["predicted"]) == saved["n_test"]


def test_evaluate_command_reports_ranking_metrics(small, tmp_path):
    runner = CliRunner()
    out = tmp_path / "m"
    args = ["train", "--model", "baseline", "--out", str(out), "--synthetic", "300x200x8000", "--json"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(
        app, ["evaluate", "--model", str(out), "--dataset", "synthetic", "--synthetic", "300x200x8000", "-k", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "NDCG" in result.output and "top 5" in result.output
    result = runner.invoke(
        app,
        ["evaluate", "--model", str(out), "--dataset", "synthetic", "--synthetic", "300x200x8000"]
        + ["--relevance", "4.5", "--json"],
    )
    body = json.loads(result.output)
    assert body["ranking"]["relevance"] == 4.5 and body["ranking"]["k"] == 10
    trained = json.loads((out / "metrics.json").read_text())["test_rmse"]
    alone = runner.invoke(app, ["evaluate", "--model", str(out), "--synthetic", "300x200x8000", "--json"])
    assert alone.exit_code == 0, alone.output  # --synthetic alone names the data, as for train
    assert json.loads(alone.output)["rmse"] == pytest.approx(trained, abs=1e-9)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-k", "100000000"], "-k must be between 1 and 1000"),  # was a 454 GiB allocation and a traceback
        (["-k", "0"], "-k must be between 1 and 1000"),
        (["--max-users", "0"], "--max-users must be at least 1"),
        (["--relevance", "nan"], "--relevance must be a number"),
    ],
)
def test_evaluate_refuses_absurd_flags_before_loading(tmp_path, flags, message):
    result = CliRunner().invoke(
        app, ["evaluate", "--model", str(tmp_path / "none"), "--synthetic", "50x40x500", *flags]
    )
    assert isinstance(result.exception, ConfigError) and message in str(result.exception), result.output


def test_evaluate_refuses_ratings_the_model_was_not_trained_on(tmp_path):
    runner = CliRunner()
    out = tmp_path / "m"
    args = ["train", "--model", "baseline", "--out", str(out), "--synthetic", "300x200x8000", "--json"]
    assert runner.invoke(app, args).exit_code == 0
    # Another log re-split "as in training" is not the model's test part: it was scored with exit 0.
    other = runner.invoke(app, ["evaluate", "--model", str(out), "--synthetic", "50x40x500"])
    assert isinstance(other.exception, ConfigError), other.output
    assert "does not give back the ratings this model was trained on" in str(other.exception)
    assert "--test" in str(other.exception)
    # Ratings on another scale (here 1..10, declared) would give an RMSE of nothing.
    test = tmp_path / "ten.csv"
    test.write_text("userId,movieId,rating\n1,1,9\n2,3,2\n")
    scaled = runner.invoke(app, ["evaluate", "--model", str(out), "--test", str(test), "--rating-range", "1,10"])
    assert isinstance(scaled.exception, ConfigError) and "outside the model's scale 0.5..5" in str(scaled.exception)
    five = tmp_path / "five.csv"  # the same rows on the model's scale are scored
    five.write_text("userId,movieId,rating\n1,1,4.5\n2,3,2\n")
    same = runner.invoke(app, ["evaluate", "--model", str(out), "--test", str(five), "--json"])
    assert same.exit_code == 0 and json.loads(same.output)["n"] == 2, same.output


def test_evaluate_knows_its_training_data_by_content_not_by_name_or_size(small, tmp_path):
    runner = CliRunner()
    r = small.ratings
    rows = [f"{u},{i},{x:g}" for u, i, x in zip(r.user_idx, r.item_idx, r.rating, strict=True)]
    log = tmp_path / "log.csv"
    log.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    out = tmp_path / "m"
    assert runner.invoke(app, ["train", "--model", "baseline", "--data", str(log), "--out", str(out)]).exit_code == 0
    same = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(log), "--json"])
    assert same.exit_code == 0, same.output
    assert json.loads(same.output)["rmse"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test_rmse"])
    # The same ratings in another order, under the same name and size: the split differs, and its
    # "held-out" part would be mostly training ratings.
    shuffled = tmp_path / "shuffled" / "log.csv"
    shuffled.parent.mkdir()
    order = np.random.default_rng(0).permutation(len(rows))
    shuffled.write_text("user,item,rating\n" + "\n".join(rows[k] for k in order) + "\n")
    moved = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(shuffled)])
    assert isinstance(moved.exception, ConfigError), moved.output
    assert "does not give back the ratings this model was trained on" in str(moved.exception)
    # The training file given as the test: most of it was trained on, and the scores say so.
    whole = runner.invoke(app, ["evaluate", "--model", str(out), "--test", str(log)])
    assert whole.exit_code == 0 and "were in the training data" in whole.output, whole.output
    train_only = tmp_path / "train.csv"
    parts = pipeline.split(r)
    seen = parts.fit.by_user(parts.val)
    users = seen.user_of_entry()
    lines = [f"{u},{i},{x:g}" for u, i, x in zip(users, seen.items, seen.ratings, strict=True)]
    train_only.write_text("user,item,rating\n" + "\n".join(lines) + "\n")
    refused = runner.invoke(app, ["evaluate", "--model", str(out), "--test", str(train_only)])
    assert isinstance(refused.exception, ConfigError) and "every one of its" in str(refused.exception)


def test_ranking_caveat_names_logs_where_every_model_scores_alike():
    from movierec.data.ids import IdIndex
    from movierec.evaluation import ranking_caveat

    def log(users, items) -> Ratings:
        index, u, i = IdIndex.build(np.array(users), np.array(items))
        return Ratings(u, i, np.full(len(users), 4.0, np.float32), None, index, name="log")

    test = log([1, 1, 2], [30, 31, 32])
    assert "no more than the list length 10" in ranking_caveat(np.arange(5), test, 10)
    assert "no test item was rated in training" in ranking_caveat(np.arange(100, 200), test, 10)
    assert ranking_caveat(np.arange(20, 100), test, 10) is None

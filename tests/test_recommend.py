"""Recommendations on a hand-made model whose right answers can be worked out on paper."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from movierec import recommend
from movierec.data.ids import IdIndex
from movierec.errors import ConfigError
from movierec.models.base import ModelSpec, RatingModel
from movierec.models.baseline import Baseline
from movierec.recommend import Recommender, UnknownIdError, write_recommendations

# Items 100..104 as vectors; 104 is never rated in training (a cold item).
Q = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]]
P = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
# Users 10, 20, 30, 40: 10 rated item 100; 20 rated 102, 103; 30 rated 100-103; 40 rated nothing.
SEEN = {0: [(0, 4.0)], 1: [(2, 5.0), (3, 3.5)], 2: [(0, 2.0), (1, 4.5), (2, 3.0), (3, 1.0)], 3: []}
ITEM_BIAS = [0.5, 0.2, 0.1, -0.3, 0.0]
MEAN = 3.0


@dataclass(frozen=True)
class DotConfig:
    """A dot-product model for tests."""

    dim: int = 2
    """Factors per user and item."""


class Dot(RatingModel):
    """p_u . q_i, with item vectors and fold-in (ridge regression on the frozen item side)."""

    def __init__(self, n_users: int, n_items: int, dim: int = 2) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.p = nn.Parameter(torch.zeros(n_users, dim))
        self.q = nn.Parameter(torch.zeros(n_items, dim))

    def forward(self, user_idx, item_idx):
        return (self.p[user_idx] * self.q[item_idx]).sum(1)

    def score(self, user_idx, item_idx):
        return self.p[user_idx] @ self.q[item_idx].T

    def item_vectors(self):
        return self.q

    def fold_in(self, item_idx, target):
        q = self.q[item_idx]
        p = torch.linalg.solve(q.T @ q + 0.1 * torch.eye(q.shape[1]), q.T @ target)
        return lambda items: self.q[items] @ p


DOT_SPEC = ModelSpec(
    name="dot-test",
    summary="dot product (tests only)",
    config_type=DotConfig,
    build=lambda config, n_users, n_items, generator: Dot(n_users, n_items, config.dim),
    training={"epochs": 1},
)


def make_recommender(model: str = "dot") -> Recommender:
    """The hand-made recommender, with the dot model or with a bias model (no vectors, no fold-in)."""
    if model == "dot":
        net: RatingModel = Dot(4, 5)
        with torch.no_grad():
            net.p.copy_(torch.tensor(P))
            net.q.copy_(torch.tensor(Q))
        name, config = "dot-test", DotConfig()
    else:
        net = Baseline(4, 5)
        with torch.no_grad():
            net.item_bias.copy_(torch.tensor(ITEM_BIAS))
        name, config = "baseline", None
    indptr = np.cumsum([0] + [len(SEEN[u]) for u in range(4)]).astype(np.int64)
    items = np.array([i for u in range(4) for i, _ in SEEN[u]], dtype=np.int32)
    ratings = np.array([r for u in range(4) for _, r in SEEN[u]], dtype=np.float32)
    return Recommender(
        model=net.eval(),
        model_name=name,
        model_config=config,
        index=IdIndex(np.array([10, 20, 30, 40]), np.array([100, 101, 102, 103, 104])),
        global_mean=MEAN,
        scale=(0.5, 5.0),
        user_bias=np.zeros(4, dtype=np.float32),
        item_bias=np.array(ITEM_BIAS, dtype=np.float32),
        seen_indptr=indptr,
        seen_items=items,
        seen_ratings=ratings,
        titles=np.array(["A", "B", "C", "D", "E"]),
    )


def ids(rows):
    return [r["item_id"] for r in rows]


def test_top_n_leaves_out_rated_items_and_breaks_ties_by_index():
    rec = make_recommender()
    rows = rec.recommend(10, 3)
    # Scores: 101 -> 3.9, 103 -> 3.1, 102 -> 3.0 and cold 104 -> 3.0 + biases 0 = 3.0: tie to the lower index.
    assert ids(rows) == [101, 103, 102]
    assert [r["score"] for r in rows] == pytest.approx([3.9, 3.1, 3.0])
    assert {r["source"] for r in rows} == {"model"}
    assert rows[0]["title"] == "B"


def test_include_rated_brings_them_back():
    rec = make_recommender()
    assert ids(rec.recommend(10, 2, exclude_seen=False)) == [100, 101]


def test_short_list_when_user_rated_almost_everything():
    rec = make_recommender()
    assert ids(rec.recommend(30, 3)) == [104]


def test_user_without_ratings_gets_popular_list_marked_as_such():
    rec = make_recommender()
    rows = rec.recommend(40, 10)
    # clip(mu + b_i) * log(1 + n_i): 100 -> 3.5 log 3, 102 -> 3.1 log 3, 103 -> 2.7 log 3, 101 -> 3.2 log 2.
    assert ids(rows) == [100, 102, 103, 101]
    assert [r["score"] for r in rows] == pytest.approx([3.5, 3.1, 2.7, 3.2])
    assert {r["source"] for r in rows} == {"popular"}


def test_unknown_ids_raise_a_clear_error():
    rec = make_recommender()
    for bad in (99, "x", "99999999999999999999999", 1.5):
        with pytest.raises(UnknownIdError, match="unknown user id"):
            rec.recommend(bad)
    with pytest.raises(UnknownIdError, match="unknown item id"):
        rec.similar_items(7)
    assert rec.recommend("10", 1) == rec.recommend(10, 1)  # string ids from a URL match int ids
    with pytest.raises(ConfigError, match="k must be"):
        rec.recommend(10, 0)


def test_batch_equals_one_by_one_in_any_block_size(monkeypatch):
    rec = make_recommender()
    users = np.array([0, 1, 2, 3, 1])
    whole = rec.top_n(users, 3)
    monkeypatch.setattr(recommend, "BLOCK_PAIRS", 5)  # one user per block
    monkeypatch.setattr(recommend, "PAIRS_PER_CALL", 2)  # and items scored two at a time
    blocked = rec.top_n(users, 3)
    np.testing.assert_array_equal(whole.items, blocked.items)
    np.testing.assert_array_equal(whole.scores, blocked.scores)
    monkeypatch.setattr(Dot, "score_chunk_pairs", 3, raising=False)  # a model's own chunk size wins
    hinted = rec.top_n(users, 3)
    np.testing.assert_array_equal(whole.items, hinted.items)
    assert whole.sources.tolist() == ["model", "model", "model", "popular", "model"]
    for row, u in enumerate(users):
        expected = rec.recommend(int(rec.index.user_ids[u]), 3)
        assert ids(expected) == [int(i) + 100 for i in whole.items[row] if i >= 0]


def test_row_top_k_matches_the_exact_one_with_ties_and_infinities():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(200, 12)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    for k in (1, 3, 12, 15):
        got = recommend._top_k_rows(scores, k)
        for r in range(len(scores)):
            exact = recommend._top_k(scores[r], k)
            assert got[r, : len(exact)].tolist() == exact.tolist()
            assert (got[r, len(exact) :] == -1).all()


def test_recommendations_written_to_csv_and_parquet(tmp_path):
    rec = make_recommender()
    n = write_recommendations(rec, tmp_path / "all.parquet", k=2)
    table = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert n == len(table) == 2 + 2 + 1 + 2  # user 30 has one unrated item left
    assert table[0] == {
        "user_id": 10,
        "rank": 1,
        "item_id": 101,
        "title": "B",
        "score": pytest.approx(3.9),
        "source": "model",
    }
    assert [r["source"] for r in table if r["user_id"] == 40] == ["popular", "popular"]
    write_recommendations(rec, tmp_path / "some.csv", [20, "10"], k=1)
    rows = pa_csv.read_csv(tmp_path / "some.csv").to_pylist()
    assert [(r["user_id"], r["rank"], r["item_id"]) for r in rows] == [(20, 1, 101), (10, 1, 101)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.parquet", "some.csv"]  # no temporary files left
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        write_recommendations(rec, tmp_path / "x.json")
    with pytest.raises(UnknownIdError):
        write_recommendations(rec, tmp_path / "bad.csv", [10, 77])
    assert not (tmp_path / "bad.csv").exists()


def test_new_user_is_folded_in_and_explained():
    rec = make_recommender()
    result = rec.recommend_new_user([(100, 5.0), (102, 1.0), (999, 4.0)], k=2)
    assert result.source == "fold-in"
    assert result.ignored == [999]
    # Liking 100 and disliking 102 points the user at 101 (close to 100), away from 103.
    assert ids(result.items)[0] == 101
    assert result.items[0]["because"] == [100]  # only liked items explain, 102 was rated below the mean
    assert 100 not in ids(result.items) and 102 not in ids(result.items)
    assert {r["source"] for r in result.items} == {"fold-in"}


def test_new_user_with_bias_model_falls_back_and_says_so():
    rec = make_recommender("bias")
    result = rec.recommend_new_user([(100, 5.0), (101, 4.0)], k=3, exclude=[104])
    assert result.source == "bias-fallback"
    # b_u = ((5 - 3 - 0.5) + (4 - 3 - 0.2)) / (15 + 2) = 2.3 / 17; then mu + b_u + b_i.
    b_u = 2.3 / 17
    assert ids(result.items) == [102, 103]
    assert [r["score"] for r in result.items] == pytest.approx([3 + b_u + 0.1, 3 + b_u - 0.3], abs=1e-4)


def test_new_user_without_known_ratings_gets_popular_list():
    rec = make_recommender()
    result = rec.recommend_new_user([("nope", 4.0)], k=2, exclude=[100])
    assert result.source == "popular"
    assert ids(result.items) == [102, 103]
    assert result.ignored == ["nope"]
    assert rec.recommend_new_user([], k=1).source == "popular"


def test_new_user_rating_outside_the_scale_is_refused():
    rec = make_recommender()
    for bad in (9.0, float("nan"), -1.0):
        with pytest.raises(ConfigError, match="outside the rating scale"):
            rec.recommend_new_user([(100, bad)])


def test_similar_items_by_item_vectors():
    rec = make_recommender()
    rows = rec.similar_items(100, 2)
    # cos(100, 101) = 0.9 / sqrt(0.82); cos(100, 103) = 0.1 / sqrt(0.82); cold 104 is never listed.
    assert ids(rows) == [101, 103]
    assert rows[0]["score"] == pytest.approx(0.9 / np.sqrt(0.82), abs=1e-4)
    assert rows[0]["source"] == rec.similarity_source == "item-vectors"
    assert 104 not in ids(rec.similar_items(100, 10))


def test_similar_items_by_co_rating_without_item_vectors():
    rec = make_recommender("bias")
    assert rec.similarity_source == "co-rating"
    # Raters: 100 {10, 30}, 101 {30}, 102 {20, 30}, 103 {20, 30}.
    rows = rec.similar_items(102, 5)
    assert ids(rows) == [103, 101, 100]
    assert [r["score"] for r in rows] == pytest.approx([1.0, 1 / np.sqrt(2), 0.5], abs=1e-4)
    assert ids(rec.similar_items(100, 5)) == [101, 102, 103]  # 102 and 103 tie at 0.5: lower index first


def test_user_ratings_best_first_and_predict_marks_fallbacks():
    rec = make_recommender()
    assert [(r["item_id"], r["rating"]) for r in rec.user_ratings(20)] == [(102, 5.0), (103, 3.5)]
    pred, by_model = rec.predict_with_source([10, "10", "x", 40, 10], [101, 101, 101, 100, 104])
    assert by_model.tolist() == [True, True, False, False, False]
    assert pred[0] == pytest.approx(3.9)
    assert pred[2] == pytest.approx(MEAN + 0.2)  # unknown user: mean + item bias


# --- the command line -------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from typer.testing import CliRunner

    from movierec.cli import app

    out = tmp_path_factory.mktemp("cli") / "model"
    result = CliRunner().invoke(
        app, ["train", "--model", "baseline", "--out", str(out), "--synthetic", "300x200x8000", "--json"]
    )
    assert result.exit_code == 0, result.output
    return out


def run_cli(*args):
    from typer.testing import CliRunner

    from movierec.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_recommend_command_for_users_new_users_and_files(model_dir, tmp_path):
    result = run_cli("recommend", "--model", model_dir, "--user", 1, "--user", 2, "-k", 3, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [u["user_id"] for u in body["users"]] == ["1", "2"]
    assert all(len(u["items"]) == 3 and u["source"] == "model" for u in body["users"])
    result = run_cli("recommend", "--model", model_dir, "--rate", "1=5", "--rate", "2=4", "--rate", "x=3", "--json")
    body = json.loads(result.output)
    assert body["source"] == "bias-fallback" and body["ignored"] == ["x"]
    assert {1, 2}.isdisjoint(r["item_id"] for r in body["items"])
    result = run_cli("recommend", "--model", model_dir, "--all-users", "--out", tmp_path / "all.csv", "-k", 2)
    assert result.exit_code == 0, result.output
    assert len(pa_csv.read_csv(tmp_path / "all.csv")) == 300 * 2


def test_recommend_command_refuses_bad_requests_cleanly(model_dir):
    for args, message in [
        (["--all-users"], "--out"),
        (["--rate", "nonsense"], "ITEM=RATING"),
        ([], "name whom"),
        (["--user", "nobody"], "unknown user id"),
        (["--rate", "1=99"], "outside the rating scale"),
    ]:
        result = run_cli("recommend", "--model", model_dir, *args)
        assert result.exit_code != 0
        assert message in str(result.exception) if result.exception else message in result.output


def test_similar_command(model_dir):
    result = run_cli("similar", "--model", model_dir, "--item", 3, "-k", 4, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["source"] == "co-rating" and len(body["items"]) == 4
    assert 3 not in [r["item_id"] for r in body["items"]]

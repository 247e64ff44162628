"""Lists and ratings from hand-made models whose right answers can be worked out on paper."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from movierec.data.ids import IdIndex
from movierec.data.ratings import ByUser
from movierec.errors import ConfigError
from movierec.models.base import ModelSpec, RatingModel
from movierec.models.baseline import Baseline
from movierec.models.ease import EASE, EASEConfig
from movierec.models.popular import Popular, PopularConfig
from movierec.recommend import ListConfig, Recommender, UnknownIdError, ranked, write_recommendations
from movierec.recommend.topk import top_k, top_k_rows

# Items 100..104 as vectors; 104 is never rated in training (a cold item).
Q = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]]
P = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
# Users 10, 20, 30, 40: 10 rated item 100; 20 rated 102, 103; 30 rated 100-103; 40 rated nothing.
SEEN = {0: [(0, 4.0)], 1: [(2, 5.0), (3, 3.5)], 2: [(0, 2.0), (1, 4.5), (2, 3.0), (3, 1.0)], 3: []}
ITEM_BIAS = [0.5, 0.2, 0.1, -0.3, 0.0]
MEAN = 3.0
# The ranker: EASE on 0/1 weights with a hand-set B, so a user's score is the sum of B's rows of their items.
B = [
    [0.0, 0.9, 0.1, 0.2, 0.0],
    [0.8, 0.0, 0.1, 0.1, 0.0],
    [0.1, 0.2, 0.0, 0.7, 0.0],
    [0.2, 0.1, 0.6, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0],
]


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


def hand_ranker() -> EASE:
    ranker = EASE(5, EASEConfig(weighting="binary"))
    ranker.B = torch.tensor(B)
    return ranker.eval()


def make_recommender(rater: str = "dot", *, gate: bool = False, ranker: str = "ease") -> Recommender:
    """The hand-made recommender: EASE with B above (or popular), and the dot or a bias rater."""
    if rater == "dot":
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
    users = np.array([u for u in range(4) for _ in SEEN[u]])
    items = np.array([i for u in range(4) for i, _ in SEEN[u]])
    ratings = np.array([r for u in range(4) for _, r in SEEN[u]], dtype=np.float32)
    rank = hand_ranker() if ranker == "ease" else Popular(5)
    return Recommender(
        ranker=rank,
        ranker_name=ranker,
        ranker_config=EASEConfig(weighting="binary") if ranker == "ease" else PopularConfig(),
        rater=net.eval(),
        rater_name=name,
        rater_config=config,
        index=IdIndex(np.array([10, 20, 30, 40]), np.array([100, 101, 102, 103, 104])),
        history=ByUser.build(users, items, ratings, 4),
        global_mean=MEAN,
        scale=(0.5, 5.0),
        user_bias=np.zeros(4, dtype=np.float32),
        item_bias=np.array(ITEM_BIAS, dtype=np.float32),
        titles=np.array(["A", "B", "C", "D", "E"]),
        lists=ListConfig(gate=gate, discount=0.0),
    )


def ids(rows):
    return [r.item_id for r in rows]


def test_lists_follow_the_ranker_and_show_the_raters_prediction():
    rec = make_recommender()
    rows = rec.recommend(10, 3)
    # User 10 rated 100: scores are B's row 0, so 101 (.9), 103 (.2), 102 (.1); cold 104 never.
    assert ids(rows) == [101, 103, 102]
    # Ratings are the rater's: 3 + p_10 . q_i = 3.9, 3.1, 3.0.
    assert [r.rating for r in rows] == pytest.approx([3.9, 3.1, 3.0])
    assert rows.source == "model" and {r.rating_source for r in rows} == {"model"}
    assert rows[0].title == "B" and rows[0].because == (100,)


def test_ties_go_to_the_lower_index_and_the_gate_reorders_by_predicted_rating():
    # User 20 rated 102 and 103: 100 and 101 both score .3; without the gate 100 comes first.
    assert ids(make_recommender().recommend(20, 2)) == [100, 101]
    # With it, each score is times sigmoid((r - 2.975) / 0.495): 101's 3.1 beats 100's 3.0.
    gated = make_recommender(gate=True).recommend(20, 2)
    assert ids(gated) == [101, 100]
    like = 1 / (1 + np.exp(-(np.array([3.1, 3.0]) - 2.975) / 0.495))
    assert like[0] * 0.3 > like[1] * 0.3


def test_the_popularity_discount_divides_positive_scores_by_item_counts():
    # Training counts: 100 -> 2, 101 -> 1, 102 -> 2, 103 -> 2. User 20's .3 for 100 and 101 become
    # .3 / 3 ** d and .3 / 2 ** d: the less rated 101 goes first.
    rec = replace(make_recommender(), lists=ListConfig(gate=False, discount=0.5))
    assert ids(rec.recommend(20, 2)) == [101, 100]


def test_include_rated_brings_them_back_and_a_full_user_gets_a_short_list():
    rec = make_recommender()
    assert ids(rec.recommend(20, 2, exclude_seen=False)) == [103, 102]  # .7 and .6: their own rows' weights
    assert ids(rec.recommend(30, 3)) == []  # rated every item but the cold one


def test_user_without_ratings_gets_popular_list_marked_as_such():
    rows = make_recommender().recommend(40, 10)
    # clip(mu + b_i) * log(1 + n_i): 100 -> 3.5 log 3, 102 -> 3.1 log 3, 103 -> 2.7 log 3, 101 -> 3.2 log 2.
    assert ids(rows) == [100, 102, 103, 101]
    assert [r.rating for r in rows] == pytest.approx([3.5, 3.1, 2.7, 3.2])
    assert rows.source == "popular" and {r.rating_source for r in rows} == {"popular"}


def test_unknown_ids_raise_a_clear_error():
    rec = make_recommender()
    for bad in (99, "x", "99999999999999999999999", 1.5, True, " 10", "1e1"):
        with pytest.raises(UnknownIdError, match="unknown user id"):
            rec.recommend(bad)
    with pytest.raises(UnknownIdError, match="unknown item id"):
        rec.similar_items(7)
    assert rec.recommend("10", 1) == rec.recommend(10, 1)  # string ids from a URL match int ids
    with pytest.raises(ConfigError, match="k must be"):
        rec.recommend(10, 0)


def test_batch_equals_one_by_one_in_any_block_size(monkeypatch):
    rec = make_recommender(gate=True)
    users = np.array([0, 1, 2, 3, 1, -1])
    whole = rec.top_n(users, 3)
    monkeypatch.setattr(ranked, "BLOCK_PAIRS", 5)  # one user per block
    blocked = rec.top_n(users, 3)
    np.testing.assert_array_equal(whole.items, blocked.items)
    np.testing.assert_array_equal(whole.ratings, blocked.ratings)
    assert whole.sources.tolist() == ["model", "model", "model", "popular", "model", "popular"]
    for row, u in enumerate(users[:5]):
        expected = rec.recommend(int(rec.index.user_ids[u]), 3)
        assert ids(expected) == [int(i) + 100 for i in whole.items[row] if i >= 0]


def test_row_top_k_matches_the_exact_one_with_ties_and_infinities():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(200, 12)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    for k in (1, 3, 12, 15):
        got = top_k_rows(scores, k)
        for r in range(len(scores)):
            exact = top_k(scores[r], k)
            assert got[r, : len(exact)].tolist() == exact.tolist()
            assert (got[r, len(exact) :] == -1).all()


def test_recommendations_written_to_csv_and_parquet(tmp_path):
    rec = make_recommender()
    n = write_recommendations(rec, tmp_path / "all.parquet", k=2)
    table = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert n == len(table) == 2 + 2 + 0 + 2  # user 30 has nothing left to list
    assert table[0] == {
        "user_id": 10,
        "rank": 1,
        "item_id": 101,
        "title": "B",
        "rating": pytest.approx(3.9),
        "source": "model",
    }
    assert [r["source"] for r in table if r["user_id"] == 40] == ["popular", "popular"]
    write_recommendations(rec, tmp_path / "some.csv", [20, "10"], k=1)
    rows = pa_csv.read_csv(tmp_path / "some.csv").to_pylist()
    assert [(r["user_id"], r["rank"], r["item_id"]) for r in rows] == [(20, 1, 100), (10, 1, 101)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.parquet", "some.csv"]  # no temporary files left
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        write_recommendations(rec, tmp_path / "x.json")
    with pytest.raises(UnknownIdError):
        write_recommendations(rec, tmp_path / "bad.csv", [10, 77])
    assert not (tmp_path / "bad.csv").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_users_own_ranked_list_is_not_taken_for_a_recommendations_file(tmp_path, suffix):
    rec = make_recommender()
    theirs = tmp_path / f"watchlist{suffix}"
    table = pa.table({"user_id": [1], "rank": [1], "item_id": [100], "note": ["see it with Ana"]})
    pq.write_table(table, theirs) if suffix == ".parquet" else pa_csv.write_csv(table, theirs)
    before = theirs.read_bytes()
    with pytest.raises(ConfigError, match="will not be overwritten"):
        write_recommendations(rec, theirs, k=1)
    assert theirs.read_bytes() == before
    ours = tmp_path / f"recs{suffix}"
    write_recommendations(rec, ours, k=1)
    write_recommendations(replace(rec, titles=None), ours, k=2)  # its own earlier output it may replace
    write_recommendations(rec, ours, k=2)  # and again, from a model without titles
    assert len(pq.read_table(ours) if suffix == ".parquet" else pa_csv.read_csv(ours)) == 2 + 2 + 0 + 2


def test_new_user_is_folded_in_and_explained_by_the_rankers_weights():
    rec = make_recommender()
    result = rec.recommend_new_user([(100, 5.0), (102, 1.0), (999, 4.0)], k=2)
    assert result.source == "fold-in" and result.ignored == (999,)
    # Scores B[0] + B[2] = [.1, 1.1, .1, .9, 0]: 101, then 103.
    assert ids(result.items) == [101, 103]
    # 103 owes .7 to 102 and .2 to 100, but only liked items (>= the user's mean) explain.
    assert [r.because for r in result.items] == [(100,), (100,)]
    assert {r.rating_source for r in result.items} == {"fold-in"}


def test_a_new_user_with_a_known_users_ratings_gets_that_users_list():
    rec = make_recommender("bias")  # a rater with no user vectors, so fold-in and training agree
    as_known = rec.recommend(20, 3)
    as_new = rec.recommend_new_user([(102, 5.0), (103, 3.5)], k=3).items
    assert ids(as_new) == ids(as_known)


class NoFoldIn(Baseline):
    """The baseline without its fold-in: a rater that cannot fold a new user in."""

    def fold_in(self, item_idx, target):
        return None


@pytest.mark.parametrize(("rater", "source"), [(Baseline, "fold-in"), (NoFoldIn, "bias-fallback")])
def test_new_user_gets_the_baseline_fold_in_or_the_bias_fallback_and_says_which(rater, source):
    rec = make_recommender("bias")
    net = rater(4, 5)
    net.load_state_dict(rec.rater.state_dict())
    rec = replace(rec, rater=net.eval())
    result = rec.recommend_new_user([(100, 5.0), (101, 4.0)], k=3, exclude=[104])
    assert result.source == "fold-in"
    # b_u = ((5 - 3 - 0.5) + (4 - 3 - 0.2)) / (15 + 2) = 2.3 / 17; then mu + b_u + b_i: the
    # baseline's own fold-in and the fallback solve the same shrunk mean.
    b_u = 2.3 / 17
    assert ids(result.items) == [103, 102]  # scores .3 and .2
    assert [r.rating for r in result.items] == pytest.approx([3 + b_u - 0.3, 3 + b_u + 0.1], abs=1e-4)
    assert {r.rating_source for r in result.items} == {source}


def test_new_user_without_known_ratings_gets_popular_list():
    rec = make_recommender()
    result = rec.recommend_new_user([("nope", 4.0)], k=2, exclude=[100])
    assert result.source == "popular"
    assert ids(result.items) == [102, 103]
    assert result.ignored == ("nope",)
    assert rec.recommend_new_user([], k=1).source == "popular"


def test_new_user_rating_outside_the_scale_is_refused():
    rec = make_recommender()
    for bad in (9.0, float("nan"), -1.0, "x"):
        with pytest.raises(ConfigError, match="outside the rating scale|not a number"):
            rec.recommend_new_user([(100, bad)])


def test_similar_items_by_the_rankers_weights():
    rec = make_recommender()
    rows = rec.similar_items(100, 5)
    # B's row 0: 101 (.9), 103 (.2), 102 (.1); cold 104 is never listed.
    assert ids(rows) == [101, 103, 102]
    assert rows[0].score == pytest.approx(0.9)
    assert rows.source == rec.similarity_source == "ease"


def test_similar_items_by_co_rating_for_rankers_without_a_similarity():
    rec = make_recommender("bias", ranker="popular")
    assert rec.similarity_source == "co-rating"
    # Raters: 100 {10, 30}, 101 {30}, 102 {20, 30}, 103 {20, 30}.
    rows = rec.similar_items(102, 5)
    assert ids(rows) == [103, 101, 100]
    assert [r.score for r in rows] == pytest.approx([1.0, 1 / np.sqrt(2), 0.5], abs=1e-4)
    assert ids(rec.similar_items(100, 5)) == [101, 102, 103]  # 102 and 103 tie at 0.5: lower index first


def test_user_ratings_best_first_and_predict_marks_fallbacks():
    rec = make_recommender()
    assert [(r["item_id"], r["rating"]) for r in rec.user_ratings(20)] == [(102, 5.0), (103, 3.5)]
    pred, by_model = rec.predict_with_source([10, "10", "x", 40, 10], [101, 101, 101, 100, 104])
    assert by_model.tolist() == [True, True, False, False, False]
    assert pred[0] == pytest.approx(3.9)
    assert pred[2] == pytest.approx(MEAN + 0.2)  # unknown user: mean + item bias


def test_a_recommender_without_a_rater_lists_but_predicts_nothing():
    rec = replace(make_recommender(), rater=None, rater_name=None, rater_config=None)
    rows = rec.recommend(10, 3)
    assert ids(rows) == [101, 103, 102]
    assert {r.rating for r in rows} == {None}
    assert rec.recommend_new_user([(100, 1.0)], k=1).items[0].rating is None
    with pytest.raises(ConfigError, match="without ratings"):
        rec.predict([10], [101])


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
    assert [u["user_id"] for u in body["users"]] == [1, 2]  # ids as the model has them, ints here as over HTTP
    assert all(len(u["items"]) == 3 and u["source"] == "model" for u in body["users"])
    result = run_cli("recommend", "--model", model_dir, "--rate", "1=5", "--rate", "2=4", "--json")
    body = json.loads(result.output)
    assert body["source"] == "fold-in" and {r["rating_source"] for r in body["items"]} == {"fold-in"}
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
        (["--rate", "1=5", "--rate", "x=3"], "unknown item id(s) in --rate: x"),
        (["--user", "1", "-k", "1000000000"], "-k must be between 1 and 1000"),
        (["--user", "1", "--rate", "1=5"], "give one of them, not several"),
        (["--rate", "1=5", "--rate", "1=3"], "more than one rating"),
    ]:
        result = run_cli("recommend", "--model", model_dir, *args)
        assert result.exit_code != 0
        assert message in str(result.exception) if result.exception else message in result.output


def test_similar_command(model_dir):
    result = run_cli("similar", "--model", model_dir, "--item", 3, "-k", 10**9)
    assert isinstance(result.exception, ConfigError) and "-k must be between 1 and" in str(result.exception)
    result = run_cli("similar", "--model", model_dir, "--item", 3, "-k", 4, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["source"] == "ease" and len(body["items"]) == 4
    assert 3 not in [r["item_id"] for r in body["items"]]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_recommend_out_replaces_its_own_file_and_no_one_elses(model_dir, tmp_path, suffix):
    mine = tmp_path / f"ratings{suffix}"
    mine.write_bytes(b"userId,movieId,rating\n1,2,5\n")
    result = run_cli("recommend", "--model", model_dir, "--user", 1, "--out", mine)
    assert isinstance(result.exception, ConfigError) and "will not be overwritten" in str(result.exception)
    assert mine.read_bytes() == b"userId,movieId,rating\n1,2,5\n"
    ours = tmp_path / f"recs{suffix}"
    old = os.umask(0o022)
    try:
        for user in (1, 2):  # a rerun replaces the file it wrote
            result = run_cli("recommend", "--model", model_dir, "--user", user, "--out", ours)
            assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    table = pq.read_table(ours) if suffix == ".parquet" else pa_csv.read_csv(ours)
    assert set(table.column("user_id").to_pylist()) == {2}
    assert stat.S_IMODE(ours.stat().st_mode) == 0o644  # as the umask says, not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, ours.name])  # no temporary left

"""One saved model's lists agree item for item from Python, the command line and the HTTP service."""

from __future__ import annotations

import json

import pyarrow.csv as pa_csv
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from movierec import persist, pipeline
from movierec.cli import app as cli
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.serve import create_app


@pytest.fixture(scope="module", params=["auto", "popular"])
def saved(request, tmp_path_factory):
    """A model trained and saved by the pipeline (the popular ranker lists by co-rating similarity)."""
    ratings = generate(SyntheticConfig(n_users=200, n_items=150, n_ratings=5000, seed=5)).ratings
    out = tmp_path_factory.mktemp("agree") / request.param
    pipeline.run(ratings, "baseline", out, ranker=request.param, split_config=pipeline.SplitConfig(seed=2))
    return out, persist.load(out), TestClient(create_app(out))


def cli_json(*args: object) -> dict:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def as_rows(found) -> list[tuple]:
    """A Python list in the JSON's terms: ratings rounded to 4 places, ``because`` as a list."""
    rated = [None if i.rating is None else round(i.rating, 4) for i in found]
    return [(i.item_id, i.title, r, i.rating_source, list(i.because)) for i, r in zip(found, rated, strict=True)]


def json_rows(body: dict) -> list[tuple]:
    return [(r["item_id"], r["title"], r["rating"], r["rating_source"], r["because"]) for r in body["items"]]


@pytest.mark.parametrize("include_rated", [False, True])
def test_a_known_users_list(saved, include_rated):
    model_dir, rec, http = saved
    for user in [rec.user_id(j) for j in (0, 7, 42)]:
        found = rec.recommend(user, 6, exclude_seen=not include_rated)
        flag = ["--include-rated"] if include_rated else []
        by_cli = cli_json("recommend", "--model", model_dir, "--user", user, "-k", 6, "--json", *flag)
        by_http = http.get(f"/users/{user}/recommendations", params={"k": 6, "include_rated": include_rated}).json()
        assert len(found) == 6 and found.source == "model"
        assert by_cli == by_http
        assert json_rows(by_http) == as_rows(found) and by_http["source"] == found.source
        assert {r["source"] for r in by_http["items"]} == {found.source} and by_http["user_id"] == user


def test_a_new_users_list(saved):
    model_dir, rec, http = saved
    rated = [(rec.item_id(j), r) for j, r in ((3, 5.0), (11, 1.5), (20, 4.0))]
    found = rec.recommend_new_user(rated, 5)
    by_cli = cli_json("recommend", "--model", model_dir, *[f"--rate={i}={r}" for i, r in rated], "-k", 5, "--json")
    posted = {"ratings": [{"item_id": i, "rating": r} for i, r in rated], "k": 5}
    by_http = http.post("/recommendations", json=posted).json()
    assert found.source == "fold-in" and found.ignored == () and len(found) == 5
    assert by_http == {**by_cli, "ignored": []}
    assert json_rows(by_http) == as_rows(found)


def test_similar_items(saved):
    model_dir, rec, http = saved
    item = rec.item_id(int(rec.popular[0]))
    found = rec.similar_items(item, 5)
    by_cli = cli_json("similar", "--model", model_dir, "--item", item, "-k", 5, "--json")
    by_http = http.get(f"/items/{item}/similar", params={"k": 5}).json()
    assert len(found) == 5 and by_cli == by_http and by_http["item_id"] == item
    assert [(r["item_id"], r["title"], r["score"]) for r in by_http["items"]] == [
        (i.item_id, i.title, round(i.score, 4)) for i in found
    ]
    assert by_http["source"] == found.source == rec.similarity_source


def test_every_users_list_in_a_file_is_the_one_listed_for_them(saved, tmp_path):
    model_dir, rec, http = saved
    out = tmp_path / "all.csv"
    wrote = cli_json("recommend", "--model", model_dir, "--all-users", "--out", out, "-k", 4, "--json")
    rows = pa_csv.read_csv(out).to_pylist()
    many = dict(rec.recommend_many(k=4))
    assert wrote["rows"] == len(rows) == sum(len(found) for found in many.values())
    assert list(many) == [rec.user_id(j) for j in range(rec.index.n_users)]
    for user in [rec.user_id(j) for j in (0, 7, 42)]:
        in_file = [(r["rank"], r["item_id"], r["rating"], r["source"]) for r in rows if r["user_id"] == user]
        listed = rec.recommend(user, 4)
        assert [i.item_id for i in many[user]] == [i.item_id for i in listed]
        assert in_file == [
            (n, i.item_id, pytest.approx(i.rating, abs=1e-6), listed.source) for n, i in enumerate(listed, 1)
        ]
        by_http = http.get(f"/users/{user}/recommendations", params={"k": 4}).json()
        assert [r["item_id"] for r in by_http["items"]] == [i.item_id for i in many[user]]

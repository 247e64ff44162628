"""Logs without ratings (plays, clicks, purchases): every row a positive, rankers alone, no RMSE."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import run_cli

from movierec import persist
from movierec.data.load import load
from movierec.data.readers import read_ratings_file
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.serve import create_app


@pytest.fixture(scope="module")
def plays(tmp_path_factory):
    """A synthetic log's users and items (and times) without its ratings, some pairs played twice."""
    r = generate(SyntheticConfig(n_users=300, n_items=200, n_ratings=9000, seed=4)).ratings
    users, items = r.index.user_ids[r.user_idx], r.index.item_ids[r.item_idx]
    lines = [f"u{u},i{i},{t}" for u, i, t in zip(users, items, r.timestamp, strict=True)]
    lines += lines[:500]  # replayed: one positive each all the same
    path = tmp_path_factory.mktemp("implicit") / "plays.csv"
    path.write_text("user,item,timestamp\n" + "\n".join(lines) + "\n")
    return path


def test_a_file_without_a_rating_column_is_an_implicit_log(plays, tmp_path):
    r = read_ratings_file(plays)
    assert r.implicit and len(r) == 9000  # the 500 replays are one positive each
    assert np.all(r.rating == 1.0)
    assert r.index.user_ids.dtype.kind == "U"  # "u12": string ids stay strings
    two = tmp_path / "two.tsv"
    two.write_text("1\t10\n1\t20\n2\t10\n")
    headless = read_ratings_file(two)
    assert headless.implicit and len(headless) == 3
    cached = load(plays)  # through the loader (and its cache) the flag survives
    assert cached.implicit


def test_train_on_plays_fits_a_ranker_and_says_rmse_does_not_apply(plays, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(monkeypatch, capsys, "train", "--data", str(plays), "--out", str(out), "--json")
    assert code == 0, err
    metrics = json.loads(stdout)
    assert metrics["implicit"] and metrics["model"] is None and "test_rmse" not in metrics
    assert metrics["ranking"]["ndcg"] > metrics["ranking_popular"]["ndcg"]
    code, _, err = run_cli(monkeypatch, capsys, "train", "--data", str(plays), "--out", str(out))
    assert code == 0 and "RMSE and MAE do not apply" in err
    code, _, err = run_cli(monkeypatch, capsys, "train", "--data", str(plays), "--model", "mlp", "--out", str(out))
    assert code == 2 and "no rating column" in err and "Traceback" not in err
    rec = persist.load(out)
    assert rec.rater is None
    rows = rec.recommend(rec.user_id(0), 5)
    assert len(rows) == 5 and all(r.rating is None for r in rows)
    client = TestClient(create_app(out))
    assert client.get(f"/users/{rec.user_id(0)}/recommendations").status_code == 200
    r = client.post("/predict", json={"pairs": [{"user_id": rec.user_id(0), "item_id": rec.item_id(0)}]})
    assert r.status_code == 422 and "without ratings" in r.json()["detail"]
    code, stdout, _ = run_cli(monkeypatch, capsys, "evaluate", "--model", str(out), "--data", str(plays), "--json")
    assert code == 0 and "rmse" not in json.loads(stdout) and json.loads(stdout)["ranking"]["ndcg"] > 0

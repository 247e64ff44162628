"""The HTTP service, started for real (uvicorn on 127.0.0.1, a free port) and queried with httpx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from test_recommend import DOT_SPEC, make_recommender

from movierec import models, persist, pipeline
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.errors import ModelError
from movierec.serve import create_app, schemas


class Server:
    """uvicorn serving ``app`` in a thread on a loopback socket picked by the OS."""

    def __init__(self, app, **config) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, **config))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.client = httpx.Client(base_url=self.url, timeout=20)
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory):
    """A baseline trained by the real pipeline on tiny synthetic data: metrics.json included."""
    ratings = generate(SyntheticConfig(n_users=300, n_items=200, n_ratings=8000, seed=3)).ratings
    out = tmp_path_factory.mktemp("serve") / "baseline"
    pipeline.run(ratings, "baseline", out, split_config=pipeline.SplitConfig(seed=1))
    return out


@pytest.fixture(scope="module")
def api(baseline_dir):
    with Server(create_app(baseline_dir)) as client:
        yield client


@pytest.fixture(scope="module")
def dot_api(tmp_path_factory):
    """The hand-made dot-product model (item vectors, fold-in), registered for the module."""
    models.MODELS[DOT_SPEC.name] = DOT_SPEC
    try:
        out = tmp_path_factory.mktemp("serve") / "dot"
        persist.save(make_recommender(), out)
        with Server(create_app(out)) as client:
            yield client
    finally:
        del models.MODELS[DOT_SPEC.name]


def known_user(baseline_dir) -> tuple[int, set]:
    rec = persist.load(baseline_dir)
    u = int(np.argmax(rec.user_counts))
    return int(rec.index.user_ids[u]), set(rec.index.item_ids[rec.history.items_of(u)].tolist())


def valid(response: httpx.Response, model: type) -> dict:
    """The body of a 200 answer, checked against the schema model the endpoint declares."""
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    model.model_validate(body, strict=True)
    return body


def test_health_and_model_page(api):
    body = valid(api.get("/health"), schemas.Health)
    assert body == {"status": "ok", "model": "baseline", "ranker": "ease", "n_users": 300, "n_items": 200}
    info = api.get("/model").json()
    assert info["rater"]["name"] == "baseline" and info["ranker"]["name"] == "ease"
    assert "user_ids" not in info and "titles" not in info
    metrics = info["metrics"]
    assert {"history", "test_rmse", "ranking", "error_by_activity", "rating_distribution"} <= set(metrics)
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    schema = api.get("/openapi.json").json()
    for path in ("/users/{user_id}/recommendations", "/recommendations", "/items/{item_id}/similar", "/predict"):
        assert path in schema["paths"]


def test_user_recommendations_leave_out_rated_items(api, baseline_dir):
    user, seen = known_user(baseline_dir)
    body = valid(api.get(f"/users/{user}/recommendations", params={"k": 15}), schemas.UserRecommendations)
    assert body["user_id"] == user and body["source"] == "model" and len(body["items"]) == 15
    assert not seen & {it["item_id"] for it in body["items"]}
    assert all(0.5 <= it["rating"] <= 5 and it["rating_source"] == "model" for it in body["items"])
    assert all(set(it["because"]) <= seen for it in body["items"])
    again = api.get(f"/users/{user}/recommendations", params={"k": 15, "include_rated": "true"}).json()
    assert seen & {it["item_id"] for it in again["items"]}
    assert api.get(f"/users/{user}/recommendations?k=15").json() == body  # deterministic


def test_user_ratings(api, baseline_dir):
    user, seen = known_user(baseline_dir)
    body = valid(api.get(f"/users/{user}/ratings"), schemas.UserRatings)
    assert body["n"] == len(seen) == len(body["ratings"])
    assert {r["item_id"] for r in body["ratings"]} == seen
    values = [r["rating"] for r in body["ratings"]]
    assert values == sorted(values, reverse=True) and all(0.5 <= v <= 5 for v in values)


NASTY_IDS = ["abc", "1.5", "-1", "0x10", "99999999999999999999999", "%00", "%F0%9F%8E%AC", "a" * 5000, "1e3", " 1"]


@pytest.mark.parametrize("path", ["/users/{}/recommendations", "/users/{}/ratings", "/items/{}/similar"])
def test_unknown_ids_are_404_with_a_message(api, path):
    for bad in NASTY_IDS:
        r = api.get(path.format(bad))
        assert r.status_code == 404, (bad, r.status_code, r.text[:200])
        assert "unknown" in r.json()["detail"]


@pytest.mark.parametrize(
    "query", ["k=0", "k=-3", "k=abc", "k=100000", "k=1.5", "k=", "include_rated=maybe", "k=99999999999999999999999"]
)
def test_bad_parameters_are_422(api, baseline_dir, query):
    user, _ = known_user(baseline_dir)
    r = api.get(f"/users/{user}/recommendations?{query}")
    assert r.status_code == 422, (query, r.text[:200])
    assert r.json()["detail"]


def test_new_user_from_posted_ratings_fold_in_and_popular(api):
    posted = {"ratings": [{"item_id": 1, "rating": 5}, {"item_id": "2", "rating": 4.5}]}
    body = valid(api.post("/recommendations", json=posted), schemas.NewUserRecommendations)
    assert body["source"] == "fold-in" and len(body["items"]) == 10
    assert {it["rating_source"] for it in body["items"]} == {"fold-in"}  # the baseline's own fold-in
    assert {1, 2}.isdisjoint(it["item_id"] for it in body["items"])
    assert all(set(it["because"]) <= {1, 2} for it in body["items"])
    popular = valid(
        api.post("/recommendations", json={"ratings": [], "k": 3, "exclude": [5]}), schemas.NewUserRecommendations
    )
    assert popular["source"] == "popular" and len(popular["items"]) == 3
    assert all(it["source"] == "popular" and it["because"] == [] for it in popular["items"])
    assert 5 not in [i["item_id"] for i in popular["items"]]


def test_an_unknown_posted_item_is_named_or_ignored_when_asked(api):
    r = api.post("/recommendations", json={"ratings": [{"item_id": 1, "rating": 4}, {"item_id": "zzz", "rating": 3}]})
    assert r.status_code == 404 and "'zzz'" in r.json()["detail"]
    posted = {"ratings": [{"item_id": "zzz", "rating": 3}], "ignore_unknown": True}
    unknown = valid(api.post("/recommendations", json=posted), schemas.NewUserRecommendations)
    assert unknown["source"] == "popular" and unknown["ignored"] == ["zzz"]


def test_new_user_fold_in_and_similar_items_by_the_rankers_weights(dot_api):
    posted = {"ratings": [{"item_id": 100, "rating": 5}], "k": 2}
    body = valid(dot_api.post("/recommendations", json=posted), schemas.NewUserRecommendations)
    assert body["source"] == "fold-in" and {it["rating_source"] for it in body["items"]} == {"fold-in"}
    assert body["items"][0]["item_id"] == 101 and body["items"][0]["because"] == [100]
    similar = valid(dot_api.get("/items/100/similar", params={"k": 2}), schemas.SimilarItems)
    assert similar["source"] == "ease"
    assert [it["item_id"] for it in similar["items"]] == [101, 103]
    assert similar["items"][0]["score"] == pytest.approx(0.9, abs=1e-4)


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        '{"ratings": 5}',
        '{"ratings": [{"item_id": 1}]}',
        '{"ratings": [{"item_id": 1, "rating": NaN}]}',
        '{"ratings": [{"item_id": 1, "rating": 1e999}]}',
        '{"ratings": [{"item_id": 1, "rating": 9}]}',
        '{"ratings": [{"item_id": {"a": 1}, "rating": 4}]}',
        '{"ratings": [{"item_id": true, "rating": 4}]}',
        '{"ratings": [{"item_id": 1.5, "rating": 4}]}',
        '{"ratings": [], "k": 0}',
        '{"ratings": [], "k": "many"}',
        '{"ratings": [], "k": true}',  # not k = 1
        '{"ratings": [], "k": "7"}',
        '{"ratings": [{"item_id": 1, "rating": true}]}',
        '{"ratings": [{"item_id": 1, "rating": "4.5"}]}',
        '{"ratings": [], "surprise": 1}',
        '{"ratings": [], "exclude": [[1]]}',
        '{"ratings": [], "ignore_unknown": 0.0}',  # found by the fuzzer: lax parsing made it False
        '{"ratings": [], "ignore_unknown": "yes"}',
    ],
)
def test_bad_new_user_bodies_are_422(api, body):
    r = api.post("/recommendations", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, (body, r.status_code, r.text[:200])


def test_an_item_rated_twice_is_422_naming_it(api):
    body = {"ratings": [{"item_id": 1, "rating": 5}, {"item_id": 2, "rating": 3}, {"item_id": 1, "rating": 1}]}
    r = api.post("/recommendations", json=body)
    assert r.status_code == 422 and "item(s) 1 rated more than once" in r.text, r.text[:300]
    body["ratings"].pop()
    assert api.post("/recommendations", json=body).status_code == 200


@pytest.mark.parametrize("body", [b"not json", b'{"ratings": [{"item_id": 1, "rating": 4}', b"\xff\xfe{}", b""])
def test_a_body_that_is_not_json_is_400_as_documented(api, body):
    r = api.post("/recommendations", content=body, headers={"content-type": "application/json"})
    detail = r.json()["detail"]
    assert r.status_code == 400 and ("not valid JSON" in detail or "empty" in detail), (body, r.status_code, detail)


def test_an_id_with_a_lone_surrogate_is_echoed_not_a_500(api):
    # "\ud800" is valid JSON but not valid UTF-8: echoing it back must not fail to encode.
    body = '{"ratings": [{"item_id": "\\ud800", "rating": 5}], "ignore_unknown": true}'
    r = api.post("/recommendations", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["ignored"] == ["\ud800"]
    r = api.post("/predict", content='{"pairs": [{"user_id": 1, "item_id": "\\ud800"}]}',
                 headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 200 and r.json()["predictions"][0]["item_id"] == "\ud800"


def test_too_many_ratings_is_422(api):
    body = {"ratings": [{"item_id": 1, "rating": 3}] * 10_001}
    assert api.post("/recommendations", json=body).status_code == 422


def test_similar_items(api):
    body = valid(api.get("/items/3/similar", params={"k": 5}), schemas.SimilarItems)
    assert body["item_id"] == 3 and body["source"] == "ease" and len(body["items"]) == 5
    assert 3 not in [it["item_id"] for it in body["items"]]
    assert api.get("/items/3/similar", params={"k": 0}).status_code == 422


def test_predict_marks_fallbacks(api, baseline_dir):
    user, _ = known_user(baseline_dir)
    pairs = [{"user_id": user, "item_id": 3}, {"user_id": "nobody", "item_id": 3}, {"user_id": user, "item_id": -7}]
    body = valid(api.post("/predict", json={"pairs": pairs}), schemas.Predictions)
    preds = body["predictions"]
    assert [p["source"] for p in preds] == ["model", "fallback", "fallback"]
    assert [p["user_id"] for p in preds] == [user, "nobody", user]
    assert all(0.5 <= p["rating"] <= 5 for p in preds)
    assert api.post("/predict", json={"pairs": []}).json() == {"predictions": []}
    bad_bodies = ({"pairs": [{"user_id": 1}]}, {"pairs": [{"user_id": 1.5, "item_id": 1}]}, {}, {"pairs": None})
    for bad in (*bad_bodies, {"pairs": [{"user_id": True, "item_id": 1}]}):
        assert api.post("/predict", json=bad).status_code == 422, bad


def test_search_ranks_exact_and_prefix_first(api):
    body = valid(api.get("/items/search", params={"q": "MOVIE 1", "limit": 5}), schemas.SearchResults)
    titles = [it["title"] for it in body["items"]]
    assert titles[0] == "Synthetic movie 1"  # whole words beat "Synthetic movie 12"
    assert len(titles) == 5 and all("movie 1" in t.lower() for t in titles)
    exact = api.get("/items/search", params={"q": "synthetic movie 7"}).json()["items"]
    assert exact[0]["title"] == "Synthetic movie 7"
    assert api.get("/items/search", params={"q": "(*[.?"}).json()["items"] == []
    for bad in ("q=", "limit=0", "q=x&limit=-1", "q=" + "x" * 201):
        assert api.get(f"/items/search?{bad}").status_code == 422, bad


def test_missing_or_corrupt_model_dir_refuses_to_start(tmp_path, baseline_dir):
    with pytest.raises(ModelError, match="not a movierec model directory"):
        create_app(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError, match="corrupt"):
        create_app(broken)
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "movierec", "serve", "--model", str(broken), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "corrupt" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("flags", [[], ["--workers", "2"]])
def test_serve_command_listens_on_loopback_by_default(baseline_dir, flags):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "movierec", "serve", "--model", str(baseline_dir), "--port", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert r.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/users/1/recommendations", timeout=10).status_code in (200, 404)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in output


def test_concurrent_requests_all_answer(api, baseline_dir):
    user, _ = known_user(baseline_dir)
    results = []

    def ask() -> None:
        with httpx.Client(base_url=str(api.base_url)) as client:
            results.extend(client.get(f"/users/{user}/recommendations").status_code for _ in range(10))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 80
    torch.set_num_threads(torch.get_num_threads())  # the server shares this process: nothing changed it


def test_serve_command_checks_its_flags_before_loading(tmp_path):
    from typer.testing import CliRunner

    from movierec.cli import app
    from movierec.errors import ConfigError

    for flags in (["--threads", "-1"], ["--port", "70000"], ["--host", ""], ["--host", " "]):  # "" is every interface
        result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path), *flags])
        assert isinstance(result.exception, ConfigError)
    with socket.socket() as taken:  # a port in use is one line, before the model loads (was uvicorn's log, exit 3)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path), "--port", str(taken.getsockname()[1])])
    assert isinstance(result.exception, ConfigError) and "pick another --port" in str(result.exception)
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path), "--host", "999.1.1.1"])
    assert isinstance(result.exception, ConfigError) and "--host 999.1.1.1" in str(result.exception)


def test_idle_and_slow_connections_are_cut_off(monkeypatch, baseline_dir):
    from movierec.serve import guard, run

    monkeypatch.setattr(guard, "HEAD_TIMEOUT_S", 1.0)
    server = Server(create_app(baseline_dir), timeout_keep_alive=1, http=run.guarded_protocol())
    with server:

        def closes_within(data: bytes, seconds: float) -> bool:
            with socket.create_connection(("127.0.0.1", server.port)) as s:
                s.sendall(data)
                s.settimeout(seconds)
                try:
                    while s.recv(4096):
                        pass
                except TimeoutError:
                    return False
                return True

        assert closes_within(b"", 5)  # connected, said nothing
        assert closes_within(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", 5)  # headers never finished
        assert server.client.get("/health").status_code == 200  # and the server still answers


def test_a_huge_body_is_refused_before_it_is_read(api):
    r = api.post("/recommendations", content=b"x" * (5 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "MiB" in r.json()["detail"]


def test_a_huge_chunked_body_is_refused_as_it_streams_in(api):
    # No Content-Length: the limit is found while reading, and must still be a 413, not a parse error.
    def chunks():
        for _ in range(10):
            yield b"[" * (1 << 20)

    r = api.post("/recommendations", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "MiB" in r.json()["detail"]


def test_loopback_servers_answer_loopback_host_names_only(baseline_dir):
    with Server(create_app(baseline_dir, allowed_hosts=["127.0.0.1", "localhost"])) as client:
        assert client.get("/health").status_code == 200
        evil = client.get("/health", headers={"host": "attacker.example:8000"})
        assert evil.status_code == 400 and "answers to" in evil.json()["detail"]


def test_head_and_offline_docs(api):
    assert api.head("/health").status_code == 200 and api.head("/health").content == b""
    docs = api.get("/docs")
    assert docs.status_code == 200 and "docs-assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert api.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    schema = api.get("/openapi.json").json()
    assert "404" in schema["paths"]["/users/{user_id}/recommendations"]["get"]["responses"]


@pytest.mark.parametrize("kind", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_is_400_saying_how(api, kind):
    # curl -d sends a form: FastAPI then reads the body as text and said "Input should be a valid dictionary".
    headers = {} if kind is None else {"content-type": kind}
    r = api.post("/recommendations", content=b'{"ratings": [], "k": 3}', headers=headers)
    assert r.status_code == 400 and "Content-Type: application/json" in r.json()["detail"], r.text
    r = api.post("/recommendations", content=b'{"ratings": [], "k": 3}', headers={"content-type": "application/json"})
    assert r.status_code == 200 and len(r.json()["items"]) == 3


def test_an_id_written_as_a_whole_number_with_a_point_is_that_id(api, baseline_dir):
    # The ratings reader takes "12.0" as id 12; the URL and the JSON body take it alike.
    user, rated = known_user(baseline_dir)
    plain = valid(api.get(f"/users/{user}/recommendations"), schemas.UserRecommendations)
    for written in (f"{user}.0", f"{user}.", f"+{user}"):
        assert valid(api.get(f"/users/{written}/recommendations"), schemas.UserRecommendations) == plain
    item = sorted(rated)[0]
    as_int = api.post("/predict", json={"pairs": [{"user_id": user, "item_id": item}]}).json()
    as_float = api.post("/predict", json={"pairs": [{"user_id": float(user), "item_id": float(item)}]}).json()
    assert as_float == as_int and as_float["predictions"][0]["user_id"] == user
    posted = {"ratings": [{"item_id": float(item), "rating": 4.0}], "k": 3, "exclude": [float(item)]}
    assert api.post("/recommendations", json=posted).status_code == 200
    for bad in (user + 0.5, True):
        r = api.post("/predict", json={"pairs": [{"user_id": bad, "item_id": item}]})
        assert r.status_code == 422, (bad, r.text[:200])

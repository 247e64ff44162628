"""The HTTP API under schemathesis: generated requests, valid and not, against the ASGI app.

Every answer must be one the schema declares (status, content type, body), never a 5xx,
and bad input must be refused. Runs in-process; nothing listens on a port.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig

from movierec import pipeline
from movierec.data.synthetic import SyntheticConfig, generate
from movierec.serve.app import create_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ratings = generate(SyntheticConfig(n_users=200, n_items=150, n_ratings=5000, seed=5)).ratings
    out = tmp_path_factory.mktemp("fuzz") / "model"
    pipeline.run(ratings, "baseline", out, split_config=pipeline.SplitConfig(seed=1))
    return create_app(out)


REFUSALS = [400, 404, 405, 413, 422]
"""The statuses this API refuses a request with. schemathesis's default list lacks 413, so a
negative body with too many ratings, refused for its size before it is read, read as accepted."""


@pytest.fixture(scope="module")
def api_schema(app):
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/model"),
    ("GET", "/users/{user_id}/recommendations"),
    ("GET", "/users/{user_id}/ratings"),
    ("POST", "/recommendations"),
    ("GET", "/items/{item_id}/similar"),
    ("GET", "/items/search"),
    ("POST", "/predict"),
]


def test_the_fuzzed_operations_are_all_the_api_has(api_schema):
    found = {(r.ok().method.upper(), r.ok().path) for r in api_schema.get_all_operations()}
    assert set(OPERATIONS) <= found, found
    assert {path for _, path in found} - {p for _, p in OPERATIONS} <= {"/", "/docs", "/openapi.json"}


def test_every_refusal_the_schema_declares_counts_as_one(app, api_schema):
    declared = {
        int(status)
        for route in app.openapi()["paths"].values()
        for operation in route.values()
        for status in operation["responses"]
        if status.startswith("4")
    }
    assert 413 in declared
    expected = api_schema.config.checks_config_for().negative_data_rejection.expected_statuses
    assert declared <= {int(status) for status in expected}


CONSTRAINED = [(m, p) for m, p in OPERATIONS if m == "POST" or p.endswith(("recommendations", "similar", "search"))]
"""The operations with inputs a request can get wrong (the others accept any id, or take none)."""


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [(m, p, "positive") for m, p in OPERATIONS] + [(m, p, "negative") for m, p in CONSTRAINED],
)
def test_every_answer_is_one_the_schema_declares(api_schema, method, path, mode):
    # positive: requests the schema allows, which must be answered; negative: requests it
    # forbids (wrong types, missing fields, out of range), which must be refused with a 4xx.
    strategy = api_schema[path][method].as_strategy(generation_mode=schemathesis.GenerationMode(mode))
    if mode == "positive" and path == "/recommendations":
        # The one rule JSON Schema cannot say: each item is rated at most once (else 422).
        strategy = strategy.filter(lambda case: _each_item_once(case.body))

    @given(case=strategy)
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        case.call_and_validate()

    check()


def _each_item_once(body: dict) -> bool:
    ids = [(type(r["item_id"]), r["item_id"]) for r in body.get("ratings", [])]
    return len(ids) == len(set(ids))

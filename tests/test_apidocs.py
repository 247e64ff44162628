"""The API's documentation pages without a browser: served, offline, their files present.
(tests/test_web.py renders them in Chromium.)"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from movierec.serve import apidocs


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI(title="movierec", docs_url=None, redoc_url=None)
    apidocs.mount(app)
    return TestClient(app)


@pytest.mark.parametrize("page", ["docs", "redoc"])
def test_each_page_loads_only_its_own_files(client, page):
    res = client.get(f"/{page}")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in res.headers["content-security-policy"]
    # Every script, style and icon from /docs-assets, by a relative URL; nothing named on another host.
    assert re.findall(r"https?://", res.text) == []
    for url in re.findall(r"""(?:src|href|spec-url)=['"]([^'"]+)['"]""", res.text) + re.findall(
        r"url: '([^']+)'", res.text
    ):
        assert url.startswith(f"{apidocs.ASSETS_URL}/") or url == "openapi.json", url
        if url != "openapi.json":
            assert client.get(f"/{url}").status_code == 200, url


def test_swagger_ui_is_version_5_or_later_which_reads_openapi_3_1():
    bundle = (apidocs.assets_dir() / "swagger-ui-bundle.js").read_text(errors="replace")
    major = re.findall(r'PACKAGE_VERSION:"(\d+)\.', bundle)  # Swagger UI 4 showed "no valid version field"
    assert major and int(major[0]) >= 5


def test_swagger_ui_asks_no_online_validator(client):
    assert '"validatorUrl": null' in client.get("/docs").text

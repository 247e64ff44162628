"""The web page's files as the browser gets them: short ES modules, every import a file that
is served, no build step. (tests/test_web.py drives the page itself in Chromium.)"""

from __future__ import annotations

import re

import pytest

from movierec.webpage import WEB_DIR

MAX_JS_LINES = 400
SCRIPTS = sorted(WEB_DIR.glob("*.js"))
IMPORT = re.compile(r'^import \{[^}]*\} from "\./([\w-]+\.js)";$', re.M)


def test_the_page_is_split_into_modules():
    assert len(SCRIPTS) > 1
    html = (WEB_DIR / "index.html").read_text()
    entry = re.findall(r'<script type="module" src="web/([\w-]+\.js)"></script>', html)
    assert entry == ["main.js"]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_no_script_over_400_lines(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_JS_LINES, f"{path.name} has {n} lines; split it by what it shows"


def test_every_module_is_reached_from_the_entry_and_every_import_exists():
    reached, todo = set(), ["main.js"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        path = WEB_DIR / name
        assert path.is_file(), f"{name} is imported but missing"
        reached.add(name)
        todo += IMPORT.findall(path.read_text())
    assert reached == {p.name for p in SCRIPTS}, "a script no page loads"


def test_modules_are_served_as_javascript():
    """Browsers refuse a module served with another type; the page's server sends them as text/javascript."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from movierec.webpage import mount_web

    app = FastAPI()
    mount_web(app)
    client = TestClient(app)
    for path in SCRIPTS:
        res = client.get(f"/web/{path.name}")
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/javascript"), path.name

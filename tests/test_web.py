"""The web page in a real browser: Debian's headless Chromium driven by Playwright.

A small model is trained here, ``movierec serve`` runs it on loopback, and the browser
does what a person would: search, rate three movies, see recommendations that leave
them out, change and clear a rating, look at a known user and at the model page, by
mouse and by keyboard, on a desktop and a phone-sized window. Each step is screenshotted
to ``artifacts/screenshots/NN-step.png``; the time from a rating to the list on screen is
written to ``artifacts/web-latency.json`` (a figure to report, not a timed assertion).

Skips, saying why, where Chromium or Playwright is missing; under CI (``CI`` set) their
absence fails instead, so the browser test cannot silently stop running there.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from movierec import pipeline
from movierec.data.load import load
from movierec.data.ratings import Ratings
from movierec.data.synthetic import SyntheticConfig, generate

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# This machine's closed network makes Chromium retry its background services forever;
# these flags keep it quiet and on loopback only. Never a browser download.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 15_000  # generous: CI shares two cores with the server and the browser


def _require_browser():
    """Playwright's sync API, or skip (developers) / fail (CI) saying what is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("Python's playwright (.venv/bin/pip install playwright; never `playwright install`)")
    if missing:
        why = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(why + "; .ci/run installs both", pytrace=False)
        pytest.skip(why)
    return sync_playwright


@pytest.fixture(scope="module", autouse=True)
def playwright_api():
    """Checked before anything is trained or started, so a skip costs nothing."""
    return _require_browser()


# ---------------------------------------------------------------- the model and the server


def _training_ratings() -> Ratings:
    # MOVIEREC_WEB_TEST_DATA=../shared/data/ml-latest-small runs the same steps on real
    # titles (how docs/screenshot.png was made); by default, small synthetic data.
    data = os.environ.get("MOVIEREC_WEB_TEST_DATA")
    if data:
        return load(data)
    return generate(SyntheticConfig(n_users=300, n_items=200, n_ratings=6000, seed=3)).ratings


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A small MLP trained for two epochs, written as ``movierec train`` writes it."""
    ratings = _training_ratings()
    out = tmp_path_factory.mktemp("web") / "model"
    pipeline.run(ratings, "mlp", out, train_overrides={"epochs": 2, "seed": 0})
    # The three most-rated movies are the ones the test rates; the most active user is "known".
    by_item = np.argsort(-np.bincount(ratings.item_idx, minlength=ratings.n_items), kind="stable")
    by_user = np.argsort(-np.bincount(ratings.user_idx, minlength=ratings.n_users), kind="stable")
    to_rate = [(str(ratings.index.item_ids[i]), str(ratings.titles[i])) for i in by_item[:3]]
    user = str(ratings.index.user_ids[by_user[0]])
    return {"dir": out, "to_rate": to_rate, "user": user, "dataset": ratings.name}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained) -> str:
    """``movierec serve`` on a free loopback port; its base URL once /health answers."""
    port = _free_port()
    cmd = [sys.executable, "-m", "movierec", "serve", "--model", str(trained["dir"])]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log = (trained["dir"].parent / "server.log").open("w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{log.read()}", pytrace=False)
            try:
                with urllib.request.urlopen(url + "health", timeout=2) as res:
                    if res.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not answer /health within 60 s", pytrace=False)
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(playwright_api, server):
    with playwright_api() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page_at(browser, server):
    """Open the page at a viewport; each test gets a fresh context (no saved ratings)."""
    contexts = []

    def open_(viewport=DESKTOP, hash_=""):
        ctx = browser.new_context(viewport=viewport, device_scale_factor=1)
        contexts.append(ctx)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.set_default_timeout(WAIT_MS)
        page.goto(server + hash_)
        page.wait_for_function("document.querySelector('#health').textContent.includes('users')")
        page.errors = errors  # type: ignore[attr-defined]
        return page

    yield open_
    for ctx in contexts:
        ctx.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# ---------------------------------------------------------------- helpers in page terms


def search(page, query: str) -> None:
    page.fill("#search", query)
    page.press("#search", "Enter")
    page.wait_for_function("q => document.querySelector('#search-note').textContent.includes(q)", arg=query.strip())


def search_row(page, item_id: str):
    return page.locator(f'#search-results li[data-item="{item_id}"]')


def star(row, n: int):
    return row.locator(f'input[type="radio"][value="{n}"]')


def rate_by_click(page, item_id: str, n: int) -> None:
    # The radio itself is visually hidden; people click its star (the label).
    search_row(page, item_id).locator(f'label[for$="-{n}"]').click()


def recs_version(page) -> int:
    """How many lists the page has put on screen so far."""
    return int(page.get_attribute("#recs", "data-version") or 0)


def wait_for_recs(page, rated_ids: list[str], since: int) -> list[str]:
    """The recommended ids, once a list newer than version ``since`` answering these ratings is on screen."""
    want = ",".join(sorted(rated_ids))
    page.wait_for_function(
        """([want, since]) => { const l = document.querySelector('#recs');
            return l.getAttribute('aria-busy') === 'false' && l.dataset.rated === want
                   && Number(l.dataset.version || 0) > since; }""",
        arg=[want, since],
    )
    return page.eval_on_selector_all("#recs li", "ls => ls.map(l => l.dataset.item)")


def latency_ms(page) -> float:
    return float(page.get_attribute("#recs", "data-latency-ms"))


def title_query(title: str) -> str:
    """What a person would type: the title without its year."""
    return re.sub(r"\s*\(\d{4}\)\s*$", "", title).lower()


# ---------------------------------------------------------------- the tests


def test_rate_three_movies_and_get_recommendations(page_at, trained):
    page = page_at()
    shot(page, "01-start")
    latencies = []
    rated: list[str] = []
    for n, (item_id, title) in zip((5, 4, 2), trained["to_rate"], strict=True):
        search(page, title_query(title))
        assert search_row(page, item_id).count() == 1, f"{title!r} not among the search results"
        if not rated:
            shot(page, "02-search")
        before = recs_version(page)
        rate_by_click(page, item_id, n)
        rated.append(item_id)
        recs = wait_for_recs(page, rated, before)
        latencies.append(latency_ms(page))
        assert star(search_row(page, item_id), n).is_checked()
    shot(page, "03-rated-three")

    assert len(recs) == 10
    assert not set(recs) & set(rated), "a rated movie was recommended back"
    mine = page.eval_on_selector_all("#my-ratings li", "ls => ls.map(l => l.dataset.item)")
    assert mine == rated
    # Each recommendation says which rated movies it is closest to, by title.
    reasons = page.locator("#recs .why").all_inner_texts()
    assert reasons and all(r.startswith("Because you rated") for r in reasons)
    assert any(title in " ".join(reasons) for _, title in trained["to_rate"])

    # Change a rating: the list is asked for again and follows.
    first_id = rated[0]
    row = page.locator(f'#my-ratings li[data-item="{first_id}"]')
    shown = page.inner_text("#recs")
    before = recs_version(page)
    row.locator('label[for$="-1"]').click()
    after_change = wait_for_recs(page, rated, before)
    latencies.append(latency_ms(page))
    assert star(row, 1).is_checked()
    assert star(search_row(page, trained["to_rate"][2][0]), 2).is_checked()  # the others keep theirs
    assert page.inner_text("#recs") != shown, "the list did not follow the changed rating"
    assert not set(after_change) & set(rated)
    shot(page, "04-changed-rating")

    # Clear one: it leaves "your ratings" and the ratings sent; the others are untouched.
    before = recs_version(page)
    page.get_by_role("button", name=f"Remove your rating of {trained['to_rate'][1][1]}").click()
    rated.remove(trained["to_rate"][1][0])
    after_clear = wait_for_recs(page, rated, before)
    latencies.append(latency_ms(page))
    assert page.locator("#my-ratings li").count() == 2
    assert not set(after_clear) & set(rated)
    assert page.evaluate(f"window.movierec.state.ratings.has('{trained['to_rate'][1][0]}')") is False
    assert star(search_row(page, trained["to_rate"][2][0]), 2).is_checked()  # the others keep theirs
    shot(page, "05-cleared-one")

    page.click("#clear-all")
    page.wait_for_function("() => document.querySelectorAll('#recs li').length === 0")
    assert page.locator("#my-ratings li").count() == 0
    assert page.errors == []

    _record_latency(latencies)


def _record_latency(latencies: list[float]) -> None:
    out = ROOT / "artifacts" / "web-latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "what": "ms from a rating change to the recommendations on screen (next frame), small model, loopback",
        "samples_ms": latencies,
        "median_ms": float(np.median(latencies)),
        "max_ms": float(np.max(latencies)),
    }
    out.write_text(json.dumps(figures, indent=1))
    print(f"\nweb latency: median {figures['median_ms']:.1f} ms, max {figures['max_ms']:.1f} ms")


def test_keyboard_only(page_at, trained):
    """Tab to the search box, type, Enter; Tab to a movie's stars; rate with keys; clear with 0."""
    page = page_at()
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "search":
            break
    else:
        pytest.fail("Tab never reached the search box")
    item_id, title = trained["to_rate"][0]
    page.keyboard.type(title_query(title))
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#search-results li[data-item="{item_id}"]')
    first = page.eval_on_selector("#search-results li", "l => l.dataset.item")
    page.keyboard.press("Tab")  # the submit button
    page.keyboard.press("Tab")  # the first result's stars
    assert page.evaluate("document.activeElement.closest('.stars')?.dataset.item") == first
    page.keyboard.press("4")
    wait_for_recs(page, [first], 0)
    assert star(search_row(page, first), 4).is_checked()
    before = recs_version(page)
    page.keyboard.press("ArrowRight")  # native radio group: moves and rates 5
    wait_for_recs(page, [first], before)
    assert star(search_row(page, first), 5).is_checked()
    assert page.evaluate(f"window.movierec.state.ratings.get('{first}').rating") == 5
    # Focus is visible where it is: the focused star has an outline.
    outline = page.evaluate(
        "getComputedStyle(document.querySelector(`label[for='${document.activeElement.id}']`)).outlineStyle"
    )
    assert outline == "solid"
    shot(page, "06-keyboard")
    page.keyboard.press("0")
    page.wait_for_function("() => document.querySelectorAll('#my-ratings li').length === 0")
    assert page.errors == []


def test_known_user_and_similar_movies(page_at, trained):
    page = page_at()
    page.click("nav >> text=Known users")
    page.fill("#user-id", trained["user"])
    page.press("#user-id", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#user-recs li').length === 10")
    assert page.url.endswith(f"#/users/{trained['user']}")
    n_rated = page.locator("#user-ratings li").count()
    assert n_rated > 0
    assert f"({n_rated:,})" in page.inner_text("#user-ratings-count")
    # Their top-N leaves out what they rated in training.
    theirs = set(page.eval_on_selector_all("#user-ratings li", "ls => ls.map(l => l.dataset.item)"))
    top = page.eval_on_selector_all("#user-recs li", "ls => ls.map(l => l.dataset.item)")
    assert not theirs & set(top)
    # Click a movie: the similar list fills, without the movie itself.
    clicked = top[0]
    page.click(f'#user-recs button[data-item="{clicked}"]')
    page.wait_for_function("() => document.querySelectorAll('#similar li').length > 0")
    similar = page.eval_on_selector_all("#similar li", "ls => ls.map(l => l.dataset.item)")
    assert clicked not in similar
    assert page.inner_text("#similar-title").startswith("Similar to ")
    shot(page, "07-known-user")

    page.fill("#user-id", "no-such-user")
    page.press("#user-id", "Enter")
    page.wait_for_function("() => document.querySelector('#user-note').classList.contains('error')")
    assert page.locator("#user-recs li").count() == 0
    assert [e for e in page.errors if "Failed to load resource" not in e] == []  # the 404 itself


def test_model_page(page_at, trained):
    page = page_at(hash_="#/model")
    page.wait_for_selector("#chart-curves svg path.series")
    metrics = page.inner_text("#model-scores")
    for label in ("Test RMSE", "Test MAE", "Baseline RMSE"):
        assert label in metrics
    assert re.search(r"Test RMSE\s+\d\.\d{3}", metrics), metrics
    # Two epochs: two points per curve, train loss and validation MSE.
    assert page.locator("#chart-curves svg path.series").count() == 2
    assert page.locator("#chart-curves svg circle").count() == 4
    for chart in ("#chart-activity", "#chart-distribution", "#chart-ranking"):
        if page.locator(chart).count():
            assert page.locator(f"{chart} svg rect.bar").count() > 0, chart
    assert "What was trained on what" in page.inner_text("#model-body")
    assert trained["dataset"] in page.inner_text("#model-body")
    shot(page, "08-model")
    assert page.errors == []


def test_phone_sized_window(page_at, trained):
    """390x844: one column, nothing wider than the screen, the stars still big enough to hit."""
    page = page_at(viewport=PHONE)
    item_id, title = trained["to_rate"][0]
    search(page, title_query(title))
    rate_by_click(page, item_id, 4)
    wait_for_recs(page, [item_id], 0)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = search_row(page, item_id).locator('label[for$="-4"]').bounding_box()
    assert box["width"] >= 24 and box["height"] >= 24
    shot(page, "09-phone-rate")
    page.click("nav >> text=Model")
    page.wait_for_selector("#chart-curves svg")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "10-phone-model")
    assert page.errors == []


# ---------------------------------------------------------------- the API's documentation pages


def _operations(server: str) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> operationId of every operation the served OpenAPI schema declares."""
    with urllib.request.urlopen(server + "openapi.json", timeout=10) as res:
        schema = json.load(res)
    assert schema["openapi"].startswith("3.1")  # what Swagger UI 4 could not read
    verbs = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
    return {
        (verb.upper(), path): op["operationId"]
        for path, item in schema["paths"].items()
        for verb, op in item.items()
        if verb in verbs
    }


def _leaves_loopback(url: str, server: str) -> bool:
    """A request over the network to anywhere but the server (blob: and data: URLs stay in the page)."""
    return url.split(":", 1)[0] not in ("blob", "data") and not url.startswith(server)


@pytest.fixture
def docs_page(browser, server):
    """A fresh page that records script errors and every request that left loopback (``page.outside``)."""
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    page.errors, page.outside, page.refused = [], [], []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: page.outside.append(r.url) if _leaves_loopback(r.url, server) else None)
    # A request the page's Content-Security-Policy refuses never reaches the network.
    page.on("requestfailed", lambda r: page.refused.append(r.url) if r.failure == "csp" else None)
    page.set_default_timeout(WAIT_MS)
    yield page
    ctx.close()


def test_swagger_ui_renders_every_operation(docs_page, server):
    """/docs in the browser shows every operation of the schema, each once, with nothing fetched from elsewhere."""
    operations = _operations(server)
    assert len(operations) >= 5
    page = docs_page
    page.goto(server + "docs")
    page.wait_for_selector(".opblock-summary")
    assert page.locator(".swagger-ui .errors-wrapper").count() == 0, page.inner_text(".swagger-ui")
    shown = page.eval_on_selector_all(
        ".opblock",
        """bs => bs.map(b => [b.querySelector('.opblock-summary-method').textContent.trim(),
                              b.querySelector('.opblock-summary-path').dataset.path])""",
    )
    assert sorted(map(tuple, shown)) == sorted(operations)
    shot(page, "11-api-docs")
    assert page.errors == [] and page.outside == []


def test_redoc_renders(docs_page, server):
    """/redoc in the browser shows the API's title and a section per operation, with nothing fetched from elsewhere."""
    operations = _operations(server)
    page = docs_page
    page.goto(server + "redoc")
    page.wait_for_selector(".api-content h1")
    assert page.inner_text(".api-content h1").startswith("movierec")
    # ReDoc gives each operation a section (and a menu entry) named after its operationId.
    sections = page.eval_on_selector_all(
        ".api-content [data-section-id^='operation/']", "ss => ss.map(s => s.dataset.sectionId)"
    )
    assert set(sections) == {f"operation/{op}" for op in operations.values()}, page.inner_text(".menu-content")
    shot(page, "12-redoc")
    # Its footer's logo lives on a CDN: the page's policy refuses it (a console error) rather than fetch it.
    assert page.outside == page.refused
    assert [e for e in page.errors if "cdn.redoc.ly" not in e] == []


@pytest.mark.parametrize(
    ("scale", "sent"),
    [
        ([0.5, 5], [1, 3, 5]),
        ([1, 5], [1, 3, 5]),
        ([1, 10], [1, 5.5, 10]),
        ([-2.5, 2], [-2.5, -0.25, 2]),
        ([0, 100], [0, 50, 100]),
    ],
)
def test_stars_are_sent_on_the_model_scale(scale, sent):
    """The page's starsToScale, run by node: five stars are the top of any scale (5 of 10 was sent before)."""
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    source = (Path(__file__).resolve().parents[1] / "src" / "movierec" / "web" / "rate.js").read_text()
    function = re.search(r"function starsToScale\(stars\) \{.*?\n\}", source, re.S)
    assert function is not None
    show = "console.log(JSON.stringify([1, 3, 5].map(starsToScale)));"
    script = f"const state = {{scale: {scale}}};\n{function.group(0)}\n{show}"
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(result.stdout) == sent

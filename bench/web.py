"""How fast the web page answers a rating: from the click to the new list on screen.

Starts ``movierec serve`` on a saved model (by default the ML-20M-sized one that
``bench/serve.py`` builds: 138,493 users x 26,744 items), then:
- times ``POST /recommendations`` (the fold-in call the page makes) over HTTP with 1, 3
  and 10 ratings, one keep-alive connection, requests one after another; and a known
  user's top 10, where the model scores every item (what a fold-in model adds to the
  bias-only fallback the MLP answers new users with);
- opens the page in Debian's headless Chromium (Playwright, never a browser download),
  rates movies from the popular list by clicking stars, and reads the page's own figure
  (``#recs[data-latency-ms]``: performance.now() from the rating's change event to the
  frame after the list is in the DOM).
Loopback only; bounded by ``--rounds``.

    .venv/bin/python bench/serve.py --model mlp --requests 100   # builds the ML-20M-sized model once
    .venv/bin/python bench/web.py                               # then this

Target: recommendations on screen within 200 ms of the last rating.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import machine  # bench/machine.py: the same description in every script
import numpy as np

TARGET_MS = 200.0
DEFAULT_MODEL = Path("/tmp/movierec-bench-serve/mlp-138493x26744x20000263-e0")
CHROMIUM = "/usr/bin/chromium"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "movierec", "serve", "--model", str(model_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not answer /health within 300 s")


def api_latency(port: int, item_ids: list, n_ratings: int, rounds: int, seed: int) -> list[float]:
    """Milliseconds per POST /recommendations with ``n_ratings`` random ratings of popular items."""
    rng = np.random.default_rng(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for r in range(rounds + 3):  # the first three warm up
        picks = rng.choice(len(item_ids), size=n_ratings, replace=False)
        ratings = [{"item_id": item_ids[i], "rating": float(rng.integers(1, 6))} for i in picks]
        body = json.dumps({"ratings": ratings, "k": 10, "exclude": [x["item_id"] for x in ratings]})
        started = time.perf_counter()
        conn.request("POST", "/recommendations", body, {"content-type": "application/json"})
        res = conn.getresponse()
        data = res.read()
        took = (time.perf_counter() - started) * 1000
        if res.status != 200:
            raise SystemExit(f"POST /recommendations answered {res.status}: {data[:300]!r}")
        if r >= 3:
            out.append(took)
    return out


def known_user_latency(port: int, user_ids: list, rounds: int, seed: int) -> list[float]:
    """Milliseconds per GET /users/{id}/recommendations: the model scores every item for one user,
    the work a fold-in model also does after fitting the new user (the MLP only has the bias fallback)."""
    rng = np.random.default_rng(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for r in range(rounds + 3):
        user = user_ids[int(rng.integers(len(user_ids)))]
        started = time.perf_counter()
        conn.request("GET", f"/users/{user}/recommendations?k=10")
        res = conn.getresponse()
        data = res.read()
        if res.status != 200:
            raise SystemExit(f"GET /users/{user}/recommendations answered {res.status}: {data[:300]!r}")
        if r >= 3:
            out.append((time.perf_counter() - started) * 1000)
    return out


def page_latency(port: int, rounds: int) -> tuple[list[float], str]:
    """The page's own rating-to-screen figure for ``rounds`` ratings of movies in its popular list."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(60_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#search-results li")
        rows = page.locator("#search-results li")
        n_rows = rows.count()
        out = []
        for r in range(rounds + 2):  # the first two warm up
            before = int(page.get_attribute("#recs", "data-version") or 0)
            # Rate up to three movies, then keep changing their ratings: each change is a new list.
            stars = 1 + (r * 2) % 5
            rows.nth(r % min(3, n_rows)).locator(f'label[for$="-{stars}"]').click()
            page.wait_for_function(
                "v => Number(document.querySelector('#recs').dataset.version || 0) > v"
                " && document.querySelector('#recs').getAttribute('aria-busy') === 'false'",
                arg=before,
            )
            if r >= 2:
                out.append(float(page.get_attribute("#recs", "data-latency-ms")))
        source = page.inner_text("#recs-note")
        browser.close()
    return out, source


def summary(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"{np.median(a):7.1f} {np.percentile(a, 95):7.1f} {a.max():7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL, help="a saved model (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=30, help="measured requests / ratings per row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.model_dir / "manifest.json").is_file():
        raise SystemExit(f"no model in {args.model_dir}; build one with: .venv/bin/python bench/serve.py --model mlp")

    manifest = json.loads((args.model_dir / "manifest.json").read_text())
    port = free_port()
    started = time.perf_counter()
    server = start_server(args.model_dir, port)
    load_s = time.perf_counter() - started
    try:
        # The most popular items, as the page's start list shows them: what people rate first.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST", "/recommendations", json.dumps({"ratings": [], "k": 200}), {"content-type": "application/json"}
        )
        popular = [row["item_id"] for row in json.loads(conn.getresponse().read())["items"]]
        rows = [
            (
                f"POST /recommendations, {n} rating{'s' if n > 1 else ''}",
                api_latency(port, popular, n, args.rounds, args.seed),
            )
            for n in (1, 3, 10)
        ]
        users = manifest.get("user_ids") or []
        if users:
            rows.append(
                ("GET /users/{id}/recommendations (all items)", known_user_latency(port, users, args.rounds, args.seed))
            )
        in_page, source = page_latency(port, args.rounds)
        rows.append(("page: rating -> list on screen", in_page))
    finally:
        server.terminate()
        server.wait(30)

    print(
        f"model: {manifest['model']} {manifest['n_users']:,} users x {manifest['n_items']:,} items ({args.model_dir})"
    )
    print(f"machine: {machine.summary()}; server start {load_s:.0f} s")
    print(f"page's list: {source}")
    print(f"{'what':44} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for name, ms in rows:
        print(f"{name:44} {summary(ms)}")
    verdict = "meets" if np.percentile(in_page, 95) <= TARGET_MS else "MISSES"
    print(f"target: on screen within {TARGET_MS:.0f} ms of the rating (p95): {verdict}")


if __name__ == "__main__":
    main()

"""Load test of ``movierec serve``: requests per second and p50/p99 latency on loopback.

Builds (once, then reuses) an ML-20M-sized recommender: the synthetic generator at
138,493 users x 26,744 items x 20,000,263 ratings; the ranker ``auto`` picks at that size
(``ials``, as its lists are ordered) and a rating model of the chosen family, both with
untrained weights unless ``--epochs`` says otherwise (serving cost depends on the shapes,
not the values); fallback biases fitted; the training ratings by user. Starts the server
in a subprocess, then drives it from this process with ``--concurrency`` keep-alive
connections (a small asyncio HTTP/1.1 client, so the client costs little of the two
cores it shares with the server). Two loads, one after the other: top-``k`` of a random
known user (GET /users/{id}/recommendations), and top-``k`` of a new user from 5 random
ratings (POST /recommendations). Bounded by ``--requests`` and ``--seconds``, loopback only.

Also times the same top-k in-process (no HTTP), to show what the models cost per
request and what the service adds.

    .venv/bin/python bench/serve.py --model mf
    .venv/bin/python bench/serve.py --model mlp --json bench/results/serve-mlp-ml20m-shape.json

Target: >= 300 requests/s at p99 <= 50 ms with 16 clients, no errors, for either request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import describe  # bench/machine.py: the same description in every script

ML20M = "138493x26744x20000263"
TARGET_RPS, TARGET_P99_MS = 300.0, 50.0


def default_model() -> str:
    return "mf"


def build_model(model: str, shape: str, epochs: int, out: Path) -> None:
    """Generate the synthetic log, make the recommender (its rater fitted for ``epochs`` if > 0), save it to ``out``."""
    import torch

    from movierec import fitting, models, persist
    from movierec.data.synthetic import SyntheticConfig, generate
    from movierec.models.baseline import fit_biases
    from movierec.plan import choose_ranker
    from movierec.recommend import Recommender
    from movierec.training import TrainConfig

    n_users, n_items, n_ratings = (int(x) for x in shape.split("x"))
    started = time.perf_counter()
    ratings = generate(SyntheticConfig(n_users=n_users, n_items=n_items, n_ratings=n_ratings)).ratings
    print(f"generated {ratings.name} in {time.perf_counter() - started:.0f} s", flush=True)
    spec = models.get(model)
    ranker_name, _ = choose_ranker("auto", n_users, n_items)
    ranker_spec = models.get(ranker_name)
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    if epochs > 0:
        config = TrainConfig.for_model(spec, epochs=epochs, device="cpu")
        recommender, _ = fitting.fit(ratings, None, model, train_config=config)
    else:
        rater = spec.build(spec.config_type(), n_users, n_items, generator).eval()
        ranker = ranker_spec.build(ranker_spec.config_type(), n_users, n_items, generator).eval()
        for tensor in ranker.buffers():  # untrained, but not all zero: scores must differ
            if tensor.is_floating_point() and tensor.dim() == 2:
                tensor.normal_(0.0, 0.1, generator=generator)
        mean = float(np.mean(ratings.rating, dtype=np.float64))
        b_u, b_i = fit_biases(
            ratings.user_idx, ratings.item_idx, ratings.rating.astype(np.float64) - mean, n_users, n_items
        )
        recommender = Recommender(
            ranker=ranker,
            ranker_name=ranker_name,
            ranker_config=ranker_spec.config_type(),
            rater=rater,
            rater_name=spec.name,
            rater_config=spec.config_type(),
            index=ratings.index,
            history=ratings.by_user(),
            global_mean=mean,
            scale=ratings.rating_scale(),
            user_bias=b_u,
            item_bias=b_i,
            titles=ratings.titles,
            info={"dataset": ratings.name, "bench": f"bench/serve.py, {'untrained' if epochs == 0 else epochs}"},
        )
    persist.save(recommender, out)
    print(f"built and saved the {model} model to {out} in {time.perf_counter() - started:.0f} s", flush=True)


def in_process(model_dir: Path, k: int, n: int, seed: int) -> dict:
    """Top-k straight from the Recommender, no HTTP: the models' share of a request, known and new users."""
    import torch

    from movierec import persist

    torch.set_num_threads(1)  # as `movierec serve` runs by default
    rec = persist.load(model_dir)
    users = _known_users(rec.user_counts, n, seed)
    ids = rec.index.user_ids[users].tolist()
    rng = np.random.default_rng(seed)
    rated = [rng.choice(rec.index.item_ids[rec.popular[:2000]], 5, replace=False).tolist() for _ in range(n)]
    out: dict = {}
    for what, call in (
        ("known", lambda j: rec.recommend(ids[j], k)),
        ("new", lambda j: rec.recommend_new_user([(i, 4.0) for i in rated[j]], k)),
    ):
        for j in range(20):
            call(j)
        times = []
        for j in range(n):
            t = time.perf_counter()
            call(j)
            times.append(time.perf_counter() - t)
        ms = np.array(times) * 1000
        out[what] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
    params = [*rec.ranker.parameters(), *rec.ranker.buffers(), *(rec.rater.parameters() if rec.rater else [])]
    return {
        "model": rec.rater_name,
        "ranker": rec.ranker_name,
        "n_users": rec.index.n_users,
        "n_items": rec.index.n_items,
        "n_params": sum(p.numel() for p in params),
        **out,
        "user_ids": rec.index.user_ids[_known_users(rec.user_counts, 4096, seed + 1)].tolist(),
        "new_users": [
            rng.choice(rec.index.item_ids[rec.popular[:2000]], 5, replace=False).tolist() for _ in range(4096)
        ],
    }


def _known_users(counts: np.ndarray, n: int, seed: int) -> np.ndarray:
    with_ratings = np.flatnonzero(counts > 0)
    return np.random.default_rng(seed).choice(with_ratings, n)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live children (uvicorn workers), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = task / "children"
        if children.exists():
            total += sum(process_cpu(int(c)) for c in children.read_text().split())
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "movierec", "serve", "--model", str(model_dir), "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not answer /health within 300 s")


async def load_test(
    port: int, paths: list, concurrency: int, max_requests: int, max_seconds: float, warmup: int
) -> dict:
    """Closed loop: ``concurrency`` connections, each sending its next request when the last is answered."""
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    stop = 0.0

    async def one(reader, writer, path: str | bytes) -> None:
        if isinstance(path, bytes):  # a posted body: a new user's ratings
            head = "POST /recommendations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            writer.write(f"{head}Content-Length: {len(path)}\r\n\r\n".encode() + path)
            expect = b'{"items"'
        else:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            expect = b'{"user_id"'
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200") or not body.startswith(expect):
            raise RuntimeError(f"{head.split(b' ', 2)[1].decode()} {body[:120]!r}")

    async def client(n_warm: int, measure: bool) -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for j in range(n_warm):
                await one(reader, writer, paths[-1 - j % len(paths)])
            while measure and sent < max_requests and time.perf_counter() < stop:
                path = paths[sent % len(paths)]
                sent += 1
                started = time.perf_counter()
                try:
                    await one(reader, writer, path)
                except (RuntimeError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors.append(str(exc))
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    await asyncio.gather(*(client(max(1, warmup // concurrency), False) for _ in range(concurrency)))
    stop = time.perf_counter() + max_seconds
    started = time.perf_counter()
    await asyncio.gather(*(client(0, True) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "requests": len(latencies) + len(errors),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model family (default: mf if registered, else mlp)")
    parser.add_argument("--shape", default=ML20M, help="synthetic USERSxITEMSxRATINGS (default: ML-20M's)")
    parser.add_argument("--epochs", type=int, default=0, help="fit this many epochs first (default 0: untrained)")
    parser.add_argument("--model-dir", type=Path, help="reuse or create this model dir (default under /tmp)")
    parser.add_argument("--requests", type=int, default=6000, help="stop after this many requests")
    parser.add_argument("--seconds", type=float, default=30.0, help="or after this many seconds")
    parser.add_argument("--concurrency", type=int, default=16, help="simultaneous client connections")
    parser.add_argument("--warmup", type=int, default=320, help="requests before measuring")
    parser.add_argument("-k", type=int, default=10, help="items per list")
    parser.add_argument("--server-arg", action="append", default=[], help="extra `movierec serve` argument")
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    args = parser.parse_args()

    model = args.model or default_model()
    model_dir = args.model_dir or Path(f"/tmp/movierec-bench-serve/{model}-{args.shape}-e{args.epochs}")
    if not (model_dir / "manifest.json").exists():
        build_model(model, args.shape, args.epochs, model_dir)
    local = in_process(model_dir, args.k, 500, seed=0)
    loads = {
        "GET /users/{id}/recommendations": [f"/users/{u}/recommendations?k={args.k}" for u in local.pop("user_ids")],
        "POST /recommendations (5 ratings)": [
            json.dumps({"ratings": [{"item_id": i, "rating": 4.0} for i in items], "k": args.k}).encode()
            for items in local.pop("new_users")
        ],
    }
    port = free_port()
    load_before = os.getloadavg()[0]
    server = start_server(model_dir, port, args.server_arg)
    results = {}
    try:
        for name, paths in loads.items():
            cpu_before, own_before = process_cpu(server.pid), time.process_time()
            result = asyncio.run(load_test(port, paths, args.concurrency, args.requests, args.seconds, args.warmup))
            # CPU seconds per request: steadier than wall-clock figures when others share the machine.
            n = max(result["requests"], 1) + args.warmup
            result["server_cpu_ms"] = (process_cpu(server.pid) - cpu_before) / n * 1000
            result["client_cpu_ms"] = (time.process_time() - own_before) / n * 1000
            results[name] = result
    finally:
        server.terminate()
        server.wait(timeout=30)

    m = describe()
    m["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    m["server_args"] = args.server_arg
    ok = all(r["rps"] >= TARGET_RPS and r["p99_ms"] <= TARGET_P99_MS and r["errors"] == 0 for r in results.values())
    print(
        f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['platform']}, python {m['python']}; "
        f"load average {m['load_average_1min'][0]} before, {m['load_average_1min'][1]} after"
    )
    print(
        f"models:  {local['ranker']} lists, {local['model']} ratings "
        f"({'untrained' if args.epochs == 0 else f'{args.epochs} epochs'}), "
        f"{local['n_users']:,} users x {local['n_items']:,} items, {local['n_params']:,} parameters"
    )
    for what in ("known", "new"):
        row = local[what]
        print(f"in-process top-{args.k}, {what} user (no HTTP): p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms")
    header = f"{'request':<36} {'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(
            f"{name:<36} {args.concurrency:>7} {r['requests']:>8} "
            f"{r['rps']:>8.1f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['errors']:>6}"
        )
    print(
        f"target: >= {TARGET_RPS:.0f} req/s, p99 <= {TARGET_P99_MS:.0f} ms, no errors -> {'MET' if ok else 'NOT MET'}"
        " (client and server share the cores; other work on the machine makes figures noisy)"
    )
    for name, r in results.items():
        print(f"CPU per request, {name}: server {r['server_cpu_ms']:.2f} ms, client {r['client_cpu_ms']:.2f} ms")
        if r["first_errors"]:
            print("first errors:", *r["first_errors"], sep="\n  ")
    if args.json:
        record = {"script": "bench/serve.py", "machine": m, "models": local, "k": args.k, "loads": results}
        Path(args.json).write_text(json.dumps({**record, "target_met": ok}, indent=1))


if __name__ == "__main__":
    main()

"""Running the app with uvicorn: threads, workers, timeouts, and the hosts a loopback server answers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI

from movierec.errors import ConfigError
from movierec.serve.app import create_app

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
"""Addresses (and the Host names) of this machine alone."""
IDLE_TIMEOUT_S = 5
"""Seconds a connection may sit idle (between requests, or before its first) before it is closed."""
_SETTINGS_ENV = "MOVIEREC_SERVE_SETTINGS"


def serve(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    handler_threads: int | None = 1,
    torch_threads: int | None = 1,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Load the model, then serve it with uvicorn until interrupted.

    Concurrency, measured on a busy 2-core box at ML-20M shape (bench/serve.py):
    - ``torch_threads`` (None: torch's default): one per process. A request scores one
      user, too little work to split: top-10 took 0.45 ms on one thread, 4.6 ms on two.
    - ``handler_threads`` (None: anyio's 40): requests computed at once in a process. One
      keeps the event loop parsing the next requests while it computes, and spares 40
      threads fighting over the GIL: server CPU per request fell from about 2 ms to 1.
    - ``workers``: processes, each with its own copy of the model, to use more cores for
      the Python parts (routing, encoding) that the GIL serialises.

    Bound to loopback (the default), the app answers only Host names of this machine.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    settings = {
        "model_dir": str(model_dir),
        "handler_threads": handler_threads,
        "torch_threads": torch_threads,
        "allowed_hosts": list(LOOPBACK) if host in LOOPBACK else None,
    }
    if workers == 1:
        _uvicorn_run(_configured_app(settings), host, port, access_log, log_level)
        return
    # Each worker process builds its own app from the environment; load once here first
    # so a missing or corrupt model directory stops the command before anything listens.
    create_app(model_dir)
    os.environ[_SETTINGS_ENV] = json.dumps(settings)
    _uvicorn_run(
        "movierec.serve.run:app_from_environment", host, port, access_log, log_level, factory=True, workers=workers
    )


def app_from_environment() -> FastAPI:
    """The app a uvicorn worker process builds, from the settings ``serve`` left in the environment."""
    return _configured_app(json.loads(os.environ[_SETTINGS_ENV]))


def _configured_app(settings: dict) -> FastAPI:
    import torch

    if settings["torch_threads"] is not None:
        torch.set_num_threads(settings["torch_threads"])
    return create_app(
        settings["model_dir"], handler_threads=settings["handler_threads"], allowed_hosts=settings["allowed_hosts"]
    )


def _uvicorn_run(app: object, host: str, port: int, access_log: bool, log_level: str, **extra: object) -> None:
    """Run uvicorn until a signal stops it; Ctrl-C then reaches the caller as ``KeyboardInterrupt``.

    uvicorn takes SIGINT itself, shuts down and returns as if nothing happened (exit 0,
    with four lines of its log). It re-raises the signal it caught through the handler it
    found, so a handler that only notes it tells Ctrl-C apart; with several workers the
    supervisor keeps the signal, and its return can only follow one.
    """
    import signal

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log_config = json.loads(json.dumps(LOGGING_CONFIG))
    log_config["filters"] = {"quiet_shutdown": {"()": "movierec.shutdown_log.QuietShutdown"}}
    log_config["handlers"]["default"]["filters"] = ["quiet_shutdown"]
    noted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        uvicorn.run(
            app,  # type: ignore[arg-type]
            host=host,
            port=port,
            access_log=access_log,
            log_level=log_level,
            log_config=log_config,
            timeout_keep_alive=IDLE_TIMEOUT_S,
            http=guarded_protocol(),  # type: ignore[arg-type]
            **extra,  # type: ignore[arg-type]
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    if noted or extra.get("workers", 1) != 1:
        raise KeyboardInterrupt


def guarded_protocol() -> str:
    """uvicorn's httptools protocol with deadlines that uvicorn lacks (see ``serve/guard.py``),
    named by import path so that worker processes, which uvicorn spawns, can find it."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # no httptools (not CPython): uvicorn's own choice, without the deadlines
        return "auto"
    return "movierec.serve.guard:GuardedHttp"

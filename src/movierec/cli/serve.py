"""The ``serve`` command: the HTTP service over a saved model."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from movierec.cli.common import app, err
from movierec.errors import ConfigError


@app.command()
def serve(
    model_dir: Annotated[Path, typer.Option("--model", help="A model directory written by `movierec train`.")],
    host: Annotated[
        str, typer.Option(help="Address to listen on; the default answers this machine only. 0.0.0.0: every interface.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    access_log: Annotated[bool, typer.Option(help="Log every request (costs throughput).")] = False,
    workers: Annotated[int, typer.Option(help="Server processes, each with its own copy of the model.")] = 1,
    handler_threads: Annotated[
        int, typer.Option(help="Requests computed at once per process; 0: anyio's default (40).")
    ] = 1,
    threads: Annotated[int, typer.Option(help="Torch threads per process; 0: torch's default (one per core).")] = 1,
) -> None:
    """Serve a saved model over HTTP: recommendations, new users, similar items, predictions, search.

    The API's documentation is at /docs (Swagger UI) and /redoc, its schema at /openapi.json, once it runs.
    """
    from movierec.serve import serve as run

    if not host.strip():
        # uvicorn would take "" as every interface, and the Host check with it.
        raise ConfigError("--host must be an address or host name (127.0.0.1, ::1, 0.0.0.0), got an empty one")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {port}")
    if threads < 0 or handler_threads < 0 or workers < 1:
        raise ConfigError("--threads and --handler-threads must be 0 or more, --workers at least 1")
    _check_listenable(host, port)
    err.print(f"loading {model_dir} ...", highlight=False)
    run(
        model_dir,
        host=host,
        port=port,
        workers=workers,
        handler_threads=handler_threads or None,
        torch_threads=threads or None,
        access_log=access_log,
    )


def _check_listenable(host: str, port: int) -> None:
    """Bind once, before the model loads: a port in use or an unknown host is one line, not uvicorn's log."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address or host name this machine knows ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host} port {port} ({exc.strerror}); pick another --port") from None

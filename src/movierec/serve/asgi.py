"""ASGI guards around the app: a cap on the request body, and the Host names the app answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class BodyLimit:
    """413 for a body over ``limit`` bytes: by its Content-Length before reading, or as it streams in."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await reject(send, 413, f"the request body is over {self.limit >> 20} MiB")
            return
        seen, too_large = 0, False

        async def limited() -> dict:
            nonlocal seen, too_large
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # Cut the body short rather than raise: FastAPI would turn an exception in its
                # body reader into a 400. The app's answer to the cut body is dropped for ours.
                too_large = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def unless_too_large(message: dict) -> None:
            if not too_large:
                await send(message)

        await self.app(scope, limited, unless_too_large)
        if too_large:
            await reject(send, 413, f"the request body is over {self.limit >> 20} MiB")


class HostCheck:
    """400 for a Host header outside ``allowed`` (names compared without their port)."""

    def __init__(self, app: Callable, allowed: Iterable[str]) -> None:
        self.app, self.allowed = app, {h.lower() for h in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit("]", 1)[0] + "]" if host.startswith("[") else host.split(":", 1)[0]
            if name not in self.allowed:
                await reject(send, 400, f"this server answers to {', '.join(sorted(self.allowed))} only")
                return
        await self.app(scope, receive, send)


async def reject(send: Send, status: int, detail: str) -> None:
    """Answer ``status`` with a JSON ``detail``, without the app."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

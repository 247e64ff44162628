"""uvicorn's httptools protocol with the deadlines uvicorn lacks: idle before the first request,
headers, body. Without them a client that connects and sends nothing, or one byte a minute,
holds its connection for ever. Imported only by uvicorn, from the path ``run.guarded_protocol`` gives."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TIMEOUT_S = 10
"""Seconds a request's headers may take to arrive once they begin (a slow-loris client is cut off)."""
BODY_TIMEOUT_S = 30
"""Seconds a request's body may take to arrive after its headers."""


class GuardedHttp(HttpToolsProtocol):
    deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a response; arm it for the first request too.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def _cut_off(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _expect(self, seconds: float | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = None if seconds is None else self.loop.call_later(seconds, self._cut_off)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._expect(HEAD_TIMEOUT_S)

    def on_headers_complete(self) -> None:
        self._expect(BODY_TIMEOUT_S)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._expect(None)
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect(None)
        super().connection_lost(exc)

"""Request limits: a clear 413 before a large body is read into memory, and a 429 when a web
process is asked to accept more writes per second than configured."""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def reject(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer `{"detail": ...}` with `status` straight from ASGI middleware."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        await reject(send, 413, f"request body larger than {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self._reject(send)


class WriteRateLimit:
    """A token bucket per web process over POST/DELETE requests: `rate_per_s` sustained, bursts
    of the same size. It protects Redis and the workers from a flood; reads are not limited.
    Runs in the event loop (one thread), so it needs no lock and costs no I/O."""

    def __init__(self, app: ASGIApp, *, rate_per_s: int) -> None:
        self.app = app
        self.rate = float(rate_per_s)
        self.tokens = self.rate
        self.updated = time.monotonic()

    def take(self) -> bool:
        """A write's token, if one is left (api/fast_front.py takes them here too)."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "DELETE") or not self.rate:
            await self.app(scope, receive, send)
            return
        if not self.take():
            detail = f"more than {int(self.rate)} writes per second; retry in a second"
            await reject(send, 429, detail, [(b"retry-after", b"1")])
            return
        await self.app(scope, receive, send)

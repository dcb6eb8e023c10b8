"""The `Idempotency-Key` request header: a client that retries a POST (after a timeout, a 503)
with the same key gets the job its first attempt created, never a second one.

The header is read once per request by this ASGI middleware and handed to `api.enqueue.submit`
through a context variable, so every enqueue route honours it without declaring it.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import reject

HEADER = b"idempotency-key"
#: Printable ASCII, as Stripe and the IETF draft allow; long enough for a UUID or a hash.
VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

current_key: ContextVar[str | None] = ContextVar("idempotency_key", default=None)


class IdempotencyKey:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers", [])).get(HEADER)
        if raw is None:
            await self.app(scope, receive, send)
            return
        key = raw.decode("latin-1")
        if not VALID_KEY.match(key):
            detail = "Idempotency-Key must be 1 to 255 printable ASCII characters"
            await reject(send, 400, detail)
            return
        token = current_key.set(key)
        try:
            await self.app(scope, receive, send)
        finally:
            current_key.reset(token)

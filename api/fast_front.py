"""A plain enqueue answered in front of our middleware, their checks made here in one pass.

Six ASGI layers stand between uvicorn and the fast path (api/fast_enqueue.py): request metrics,
the write rate limit, the body size limit, JSON only, the callback URL and the Idempotency-Key.
Each wraps `receive` or `send` in closures and reads the headers again, per request; together
they cost a plain enqueue about as much as its Redis command. This middleware, outermost of
ours, takes a POST to a fast route whose every check passes and answers it with the same
endpoint call as FastEnqueue (`FastEnqueue.answer`), recording the request's metrics under its
route as RequestMetrics does and taking its write from the same token bucket (WriteRateLimit).

Anything else goes on through the six layers untouched, its body replayed if it was read, and
gets exactly their answer: a `callback_url` or an `Idempotency-Key` (their checks and context
variables), a body without a Content-Length, over the size limit (413), not JSON (415, 422),
a request FastAPI would refuse (401, 403, 422), and a write beyond the rate (the limit's own
429). Nothing is consumed before the last check: the rate token is taken just before the
endpoint runs, once the request is known to be answered here.

The layers are found on the first request, by walking the stack below (Starlette builds it on
first use); without all of them in it, everything goes on through the stack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from api.callbacks import CallbackUrl
from api.content_type import JsonOnly, is_json
from api.fast_enqueue import FastEnqueue, onward, received, replaying
from api.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.idempotency import IdempotencyKey
from api.limits import BodySizeLimit, WriteRateLimit
from api.metrics import RequestMetrics, record_request


@dataclass(frozen=True)
class _Layers:
    fast: FastEnqueue
    rate: WriteRateLimit
    max_bytes: int
    exempt: tuple[str, ...]


def _layers_below(app: Any) -> _Layers | None:
    """The layers this middleware stands in for, when all of them are in the stack below."""
    found: dict[type, Any] = {}
    while app is not None and FastEnqueue not in found:
        found.setdefault(type(app), app)
        app = getattr(app, "app", None)
    wanted = (RequestMetrics, WriteRateLimit, BodySizeLimit, JsonOnly, CallbackUrl, IdempotencyKey)
    if FastEnqueue not in found or not all(kind in found for kind in wanted):
        return None
    return _Layers(
        fast=found[FastEnqueue],
        rate=found[WriteRateLimit],
        max_bytes=found[BodySizeLimit].max_bytes,
        exempt=found[JsonOnly].exempt,
    )


class FastEnqueueFront:
    """Install it outermost of our middleware (last), the six layers and FastEnqueue below."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._layers: _Layers | None | bool = False  # False: not looked for yet

    def layers(self) -> _Layers | None:
        if self._layers is False:
            self._layers = _layers_below(self.app)
        return self._layers  # type: ignore[return-value]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        layers = self.layers()
        if (
            layers is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or b"callback_url" in scope["query_string"]
        ):
            await self.app(scope, receive, send)
            return
        route = layers.fast.match(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if (
            IDEMPOTENCY_HEADER in headers
            or b"transfer-encoding" in headers
            or not length.isdigit()
            or not 0 < int(length) <= layers.max_bytes
            or not is_json(headers.get(b"content-type", b""))
            or (layers.exempt and scope["path"].startswith(layers.exempt))
        ):
            await onward(self.app, scope, receive, send)
            return
        messages = await received(receive)
        size = sum(len(message.get("body", b"")) for message in messages)
        arguments = None
        if messages[-1]["type"] == "http.request" and size <= layers.max_bytes:
            arguments = await layers.fast.arguments(scope, route, messages)
        # The token last: a request answered by the layers takes its own there.
        if arguments is None or (layers.rate.rate and not layers.rate.take()):
            await onward(self.app, scope, replaying(messages, receive), send)
            return
        status = 500
        try:
            status = await layers.fast.answer(scope, receive, send, route, arguments)
        finally:
            record_request(route.route.path, "POST", started, status)

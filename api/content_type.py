"""JSON only on the wire: a request body must say it is JSON and be JSON, before any route runs.

FastAPI alone answers a form or text body with a 422 about "a valid dictionary" (or ignores the
body of a route that takes none), and its parser accepts NaN and Infinity, which JSON does not
have: a job payload would carry them as null, and a 422 echoing them fails to encode (a 500).
Here a body with another Content-Type is a 415 and malformed JSON a 422, each `{"detail": ...}`.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import reject


def is_json(content_type: bytes) -> bool:
    """application/json, or a structured +json type (application/merge-patch+json)."""
    media = content_type.split(b";", 1)[0].strip().lower()
    kind, _, subtype = media.partition(b"/")
    return kind == b"application" and (subtype == b"json" or subtype.endswith(b"+json"))


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    return b"transfer-encoding" in headers or (length is not None and length.strip() != b"0")


class JsonOnly:
    """A request with a body: 415 unless its Content-Type is JSON, 422 unless the body parses.

    Install it inside BodySizeLimit, which bounds what this buffers. Paths under `exempt` pass
    untouched (the dashboard posts HTML forms).
    """

    def __init__(self, app: ASGIApp, *, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        if (
            scope["type"] != "http"
            or (self.exempt and scope["path"].startswith(self.exempt))
            or not _has_body(headers)
        ):
            await self.app(scope, receive, send)
            return
        content_type = headers.get(b"content-type", b"")
        if not is_json(content_type):
            given = content_type.decode("latin-1")[:100] or "none"
            await reject(
                send,
                415,
                f"request bodies must be JSON: send Content-Type: application/json (got {given!r})",
            )
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as error:
                await reject(send, 422, f"malformed JSON body: {error}")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

"""The `callback_url` query parameter of every POST: where to send the job's record, signed, at
its final state (domain/notify/callbacks.py, the `deliver_callback` job).

Read once per request by this ASGI middleware, checked (https only in production, public
addresses only unless CALLBACK_ALLOW_PRIVATE; a 422 otherwise), and handed to
`api.enqueue.submit` through a context variable, so every enqueue route honours it without
declaring it, like the Idempotency-Key header.
"""

from __future__ import annotations

from contextvars import ContextVar
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import reject
from domain.errors import InvalidInput
from domain.notify.callbacks import check_url
from domain.platform.settings import Settings

PARAMETER = "callback_url"

current_callback: ContextVar[str | None] = ContextVar("callback_url", default=None)


class CallbackUrl:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"")
        if scope["type"] != "http" or scope["method"] != "POST" or b"callback_url" not in query:
            await self.app(scope, receive, send)
            return
        urls = parse_qs(query.decode("latin-1")).get(PARAMETER, [])
        if len(urls) != 1:
            await reject(send, 422, "give callback_url once")
            return
        if not self.settings.callback_secret.get_secret_value():
            detail = "this server has no CALLBACK_SECRET configured, so it sends no callbacks"
            await reject(send, 422, detail)
            return
        try:
            # Resolves the host name: off the event loop.
            url = await run_in_threadpool(
                check_url,
                urls[0],
                https_only=self.settings.environment == "production",
                allow_private=self.settings.callback_allow_private,
            )
        except InvalidInput as error:
            await reject(send, 422, str(error))
            return
        token = current_callback.set(url)
        try:
            await self.app(scope, receive, send)
        finally:
            current_callback.reset(token)

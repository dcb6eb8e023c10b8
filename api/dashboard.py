"""dramatiq-dashboard mounted at /dashboard behind the console's login (its session cookie) or
HTTP Basic admin credentials (scripts)."""

from __future__ import annotations

import base64
import binascii
import hmac
from http.cookies import SimpleCookie
from typing import cast
from urllib.parse import quote

from a2wsgi import WSGIMiddleware
from dramatiq_dashboard import DashboardApp
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.console.session import COOKIE, Sessions
from api.deps import still_admin
from domain.platform.settings import Settings
from runtime import broker

PREFIX = "/dashboard"


class BasicAuth:
    """Admin credentials: the dashboard can requeue and delete messages."""

    def __init__(
        self, app: ASGIApp, *, user: str, password: str, sessions: Sessions | None = None
    ) -> None:
        self.app = app
        self.user = user.encode()
        self.password = password.encode()
        self.sessions = sessions

    def _session_cookie(self, scope: Scope) -> str | None:
        header = dict(scope.get("headers", [])).get(b"cookie", b"")
        morsel = SimpleCookie(header.decode("latin-1")).get(COOKIE)
        return morsel.value if morsel else None

    async def _has_session(self, scope: Scope) -> bool:
        cookie = self._session_cookie(scope)
        if not cookie or self.sessions is None:
            return False
        return await run_in_threadpool(self.sessions.find, cookie) is not None

    def _allowed(self, scope: Scope) -> bool:
        if not self.password:
            return False
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        user_ok = hmac.compare_digest(user, self.user)
        password_ok = hmac.compare_digest(password, self.password)
        return user_ok and password_ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope) or await self._has_session(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        if b"authorization" not in headers and b"text/html" in headers.get(b"accept", b""):
            # A browser: the console's login page, then back here.
            path = quote(scope["path"], safe="/")
            location = f"/console/login?next={path}".encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", location), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        body = b"admin credentials required (user DASHBOARD_USER, password ADMIN_TOKEN)"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", b'Basic realm="gaveurs dashboard"'),
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def dashboard_app(settings: Settings) -> ASGIApp:
    wsgi = cast(ASGIApp, WSGIMiddleware(DashboardApp(broker(), PREFIX)))
    return BasicAuth(
        wsgi,
        user=settings.dashboard_user,
        password=settings.admin_token.get_secret_value(),
        sessions=Sessions(broker().client, still_admin=still_admin),
    )

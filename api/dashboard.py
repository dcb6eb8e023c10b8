"""dramatiq-dashboard mounted at /dashboard behind HTTP Basic admin credentials."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import cast

from a2wsgi import WSGIMiddleware
from dramatiq_dashboard import DashboardApp
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.platform.settings import Settings
from runtime import broker

PREFIX = "/dashboard"


class BasicAuth:
    """Admin credentials: the dashboard can requeue and delete messages."""

    def __init__(self, app: ASGIApp, *, user: str, password: str) -> None:
        self.app = app
        self.user = user.encode()
        self.password = password.encode()

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
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
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
        wsgi, user=settings.dashboard_user, password=settings.admin_token.get_secret_value()
    )

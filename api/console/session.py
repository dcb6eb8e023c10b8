"""Console sessions: the admin token buys a session cookie (HttpOnly, SameSite=Strict) whose
record lives in Redis, so logout ends it everywhere; each session carries its CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis

COOKIE = "gaveurs_console"
#: The login form's own CSRF token (double submit): no session exists yet to hold one.
LOGIN_COOKIE = "gaveurs_console_login"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_MS = 8 * 3_600_000
KEY_PREFIX = "gaveurs:console:session:"


@dataclass(frozen=True)
class ConsoleSession:
    key: str
    csrf: str


def _key(cookie: str) -> str:
    # Redis holds a digest, not the cookie: reading Redis does not give a usable session.
    return KEY_PREFIX + hashlib.sha256(cookie.encode()).hexdigest()


def admin_token_matches(given: str, admin_token: str) -> bool:
    return bool(admin_token) and hmac.compare_digest(given.encode(), admin_token.encode())


class Sessions:
    """Open, find and close console sessions in Redis."""

    def __init__(self, client: redis.Redis, *, ttl_ms: int = SESSION_TTL_MS) -> None:
        self.client = client
        self.ttl_ms = ttl_ms

    def open(self) -> tuple[str, ConsoleSession]:
        """A new session: (the cookie value for the browser, the session)."""
        cookie = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        self.client.set(_key(cookie), csrf, px=self.ttl_ms)
        return cookie, ConsoleSession(key=_key(cookie), csrf=csrf)

    def find(self, cookie: str | None) -> ConsoleSession | None:
        if not cookie or len(cookie) > 100:
            return None
        csrf = self.client.get(_key(cookie))
        if csrf is None:
            return None
        return ConsoleSession(key=_key(cookie), csrf=csrf.decode())

    def close(self, session: ConsoleSession) -> None:
        self.client.delete(session.key)


def csrf_matches(session: ConsoleSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode())

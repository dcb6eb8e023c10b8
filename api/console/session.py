"""Console sessions: an admin token (ADMIN_TOKEN, or a named client holding the `admin` scope)
buys a session cookie (HttpOnly, SameSite=Strict) whose record lives in Redis, so logout ends it
everywhere; each session carries its CSRF token and who logged in. A named client's session is
checked against its client on every request (`still_admin`): revoked, rotated, expired or no
longer admin, the session ends at once."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import redis

COOKIE = "gaveurs_console"
#: The login form's own CSRF token (double submit): no session exists yet to hold one.
LOGIN_COOKIE = "gaveurs_console_login"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_MS = 8 * 3_600_000
KEY_PREFIX = "gaveurs:console:session:"


#: Who a session opened before sessions named their client (only ADMIN_TOKEN could log in).
BOOTSTRAP_ADMIN = "admin-token"


@dataclass(frozen=True)
class ConsoleSession:
    key: str
    csrf: str
    #: The client that logged in: a named client's name, or "admin-token".
    client: str = BOOTSTRAP_ADMIN
    #: The named client's token hash (None for ADMIN_TOKEN), checked on every request.
    token_hash: str | None = None


def _key(cookie: str) -> str:
    # Redis holds a digest, not the cookie: reading Redis does not give a usable session.
    return KEY_PREFIX + hashlib.sha256(cookie.encode()).hexdigest()


def admin_token_matches(given: str, admin_token: str) -> bool:
    return bool(admin_token) and hmac.compare_digest(given.encode(), admin_token.encode())


class Sessions:
    """Open, find and close console sessions in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_ms: int = SESSION_TTL_MS,
        still_admin: Callable[[str], bool] | None = None,
    ) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        #: token hash -> is that named client still active and admin (None: not checked).
        self.still_admin = still_admin

    def open(
        self, *, client: str = BOOTSTRAP_ADMIN, token_hash: str | None = None
    ) -> tuple[str, ConsoleSession]:
        """A new session: (the cookie value for the browser, the session)."""
        cookie = secrets.token_urlsafe(32)
        found = ConsoleSession(
            key=_key(cookie), csrf=secrets.token_urlsafe(32), client=client, token_hash=token_hash
        )
        record = {"csrf": found.csrf, "client": client, "token_hash": token_hash}
        self.client.set(found.key, json.dumps(record), px=self.ttl_ms)
        return cookie, found

    def find(self, cookie: str | None) -> ConsoleSession | None:
        if not cookie or len(cookie) > 100:
            return None
        raw = self.client.get(_key(cookie))
        if raw is None:
            return None
        found = _parse(_key(cookie), raw.decode())
        if found.token_hash is not None and (
            self.still_admin is None or not self.still_admin(found.token_hash)
        ):
            self.close(found)  # its client was revoked, rotated, expired or lost `admin`
            return None
        return found

    def close(self, session: ConsoleSession) -> None:
        self.client.delete(session.key)


def _parse(key: str, raw: str) -> ConsoleSession:
    if not raw.startswith("{"):
        return ConsoleSession(key=key, csrf=raw)  # a session opened by ADMIN_TOKEN before
    record = json.loads(raw)
    return ConsoleSession(
        key=key, csrf=record["csrf"], client=record["client"], token_hash=record["token_hash"]
    )


def csrf_matches(session: ConsoleSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode())

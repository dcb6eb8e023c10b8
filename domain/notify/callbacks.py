"""Result callbacks: on a job's final state the platform POSTs its record to the `callback_url`
the client gave, signed so the receiver can tell it came from us.

Signature (Stripe's scheme): header `X-Gaveurs-Signature: t=<unix seconds>,v1=<hex>` where
hex = HMAC-SHA256(CALLBACK_SECRET, "<t>.<raw body>"); `X-Gaveurs-Delivery` carries the task id,
the same on every attempt, so a receiver can ignore a repeat. A callback URL lets a caller make
the server send requests, so it is checked when accepted and again before each delivery (a name
may resolve elsewhere later): https only in production, and no loopback, private, link-local or
reserved address unless CALLBACK_ALLOW_PRIVATE.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from domain.errors import InvalidInput, ProviderRejected, ProviderUnavailable

SIGNATURE_HEADER = "X-Gaveurs-Signature"
DELIVERY_HEADER = "X-Gaveurs-Delivery"
MAX_URL_CHARS = 2000


def check_url(url: str, *, https_only: bool, allow_private: bool) -> str:
    """The URL if the platform may POST to it, else InvalidInput saying why."""
    if len(url) > MAX_URL_CHARS:
        raise InvalidInput(f"callback_url is longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    allowed = ("https",) if https_only else ("https", "http")
    if parts.scheme not in allowed:
        raise InvalidInput(f"callback_url must be an {' or '.join(allowed)} URL, not {url!r}")
    if not parts.hostname or parts.username or parts.password:
        raise InvalidInput("callback_url needs a host and no user:password part")
    if allow_private:
        return url
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(parts.hostname, port)}
    except (OSError, ValueError) as error:
        raise InvalidInput(
            f"callback_url host {parts.hostname!r} does not resolve: {error}"
        ) from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global:
            raise InvalidInput(
                f"callback_url host {parts.hostname!r} is a loopback, private or reserved "
                f"address ({ip}); the server allows only public ones (CALLBACK_ALLOW_PRIVATE)"
            )
    return url


#: The record fields a callback carries, as `GET /api/tasks/status/{id}` names them.
FIELDS = (
    "task_id", "task_name", "queue", "state", "progress", "progress_note", "attempts", "args",
    "enqueued_at", "started_at", "completed_at", "worker", "result", "error",
)  # fmt: skip


def body(record: Mapping[str, Any]) -> bytes:
    """The JSON a callback POSTs: the record's public fields, `state` as `status`, times in ISO."""
    data: dict[str, Any] = {}
    for name in FIELDS:
        value = record.get(name)
        if name.endswith("_at") and value:
            value = datetime.fromtimestamp(value / 1000, tz=UTC).isoformat()
        data["status" if name == "state" else name] = value
    return orjson.dumps(data, default=str)


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300) -> bool:
    """What a receiver does (and our tests): a fresh timestamp and a matching HMAC."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp=timestamp)
    return hmac.compare_digest(expected, f"t={timestamp},v1={fields.get('v1', '')}")


def post(url: str, body: bytes, *, secret: str, delivery_id: str, timeout_s: float) -> int:
    """POST once; ProviderUnavailable (retried) on 5xx, 408, 429 or no answer, ProviderRejected
    (dead-lettered at once) on another 4xx. Redirects are not followed (they could point
    anywhere the URL check would refuse)."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, timestamp=int(time.time())),
        DELIVERY_HEADER: delivery_id,
        "User-Agent": "gaveurs-tasks-callback/1",
    }
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as error:
        raise ProviderUnavailable(f"callback {url}: {type(error).__name__} {error}") from None
    if response.status_code < 300:
        return response.status_code
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise ProviderUnavailable(f"callback {url} answered {response.status_code}")
    raise ProviderRejected(f"callback {url} answered {response.status_code}")

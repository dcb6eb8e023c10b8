"""Masking of personal data and secrets before payloads reach job records, logs or metrics."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "authorization", "credential")
EMAIL = re.compile(r"^([^@\s]{1,64})@([^@\s]+)$")
PHONE = re.compile(r"^\+?[\d\s().-]{6,20}$")


def mask_email(value: str) -> str:
    """jean.dupont@example.org -> j***@example.org"""
    match = EMAIL.match(value.strip())
    if not match:
        return "***"
    return f"{match.group(1)[0]}***@{match.group(2)}"


def mask_phone(value: str) -> str:
    """+33612345678 -> +336******78"""
    digits = value.strip()
    if len(digits) < 6:
        return "***"
    return digits[:4] + "*" * (len(digits) - 6) + digits[-2:]


def mask_url(url: str) -> str:
    """rediss://worker:s3cret@redis:6380/0 -> rediss://worker:***@redis:6380/0, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def mask_value(value: Any) -> Any:
    if isinstance(value, str):
        if EMAIL.match(value.strip()):
            return mask_email(value)
        if PHONE.match(value.strip()) and sum(c.isdigit() for c in value) >= 8:
            return mask_phone(value)
        return "***"
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    return "***"


def redact_payload(payload: Mapping[str, Any], *, extra: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of `payload` with secrets removed and the `extra` fields masked, recursively."""
    masked = set(extra)
    out: dict[str, Any] = {}
    for name, value in payload.items():
        if _is_secret(name):
            out[name] = "***"
        elif name in masked:
            out[name] = mask_value(value)
        else:
            out[name] = _redact_nested(value, masked)
    return out


@functools.lru_cache(maxsize=1024)
def _is_secret(name: str) -> bool:
    """Decided once per field name (every enqueue redacts its payload for the record)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _redact_nested(value: Any, masked: set[str]) -> Any:
    # Lists too: a list of objects (anomalies, samples, recipients' details) can hold a secret.
    if isinstance(value, Mapping):
        return redact_payload(value, extra=masked)
    if isinstance(value, list):
        return [_redact_nested(item, masked) for item in value]
    return value

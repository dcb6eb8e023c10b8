"""Sealed payload fields: personal data a job message must carry (a phone number, an e-mail
address, a message that names a person) is encrypted before the message reaches Redis, its AOF,
its snapshots and the dead letters, and opened by the worker that runs the job.

A sealed value is `sealed:v1:<Fernet token>` (AES-128-CBC + HMAC-SHA256, from `cryptography`).
Keys rotate: `PAYLOAD_KEYS` lists Fernet keys, the first seals, every one opens, so messages sealed
before a rotation stay readable until they are gone."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "sealed:v1:"
SEALED = re.compile(r"sealed:v1:([A-Za-z0-9_=-]+)")
#: `make run`'s key when PAYLOAD_KEYS is empty: a development default, never for production.
DEVELOPMENT_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"gaveurs development payload key").digest()
).decode()


class SealError(ValueError):
    """A sealed value no configured key opens (a key removed from PAYLOAD_KEYS too early)."""


@lru_cache(maxsize=8)
def _keys(spec: str) -> MultiFernet:
    names = [key.strip() for key in (spec or DEVELOPMENT_KEY).split(",") if key.strip()]
    try:
        return MultiFernet([Fernet(key.encode()) for key in names])
    except ValueError as error:
        raise ValueError(f"PAYLOAD_KEYS: not a list of Fernet keys ({error})") from None


def check_keys(spec: str) -> None:
    """At start-up: a malformed PAYLOAD_KEYS stops the process with a message that says so."""
    _keys(spec)


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(value: str, spec: str) -> str:
    if is_sealed(value):
        return value
    return PREFIX + _keys(spec).encrypt(value.encode()).decode()


def unseal(value: Any, spec: str) -> Any:
    """The plain value of a sealed string; anything else as it is (messages sent before a field
    was sealed stay readable)."""
    if not is_sealed(value):
        return value
    try:
        return _keys(spec).decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SealError(
            "a sealed field opens with none of PAYLOAD_KEYS (sealed with a key since removed?)"
        ) from None


def unseal_deep(value: Any, spec: str) -> Any:
    """`unseal` through lists and mappings."""
    if isinstance(value, dict):
        return {name: unseal_deep(item, spec) for name, item in value.items()}
    if isinstance(value, list):
        return [unseal_deep(item, spec) for item in value]
    return unseal(value, spec)


def opened(kwargs: dict[str, Any], names: Iterable[str], spec: str) -> dict[str, Any]:
    """`kwargs` with the fields `names` opened (those a record masks, so the mask shows a hint of
    the value, `+336******78`, instead of nothing); the others stay sealed."""
    wanted = set(names)
    return {
        name: unseal_deep(value, spec) if name in wanted else value
        for name, value in kwargs.items()
    }


def open_all(text: str, spec: str) -> list[str]:
    """The plain values of the sealed strings found in `text` (a stored message body); those no
    key opens are left out."""
    values = []
    for match in SEALED.finditer(text):
        try:
            values.append(unseal(match.group(0), spec))
        except SealError:
            continue
    return values

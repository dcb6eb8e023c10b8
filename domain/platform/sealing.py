"""Sealed payload fields: personal data a job message must carry (a phone number, an e-mail
address, a message that names a person) is encrypted before the message reaches Redis, its AOF,
its snapshots and the dead letters, and opened by the worker that runs the job.

Two formats, told apart by their prefix, both opened:
- `sealed:v2:<base64url of nonce + ciphertext + tag>`, AES-256-GCM (`cryptography`'s AESGCM),
  what `seal` writes. Its key is derived (HKDF-SHA256) from each Fernet key of `PAYLOAD_KEYS`,
  and its cipher object is built once per key: a seal costs ~5 µs instead of Fernet's ~30 µs
  (a Cipher, an HMAC and two base64 passes per call), paid per sealed field on every enqueue.
- `sealed:v1:<Fernet token>` (AES-128-CBC + HMAC-SHA256), what earlier versions wrote, still
  opened (messages, dead letters and journal entries sealed before the upgrade), and written
  with `version=1` (PAYLOAD_SEAL_FORMAT=v1) while processes of an earlier version, which open
  only v1, still run (a rolling upgrade).

Keys rotate: `PAYLOAD_KEYS` lists Fernet keys, the first seals, every one opens, so messages sealed
before a rotation stay readable until they are gone."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: What every sealed value starts with, whatever its format (the journals are searched for it).
MARK = "sealed:v"
PREFIX = "sealed:v2:"
FERNET_PREFIX = "sealed:v1:"
_PREFIXES = (PREFIX, FERNET_PREFIX)
SEALED = re.compile(r"sealed:v[12]:[A-Za-z0-9_=-]+")
#: Bound to every v2 ciphertext: a value cut from another context does not open as a field.
_CONTEXT = b"gaveurs sealed field v2"
_NONCE_BYTES = 12
#: `make run`'s key when PAYLOAD_KEYS is empty: a development default, never for production.
DEVELOPMENT_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"gaveurs development payload key").digest()
).decode()


class SealError(ValueError):
    """A sealed value no configured key opens (a key removed from PAYLOAD_KEYS too early)."""


@dataclass(frozen=True)
class _Keys:
    fernet: MultiFernet
    #: One AES-GCM cipher per key, in PAYLOAD_KEYS order (the first seals).
    gcm: tuple[AESGCM, ...]


def _gcm_key(fernet_key: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CONTEXT).derive(
        base64.urlsafe_b64decode(fernet_key)
    )
    return AESGCM(derived)


@lru_cache(maxsize=8)
def _keys(spec: str) -> _Keys:
    names = [key.strip().encode() for key in (spec or DEVELOPMENT_KEY).split(",") if key.strip()]
    try:
        fernet = MultiFernet([Fernet(key) for key in names])
    except ValueError as error:
        raise ValueError(f"PAYLOAD_KEYS: not a list of Fernet keys ({error})") from None
    return _Keys(fernet, tuple(_gcm_key(key) for key in names))


def check_keys(spec: str) -> None:
    """At start-up: a malformed PAYLOAD_KEYS stops the process with a message that says so."""
    _keys(spec)


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(_PREFIXES)


def seal(value: str, spec: str, *, version: Literal[1, 2] = 2) -> str:
    if is_sealed(value):
        return value
    keys = _keys(spec)
    if version == 1:
        return FERNET_PREFIX + keys.fernet.encrypt(value.encode()).decode()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = nonce + keys.gcm[0].encrypt(nonce, value.encode(), _CONTEXT)
    return PREFIX + base64.urlsafe_b64encode(sealed).decode()


def unseal(value: Any, spec: str) -> Any:
    """The plain value of a sealed string; anything else as it is (messages sent before a field
    was sealed stay readable)."""
    if not is_sealed(value):
        return value
    keys = _keys(spec)
    try:
        if value.startswith(FERNET_PREFIX):
            return keys.fernet.decrypt(value[len(FERNET_PREFIX) :].encode()).decode()
        sealed = base64.urlsafe_b64decode(value[len(PREFIX) :])
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        for gcm in keys.gcm:
            try:
                return gcm.decrypt(nonce, ciphertext, _CONTEXT).decode()
            except InvalidTag:
                continue
    except (InvalidToken, ValueError):  # binascii.Error and a short nonce are ValueErrors
        pass
    raise SealError(
        "a sealed field opens with none of PAYLOAD_KEYS (sealed with a key since removed?)"
    )


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

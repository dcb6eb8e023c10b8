"""`Sealed`, the payload field type whose value travels encrypted (domain/platform/sealing.py):
sealed when a job's message is made (`model_dump(mode="json")`), opened when the worker, or the
API on a request body, validates the payload. Keys come from the process's settings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer

from domain.platform import sealing
from domain.platform.settings import Settings, get_settings


@functools.cache
def _runtime() -> tuple[Callable[[], Any], type[Exception]]:
    """runtime.build's `current` and NotSetUp, imported once (its imports lead back here, so not
    at the top): an import statement in `_keys` cost more than the lookup, six times an enqueue."""
    from runtime.build import current
    from runtime.errors import NotSetUp

    return current, NotSetUp


def _settings() -> Settings:
    current, not_set_up = _runtime()
    try:
        settings: Settings = current().settings
    except not_set_up:
        settings = get_settings()
    return settings


def _keys() -> str:
    return _settings().payload_keys.get_secret_value()


def _open(value: Any) -> Any:
    # The keys only for a sealed value: the fields of a request body are plain.
    return sealing.unseal(value, _keys()) if sealing.is_sealed(value) else value


#: Short values this process sealed, by their sealed form, until the record's mask asks for
#: them: JobTracking.before_enqueue opens the fields a record masks (addresses, numbers), which
#: the same enqueue sealed a moment before (an AES-GCM open, base64 and all, per field).
#: Bounded in count (emptied when full: a sealed field no record masks is never asked for) and
#: in size (a long value, an e-mail's body, is opened as before if ever asked for).
_sealed_here: dict[str, str] = {}
SEALED_HERE_MAX = 1024
SEALED_HERE_MAX_CHARS = 256


def _seal(value: str) -> str:
    settings = _settings()
    keys = settings.payload_keys.get_secret_value()
    version: Literal[1, 2] = 1 if settings.payload_seal_format == "v1" else 2
    sealed = sealing.seal(value, keys, version=version)
    if len(value) <= SEALED_HERE_MAX_CHARS:
        if len(_sealed_here) >= SEALED_HERE_MAX:
            _sealed_here.clear()
        _sealed_here[sealed] = value
    return sealed


#: A payload string that never reaches Redis in clear.
Sealed = Annotated[
    str, BeforeValidator(_open), PlainSerializer(_seal, return_type=str, when_used="json")
]


def opened_for_record(kwargs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The message's arguments with the fields a record masks opened, for the mask."""
    if _sealed_here:
        kwargs = {
            name: _sealed_here.pop(value, value) if type(value) is str and name in names else value
            for name, value in kwargs.items()
        }
    return sealing.opened(kwargs, names, _keys())

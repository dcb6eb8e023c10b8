"""`Sealed`, the payload field type whose value travels encrypted (domain/platform/sealing.py):
sealed when a job's message is made (`model_dump(mode="json")`), opened when the worker, or the
API on a request body, validates the payload. Keys come from the process's settings."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from domain.platform import sealing
from domain.platform.settings import Settings, get_settings


def _keys() -> str:
    from runtime.build import current
    from runtime.errors import NotSetUp

    try:
        settings: Settings = current().settings
    except NotSetUp:
        settings = get_settings()
    return settings.payload_keys.get_secret_value()


def _open(value: Any) -> Any:
    return sealing.unseal(value, _keys())


def _seal(value: str) -> str:
    return sealing.seal(value, _keys())


#: A payload string that never reaches Redis in clear.
Sealed = Annotated[
    str, BeforeValidator(_open), PlainSerializer(_seal, return_type=str, when_used="json")
]


def opened_for_record(kwargs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The message's arguments with the fields a record masks opened, for the mask."""
    return sealing.opened(kwargs, names, _keys())

"""Every payload field declared Sealed leaves the process sealed: a constraint that rebuilds the
field's schema (pydantic drops the serializer under `Field(pattern=...)`) would let the value
travel in clear through Redis, the dead letters and the journals without any error."""

from __future__ import annotations

import json
import typing

import actors  # noqa: F401  (registers every job)
from domain.platform import sealing
from runtime import REGISTRY

PLAIN = "jean.temoin@example.org"


def _sealed_fields() -> list[tuple[str, str, bool]]:
    found = []
    for job in REGISTRY.values():
        for name, field in job.payload.model_fields.items():
            if "_seal" in repr(field.metadata) + repr(field.annotation):
                is_list = typing.get_origin(field.annotation) is list
                found.append((job.name, name, is_list))
    return found


def test_every_sealed_field_is_sealed_when_the_message_is_made() -> None:
    fields = _sealed_fields()
    assert ("send_email", "to_email", False) in fields
    assert ("send_bulk_email", "recipients", True) in fields
    leaks = []
    for job_name, name, is_list in fields:
        model = REGISTRY[job_name].payload
        payload = model.model_construct(**{name: [PLAIN] if is_list else PLAIN})
        dumped = json.dumps(payload.model_dump(mode="json", include={name}))
        if PLAIN in dumped or sealing.PREFIX not in dumped:
            leaks.append(f"{job_name}.{name}")
    assert not leaks, f"sent in clear: {leaks}"

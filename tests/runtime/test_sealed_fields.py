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


def test_a_field_sealed_here_is_masked_from_its_plain_value_and_not_kept() -> None:
    from actors.notifications import SendEmail
    from runtime import sealing as runtime_sealing
    from runtime.sealing import opened_for_record

    # Given a message made here: its fields sealed by this process
    kwargs = SendEmail(to_email=PLAIN, subject="Lot 3472", body_html="<p>x</p>").model_dump(
        mode="json"
    )
    assert sealing.is_sealed(kwargs["to_email"]) and sealing.is_sealed(kwargs["subject"])
    assert kwargs["to_email"] in runtime_sealing._sealed_here
    # And a field sealed elsewhere (another process, another request), opened with the keys
    elsewhere = sealing.seal("other@example.org", runtime_sealing._keys())
    # When the record's mask asks for the fields it masks
    opened = opened_for_record({**kwargs, "cc": elsewhere}, ("to_email", "cc"))
    # Then they are the plain values, the others stay sealed, and the masked one is let go
    assert opened["to_email"] == PLAIN and opened["cc"] == "other@example.org"
    assert opened["subject"] == kwargs["subject"]
    assert kwargs["to_email"] not in runtime_sealing._sealed_here


def test_the_values_sealed_here_are_bounded() -> None:
    from actors.notifications import SendEmail
    from runtime import sealing as runtime_sealing

    for number in range(runtime_sealing.SEALED_HERE_MAX + 10):
        SendEmail(to_email=PLAIN, subject=f"s{number}", body_html="b").model_dump(mode="json")
    assert len(runtime_sealing._sealed_here) <= runtime_sealing.SEALED_HERE_MAX
    # and a long value (an e-mail's body) is not kept at all
    long = "<p>" + "x" * runtime_sealing.SEALED_HERE_MAX_CHARS + "</p>"
    sealed = SendEmail(to_email=PLAIN, subject="s", body_html=long).model_dump(mode="json")
    assert sealed["body_html"] not in runtime_sealing._sealed_here
    assert sealed["subject"] in runtime_sealing._sealed_here

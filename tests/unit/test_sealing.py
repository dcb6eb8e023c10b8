"""Sealed payload fields (domain/platform/sealing.py, runtime.Sealed): encrypted in the message,
opened by the worker, readable across a key rotation, and still found by the erasure's check for
unfinished jobs about a person."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from actors.notifications import BulkEmail, SendSms, send_sms
from domain import gdpr
from domain.models import JournalEntry
from domain.platform import sealing
from domain.platform.redact import redact_payload
from runtime import current

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_a_sealed_value_opens_after_a_key_rotation_and_not_with_a_foreign_key() -> None:
    sealed = sealing.seal("+33612345678", OLD)
    assert sealed.startswith(sealing.PREFIX) and "33612345678" not in sealed
    # The new key first (it seals from now on), the old one kept: old messages still open
    assert sealing.unseal(sealed, f"{NEW},{OLD}") == "+33612345678"
    assert sealing.unseal(sealing.seal("x", f"{NEW},{OLD}"), NEW) == "x"
    with pytest.raises(sealing.SealError, match="PAYLOAD_KEYS"):
        sealing.unseal(sealed, NEW)
    # A value sent before its field was sealed stays readable; sealing twice is once
    assert sealing.unseal("+33612345678", NEW) == "+33612345678"
    assert sealing.seal(sealed, OLD) == sealed


def test_fernet_tokens_sealed_before_the_upgrade_still_open_across_a_rotation() -> None:
    # Given a value sealed as earlier versions did: a Fernet token, made here by Fernet itself
    before = sealing.FERNET_PREFIX + Fernet(OLD.encode()).encrypt(b"+33612345678").decode()
    # Then it opens with the old key anywhere in the list, and with no other
    assert sealing.unseal(before, OLD) == "+33612345678"
    assert sealing.unseal(before, f"{NEW},{OLD}") == "+33612345678"
    with pytest.raises(sealing.SealError, match="PAYLOAD_KEYS"):
        sealing.unseal(before, NEW)
    # And PAYLOAD_SEAL_FORMAT=v1 (a rolling upgrade) still writes that format
    written = sealing.seal("+33612345678", f"{NEW},{OLD}", version=1)
    assert written.startswith(sealing.FERNET_PREFIX) and sealing.unseal(written, NEW) == (
        "+33612345678"
    )
    assert sealing.open_all(f'{{"a": "{before}", "b": "{written}"}}', f"{NEW},{OLD}") == [
        "+33612345678",
        "+33612345678",
    ]


def test_a_v2_seal_is_fresh_each_time_and_refuses_tampering() -> None:
    first, second = sealing.seal("Jean Dupont", NEW), sealing.seal("Jean Dupont", NEW)
    assert first != second and sealing.unseal(first, NEW) == sealing.unseal(second, NEW)
    raw = bytearray(base64.urlsafe_b64decode(first[len(sealing.PREFIX) :]))
    raw[-1] ^= 1  # one bit of the tag
    tampered = sealing.PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode()
    for broken in (tampered, sealing.PREFIX + "AAAA", sealing.PREFIX + "not*base64"):
        with pytest.raises(sealing.SealError, match="PAYLOAD_KEYS"):
            sealing.unseal(broken, NEW)
    # A v2 value is not a Fernet token under another name: each prefix opens its own format
    with pytest.raises(sealing.SealError):
        sealing.unseal(sealing.FERNET_PREFIX + first[len(sealing.PREFIX) :], NEW)


def test_the_seal_format_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting, prefix in (("v1", sealing.FERNET_PREFIX), ("v2", sealing.PREFIX)):
        # The process's settings, as runtime.setup was given them
        monkeypatch.setattr(current().settings, "payload_seal_format", setting)
        kwargs = send_sms.message(SendSms(phone="+33612345678", message="x")).kwargs
        assert kwargs["phone"].startswith(prefix), setting
        assert SendSms.model_validate(kwargs).phone == "+33612345678"


def test_malformed_keys_are_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="PAYLOAD_KEYS: not a list of Fernet keys"):
        sealing.check_keys("not-a-key")


def test_a_job_message_carries_sealed_fields_the_worker_opens() -> None:
    payload = SendSms(phone="+33612345678", message="Bonjour Jean Dupont")
    kwargs = send_sms.message(payload).kwargs
    assert sealing.is_sealed(kwargs["phone"]) and sealing.is_sealed(kwargs["message"])
    assert kwargs["priority"] == "normal"  # what is not personal stays readable
    # The worker validates the message's arguments: plain values again, constraints checked
    assert SendSms.model_validate(kwargs) == payload
    bulk = BulkEmail(recipients=["a@example.org"], subject="s", body_html="<p>b</p>")
    assert BulkEmail.model_validate(bulk.model_dump(mode="json")) == bulk
    # Constraints apply to the opened value: a bad address is still refused
    bad = bulk.model_dump(mode="json") | {"recipients": [sealing.seal("not-an-address", "")]}
    with pytest.raises(ValidationError, match="pattern"):
        BulkEmail.model_validate(bad)


def test_a_record_masks_the_opened_value() -> None:
    kwargs = send_sms.message(SendSms(phone="+33612345678", message="x")).kwargs
    # What the record middleware does, with the tests' keys (none set: the development key)
    args = redact_payload(sealing.opened(kwargs, ("phone",), ""), extra=("phone",))
    assert args["phone"] == "+336******78"
    assert sealing.is_sealed(args["message"])  # not masked, so left sealed


def test_the_erasure_sees_a_person_in_a_sealed_unfinished_message(
    unit_fresh_demo: Callable[..., Engine],
) -> None:
    engine = unit_fresh_demo()
    message = send_sms.message(SendSms(phone="+33612345678", message="Bonjour"))
    with Session(engine) as session, session.begin():
        session.add(
            JournalEntry(
                task_id=message.message_id,
                actor="send_sms",
                queue="notifications",
                body=message.encode().decode(),
                accepted_at=datetime.now(UTC),
            )
        )
    person = gdpr.Person(phones={"+33612345678"})
    with Session(engine) as session:
        assert gdpr.busy(session, person) == [message.message_id]
        assert gdpr.busy(session, gdpr.Person(phones={"+33699999999"})) == []

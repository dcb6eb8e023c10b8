"""Notifications: channels, templates, outbox. Delivery is exactly-once per idempotency key.

`deliver_email` / `deliver_sms` record the notification in the outbox *before* sending, skip it
when the outbox already says sent, and after an attempt that ended in doubt (a timeout: the
provider may have delivered) ask the SMS provider's Messages list before sending again; the send
itself carries the key as the provider's idempotency token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from sqlalchemy.orm import Session

from domain.errors import ProviderRejected, ProviderUnavailable
from domain.models import Channel, OutboxStatus
from domain.notify import outbox
from domain.notify.channels import (
    Channels,
    Email,
    Sms,
    channels_for,
    check_backend,
    providers_reachable,
)
from domain.notify.outbox import idempotency_key
from domain.notify.phone import to_e164
from domain.platform import audit

T = TypeVar("T")
#: The processing a delivery is and whose data it touches, for the audit trail.
Audited = tuple[audit.Processing, list[audit.Subject]]

__all__ = [
    "Audited",
    "Channels",
    "Delivery",
    "Email",
    "Sms",
    "channels_for",
    "check_backend",
    "deliver_email",
    "deliver_emails",
    "deliver_sms",
    "idempotency_key",
    "providers_reachable",
    "to_e164",
]


@dataclass(frozen=True)
class Delivery:
    key: str
    channel: str
    provider_message_id: str | None
    already_sent: bool
    attempts: int


def _send(session: Session, key: str, attempt: Callable[[], T]) -> T:
    try:
        return attempt()
    except ProviderRejected as error:
        outbox.mark_failed(session, key, error=str(error), final=True)
        raise
    except ProviderUnavailable as error:
        outbox.mark_failed(session, key, error=str(error), final=False)
        raise


def _audited(session: Session, audited: Audited | None) -> None:
    """The audit rows of a delivery, in the transaction that marks it sent (exactly once)."""
    if audited is not None:
        audit.record(session, *audited)


def deliver_email(
    session: Session, channels: Channels, email: Email, *, key: str, audited: Audited | None = None
) -> Delivery:
    audits = None if audited is None else (lambda _email, _key: audited)
    (outcome,) = deliver_emails(session, channels, [(email, key)], audits=audits)
    if isinstance(outcome, ProviderRejected):
        raise outcome
    return outcome


def deliver_emails(
    session: Session,
    channels: Channels,
    emails: Sequence[tuple[Email, str]],
    *,
    pace: Callable[[], None] = lambda: None,
    audits: Callable[[Email, str], Audited | None] | None = None,
) -> list[Delivery | ProviderRejected]:
    """Several e-mails (each with its key) in one provider session: those the outbox says sent
    are skipped, a rejected one is recorded and the others go on; a provider outage stops the
    batch (ProviderUnavailable: its retry sends what was not sent). `pace` runs before each send
    (the provider's rate limit); `audits` gives each e-mail's audit rows, written with its
    `sent` mark. One outcome per e-mail, in order."""
    outcomes: list[Delivery | ProviderRejected | None] = []
    pending: list[tuple[int, Email, str, int]] = []
    for email, key in emails:
        entry = outbox.record(
            session,
            key=key,
            channel=Channel.EMAIL.value,
            recipient=email.to,
            subject=email.subject,
            body=email.html,
        )
        if entry.status == OutboxStatus.SENT.value:
            outcomes.append(
                Delivery(key, entry.channel, entry.provider_message_id, True, entry.attempts)
            )
        else:
            pending.append((len(outcomes), email, key, entry.attempts))
            outcomes.append(None)
    if pending:
        with channels.email_session() as send:
            for position, email, key, attempts in pending:
                pace()
                try:
                    message_id = _send(session, key, partial(send, email, key))
                except ProviderRejected as rejected:
                    outcomes[position] = rejected
                    continue
                _audited(session, audits(email, key) if audits else None)
                outbox.mark_sent(session, key, provider_message_id=message_id)
                outcomes[position] = Delivery(key, Channel.EMAIL.value, message_id, False, attempts)
    return [outcome for outcome in outcomes if outcome is not None]


def deliver_sms(
    session: Session,
    channels: Channels,
    sms: Sms,
    *,
    key: str,
    region: str = "FR",
    audited: Audited | None = None,
) -> Delivery:
    sms = Sms(to=to_e164(sms.to, region=region), body=sms.body)
    entry = outbox.record(
        session, key=key, channel=Channel.SMS.value, recipient=sms.to, subject=None, body=sms.body
    )
    if entry.status == OutboxStatus.SENT.value:
        return Delivery(key, entry.channel, entry.provider_message_id, True, entry.attempts)
    since = entry.created_at
    if entry.attempts > 1 and since is not None:
        # An earlier attempt may have reached the provider and timed out on our side.
        found = _send(session, key, lambda: channels.find_sms(sms, since=since))
        if found:
            _audited(session, audited)
            outbox.mark_sent(session, key, provider_message_id=found)
            return Delivery(key, entry.channel, found, True, entry.attempts)
    sid = _send(session, key, lambda: channels.send_sms(sms, key=key))
    _audited(session, audited)
    outbox.mark_sent(session, key, provider_message_id=sid)
    return Delivery(key, entry.channel, sid, False, entry.attempts)

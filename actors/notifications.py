"""Notification jobs on queues `notifications` (bulk, routine) and `notifications_urgent`.

Composite jobs (anomaly alert, lot completion, daily summary, bulk e-mail) render their messages
and fan out one per recipient, each carrying an idempotency key derived from what the
notification is, so a re-run or retry never notifies anyone twice: routine e-mails as items of
`send_email_batch` (one SMTP session per batch window), urgent e-mails and SMS as one job each.
Urgent SMS and critical alerts run on `notifications_urgent` (Procfile `worker_urgent`), which
bulk mail never fills. Anomaly alert payload (sent by ML detection and SQAL ingest by name):
{"site_code", "severity": "warning"|"critical", "title", "anomalies": [{kind, ref, score,
description}, ...]} with at most 100 anomalies.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field

from domain import notify
from domain.bounds import RowId, SiteCode
from domain.errors import InvalidInput
from domain.notify import Email, Sms, callbacks, idempotency_key, messages
from domain.platform import audit
from domain.platform.db import session_factory
from domain.platform.redact import mask_email, mask_phone
from domain.platform.settings import Settings
from runtime import (
    Batch,
    CircuitBreaker,
    Job,
    Payload,
    RetryPolicy,
    Sealed,
    audit_key,
    audit_processing,
    broker,
    current_settings,
    current_task_id,
    engine,
    job,
    on_setup,
    progress,
    rate_limited,
    records,
)

log = logging.getLogger(__name__)


@on_setup
def _check_mail_backend(settings: Settings) -> None:
    """Refuse to start a worker or the API that would write production mail to disk."""
    notify.check_backend(settings)


def _doubling(*, max_retries: int, min_backoff_ms: int) -> RetryPolicy:
    """Backoff from `min_backoff_ms`, doubling up to 10 min."""
    return RetryPolicy(
        max_retries=max_retries,
        min_backoff_ms=min_backoff_ms,
        max_backoff_ms=max(min_backoff_ms, 600_000),
    )


def notify_retry(settings: Settings) -> RetryPolicy:
    """Notifications retry as configured (NOTIFY_MAX_RETRIES, NOTIFY_RETRY_MIN_BACKOFF_MS)."""
    return _doubling(
        max_retries=settings.notify_max_retries,
        min_backoff_ms=settings.notify_retry_min_backoff_ms,
    )


MAX_RECIPIENTS = 10_000
#: Why a notification processes its recipient's address or number (the audit trail's purpose).
NOTIFY_PURPOSE = "notification"
#: E-mails per SMTP session of a batch: a provider may cap the messages of one connection.
EMAIL_BATCH_MAX = 100
#: Checked when enqueued, so a bad address never reaches a worker (or a dead letter) unmasked.
#: Sealed: encrypted in the message (Redis, its files, dead letters), opened by the worker.
ADDRESS_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _is_address(value: str) -> str:
    if not re.match(ADDRESS_PATTERN, value):
        raise ValueError(f"not an e-mail address (it must match the pattern {ADDRESS_PATTERN})")
    return value


# The pattern is checked by a validator, not Field(pattern=...): pydantic rebuilds a pattern-
# constrained string's schema without Sealed's serializer, and the address travelled in clear
# (in Redis and the journals; tests/integration/test_notifications.py's scan found it).
Address = Annotated[
    Sealed,
    AfterValidator(_is_address),
    Field(max_length=255, json_schema_extra={"pattern": ADDRESS_PATTERN}),
]


class SendEmail(Payload):
    to_email: Address
    subject: Sealed = Field(min_length=1, max_length=200)
    body_html: Sealed = Field(min_length=1, max_length=200_000)
    # Set by fan-out jobs: the body is a full rendered document and the key names the notification.
    rendered: bool = False
    key: str | None = Field(default=None, max_length=64)


class SendSms(Payload):
    phone: Sealed = Field(min_length=4, max_length=32)
    message: Sealed = Field(min_length=1, max_length=1600)
    priority: Literal["low", "normal", "high", "critical"] = "normal"
    key: str | None = Field(default=None, max_length=64)


class Anomaly(Payload):
    kind: str = Field(min_length=1, max_length=64)
    ref: str = Field(min_length=1, max_length=64)
    score: float = Field(ge=-1e9, le=1e9)
    description: str = Field(max_length=500)


class AnomalyAlert(Payload):
    site_code: SiteCode
    severity: Literal["warning", "critical"]
    title: str = Field(min_length=1, max_length=200)
    anomalies: list[Anomaly] = Field(min_length=1, max_length=100)


class LotCompletion(Payload):
    lot_id: RowId


class DailySummary(Payload):
    day: date | None = None


class FeedbackAck(Payload):
    feedback_id: RowId


class BulkEmail(Payload):
    recipients: list[Address] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    subject: Sealed = Field(min_length=1, max_length=200)
    body_html: Sealed = Field(min_length=1, max_length=200_000)


def _breaker(provider: str) -> CircuitBreaker:
    settings = current_settings()
    return CircuitBreaker(
        broker().client,
        provider,
        threshold=settings.breaker_failure_threshold,
        open_s=settings.breaker_open_s,
    )


def _own_key(kind: str) -> str:
    return idempotency_key(kind, current_task_id() or "")


def _audited(
    key: str, subject: audit.Subject, *, purpose: str, also: tuple[audit.Subject, ...] = ()
) -> notify.Audited:
    """The audit rows of a delivery: written with its `sent` mark, under its outbox key."""
    return audit_processing(purpose=purpose, key=key), [subject, *also]


def deliver_email(
    email: Email,
    *,
    key: str,
    purpose: str = NOTIFY_PURPOSE,
    subjects: tuple[audit.Subject, ...] = (),
) -> dict[str, Any]:
    settings = current_settings()
    channels = notify.channels_for(settings)
    audited = _audited(key, audit.email(email.to, key=audit_key()), purpose=purpose, also=subjects)
    with session_factory(engine())() as session:
        with rate_limited(broker().client, "smtp", per_second=settings.email_rate_per_second):
            done = _breaker("smtp").call(
                lambda: notify.deliver_email(session, channels, email, key=key, audited=audited)
            )
    log.info("email %s to %s (key %s)", done.provider_message_id, mask_email(email.to), key)
    return {
        "status": "already_sent" if done.already_sent else "sent",
        "channel": "email",
        "to": mask_email(email.to),
        "key": key,
    }


def deliver_sms(sms: Sms, *, key: str) -> dict[str, Any]:
    settings = current_settings()
    channels = notify.channels_for(settings)
    region = settings.sms_default_region
    subject = audit.phone(sms.to, key=audit_key(), region=region)
    audited = _audited(key, subject, purpose=NOTIFY_PURPOSE)
    with session_factory(engine())() as session:
        with rate_limited(broker().client, "sms", per_second=settings.sms_rate_per_second):
            done = _breaker("sms").call(
                lambda: notify.deliver_sms(
                    session, channels, sms, key=key, region=region, audited=audited
                )
            )
    log.info("sms %s to %s (key %s)", done.provider_message_id, mask_phone(sms.to), key)
    return {
        "status": "already_sent" if done.already_sent else "sent",
        "channel": "sms",
        "to": mask_phone(sms.to),
        "provider_message_id": done.provider_message_id,
        "key": key,
    }


def _email_of(payload: SendEmail) -> Email:
    if payload.rendered:
        return messages.as_email(
            to=payload.to_email, subject=payload.subject, html=payload.body_html
        )
    return messages.plain_email(
        to=payload.to_email, subject=payload.subject, body_html=payload.body_html
    )


def _email_job(payload: SendEmail) -> dict[str, Any]:
    """One e-mail (multipart HTML + text) through the outbox."""
    return deliver_email(_email_of(payload), key=payload.key or _own_key("email"))


def _sms_job(payload: SendSms) -> dict[str, Any]:
    """One SMS, normalised to E.164, through the outbox."""
    sms = Sms(to=payload.phone, body=payload.message)
    return deliver_sms(sms, key=payload.key or _own_key("sms"))


EMAIL_OPTIONS: dict[str, Any] = {
    "payload": SendEmail,
    "retry": notify_retry,
    "time_limit_ms": 120_000,
    "redact": ("to_email",),
}
SMS_OPTIONS: dict[str, Any] = {
    "payload": SendSms,
    "retry": notify_retry,
    "time_limit_ms": 60_000,
    "redact": ("phone",),
}
send_email = job(queue="notifications", actor_name="send_email", **EMAIL_OPTIONS)(_email_job)
send_urgent_email = job(
    queue="notifications_urgent",
    actor_name="send_urgent_email",
    priority_class="critical",
    **EMAIL_OPTIONS,
)(_email_job)
send_sms = job(queue="notifications", actor_name="send_sms", **SMS_OPTIONS)(_sms_job)
send_urgent_sms = job(
    queue="notifications_urgent",
    actor_name="send_urgent_sms",
    priority_class="critical",
    **SMS_OPTIONS,
)(_sms_job)


class EmailBatch(Payload):
    """The e-mails requested within the batch window, filled by the runtime when the run starts
    (runtime/middleware/batching.py)."""

    emails: list[SendEmail] = Field(default_factory=list, max_length=MAX_RECIPIENTS)


def _pace() -> None:
    """Wait for a slot of the SMTP provider's rate (one per message, batched or not)."""
    settings = current_settings()
    with rate_limited(broker().client, "smtp", per_second=settings.email_rate_per_second):
        pass


@job(
    queue="notifications",
    payload=EmailBatch,
    retry=notify_retry,
    time_limit_ms=600_000,
    redact=("emails",),
    batch=Batch(
        field="emails",
        window_ms=lambda settings: settings.email_batch_window_ms,
        max_items=EMAIL_BATCH_MAX,
    ),
)
def send_email_batch(payload: EmailBatch) -> dict[str, Any]:
    """The routine e-mails requested within EMAIL_BATCH_WINDOW_MS, in one SMTP session (SMTP's
    batch: many messages per connection); each goes out once by its idempotency key."""
    emails = [
        (_email_of(item), item.key or idempotency_key(_own_key("email-batch"), position))
        for position, item in enumerate(payload.emails)
    ]
    secret = audit_key()

    def audited(email: Email, key: str) -> notify.Audited:
        return _audited(key, audit.email(email.to, key=secret), purpose=NOTIFY_PURPOSE)

    with session_factory(engine())() as session:
        outcomes = _breaker("smtp").call(
            lambda: notify.deliver_emails(session, notify.channels_for(current_settings()),
                                          emails, pace=_pace, audits=audited)
        )  # fmt: skip
    sent = [o for o in outcomes if isinstance(o, notify.Delivery)]
    rejected = [str(o) for o in outcomes if not isinstance(o, notify.Delivery)]
    log.info("email batch: %d sent, %d rejected in one session", len(sent), len(rejected))
    return {
        "status": "success",
        "channel": "email",
        "emails": len(emails),
        "sent": sum(not d.already_sent for d in sent),
        "already_sent": sum(d.already_sent for d in sent),
        "rejected": rejected,
    }


def sms_job_for(priority: str) -> Job[SendSms]:
    """high/critical SMS never wait behind bulk mail."""
    return send_urgent_sms if priority in ("high", "critical") else send_sms


def _fan_out_emails(emails: list[Email], *, keys: list[str], urgent: bool = False) -> int:
    """Routine e-mails join the SMTP batch of the window; urgent ones never wait for it."""
    for email, key in zip(emails, keys, strict=True):
        item = SendEmail(
            to_email=email.to, subject=email.subject, body_html=email.html, rendered=True, key=key
        )
        if urgent:
            send_urgent_email.send(item)
        else:
            send_email_batch.add(item)
    return len(emails)


@job(
    priority_class="critical",
    queue="notifications_urgent",
    payload=AnomalyAlert,
    retry=notify_retry,
    time_limit_ms=120_000,
)
def send_anomaly_alert(payload: AnomalyAlert) -> dict[str, Any]:
    """E-mail the site's gaveurs and manager; SMS them too when critical."""
    with session_factory(engine())() as session:
        emails, sms = messages.anomaly_alert(
            session,
            site_code=payload.site_code,
            severity=payload.severity,
            title=payload.title,
            anomalies=[a.model_dump() for a in payload.anomalies],
        )
    parent = _own_key("anomaly-alert")
    critical = payload.severity == "critical"
    sent = _fan_out_emails(
        emails, keys=[idempotency_key(parent, "email", e.to) for e in emails], urgent=critical
    )
    for text in sms:
        send_urgent_sms.send(
            SendSms(
                phone=text.to,
                message=text.body,
                priority="critical",
                key=idempotency_key(parent, "sms", text.to),
            )
        )
    progress(100, "alert fanned out")
    return {"status": "success", "site_code": payload.site_code, "emails": sent, "sms": len(sms)}


@job(
    queue="notifications",
    payload=LotCompletion,
    retry=notify_retry,
    unique="lot-completion-{lot_id}",
)
def send_lot_completion(payload: LotCompletion) -> dict[str, Any]:
    """The lot's results to its gaveur and the site manager (once per lot and address)."""
    with session_factory(engine())() as session:
        emails = messages.lot_completion(session, payload.lot_id)
    keys = [idempotency_key("lot-completion", payload.lot_id, e.to) for e in emails]
    return {
        "status": "success",
        "lot_id": payload.lot_id,
        "emails": _fan_out_emails(emails, keys=keys),
    }


@job(queue="notifications", payload=DailySummary, retry=notify_retry, unique="daily-summary-{day}")
def send_daily_summary_reports(payload: DailySummary) -> dict[str, Any]:
    """One e-mail per site manager with the day's figures (default: today, Europe/Paris)."""
    day = payload.day or datetime.now(ZoneInfo("Europe/Paris")).date()
    with session_factory(engine())() as session:
        emails = messages.daily_summaries(session, day)
    keys = [idempotency_key("daily-summary", day.isoformat(), e.to) for e in emails]
    return {
        "status": "success",
        "day": day.isoformat(),
        "emails": _fan_out_emails(emails, keys=keys),
    }


@job(
    queue="notifications",
    payload=FeedbackAck,
    retry=notify_retry,
    unique="feedback-ack-{feedback_id}",
)
def send_feedback_ack(payload: FeedbackAck) -> dict[str, Any]:
    """Thanks the consumer who left the feedback (once per feedback)."""
    with session_factory(engine())() as session:
        email = messages.feedback_ack(session, payload.feedback_id)
    return deliver_email(
        email,
        key=idempotency_key("feedback-ack", payload.feedback_id),
        purpose="feedback acknowledgement",
        subjects=(audit.feedback(payload.feedback_id),),
    )


@job(queue="notifications", payload=BulkEmail, retry=notify_retry, redact=("recipients",))
def send_bulk_email(payload: BulkEmail) -> dict[str, Any]:
    """Fans out to one `send_email` job per distinct recipient."""
    parent = _own_key("bulk-email")
    recipients = list(dict.fromkeys(r.strip() for r in payload.recipients))
    for done, to in enumerate(recipients, start=1):
        send_email_batch.add(
            SendEmail(
                to_email=to,
                subject=payload.subject,
                body_html=payload.body_html,
                key=idempotency_key(parent, to),
            )
        )
        if done % 500 == 0:
            progress(100 * done / len(recipients), f"{done} queued")
    return {"status": "success", "emails": len(recipients)}


class Callback(Payload):
    task_id: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=2000)


def callback_retry(settings: Settings) -> RetryPolicy:
    """CALLBACK_MAX_RETRIES retries from CALLBACK_MIN_BACKOFF_MS, doubling (max 10 min)."""
    return _doubling(
        max_retries=settings.callback_max_retries,
        min_backoff_ms=settings.callback_min_backoff_ms,
    )


#: The job's record may still be settling (its end is written with its ack) when this runs.
FINAL_WAIT_S = 2.0
DELIVERED_PREFIX = "gaveurs:callbacks:delivered:"


@job(
    queue="notifications",
    payload=Callback,
    retry=callback_retry,
    unique="{task_id}",
    redact=("url",),
    time_limit_ms=120_000,
)
def deliver_callback(payload: Callback) -> dict[str, Any]:
    """POST a finished job's record to its callback_url, signed (runtime/middleware/callbacks.py
    enqueues this at the job's final state)."""
    settings = current_settings()
    client = broker().client
    done_key = DELIVERED_PREFIX + payload.task_id
    if client.exists(done_key):  # a redelivery after the receiver already took it
        return {"status": "success", "already_delivered": True}
    record = records().get(payload.task_id)
    deadline = time.monotonic() + FINAL_WAIT_S
    while record is not None and record.active and time.monotonic() < deadline:
        time.sleep(0.05)
        record = records().get(payload.task_id)
    if record is None:
        raise InvalidInput(f"job {payload.task_id} has no record any more; nothing to send")
    https_only = settings.environment == "production"
    url = callbacks.check_url(
        payload.url, https_only=https_only, allow_private=settings.callback_allow_private
    )
    code = callbacks.post(
        url,
        callbacks.body(dataclasses.asdict(record)),
        secret=settings.callback_secret.get_secret_value(),
        delivery_id=payload.task_id,
        timeout_s=settings.callback_timeout_s,
    )
    client.set(done_key, "1", ex=settings.job_retention_s)
    return {"status": "success", "answered": code, "state": record.state.value}

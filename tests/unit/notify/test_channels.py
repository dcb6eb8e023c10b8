"""Channels, phone numbers, templates and the outbox against real SMTP, HTTP and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from domain import notify
from domain.errors import InvalidInput, NotFound, ProviderRejected, ProviderUnavailable
from domain.models import NotificationOutbox, Site
from domain.notify import Email, Sms, messages, outbox
from domain.notify.channels import LiveChannels
from domain.platform import db
from domain.platform.settings import Settings
from tests.support.notify import SmsProvider, SmtpServer


@pytest.fixture()
def live(smtp: SmtpServer, provider: SmsProvider) -> LiveChannels:
    provider.mode = "ok"
    settings = Settings(
        notify_backend="live",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        sms_base_url=provider.url,
        sms_account_sid=provider.sid,
        sms_auth_token=SecretStr(provider.token),
        sms_timeout_s=0.5,
    )
    return LiveChannels(settings)


@pytest.fixture()
def session(unit_small_demo: tuple[Engine, object]) -> Iterator[Session]:
    with db.session_factory(unit_small_demo[0])() as session:
        yield session
        session.query(NotificationOutbox).delete()
        session.commit()


def test_phone_numbers_are_normalised_to_e164_or_refused() -> None:
    assert notify.to_e164("06 12 34 56 78") == "+33612345678"
    assert notify.to_e164("+33 6 12 34 56 78") == "+33612345678"
    with pytest.raises(InvalidInput, match=r"invalid phone number \*\*\*: not a valid number"):
        notify.to_e164("12345")


def test_production_refuses_the_file_backend() -> None:
    with pytest.raises(RuntimeError, match="NOTIFY_BACKEND=file is refused"):
        notify.check_backend(Settings(environment="production", notify_backend="file"))
    notify.check_backend(Settings(environment="production", notify_backend="live"))


def test_app_env_is_read_as_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    assert Settings().environment == "production"


def test_email_reaches_smtp_as_multipart_html_and_text(
    live: LiveChannels, smtp: SmtpServer
) -> None:
    email = messages.plain_email(
        to="a@example.org", subject="Essai", body_html="<p>Bonjour &amp; merci</p>"
    )
    message_id = live.send_email(email, key="k-email-1")
    received = smtp.to("a@example.org")[-1]
    assert received["Message-ID"] == message_id and "k-email-1" in message_id
    parts = {
        p.get_content_type(): bytes(p.get_payload(decode=True)).decode()
        for p in received.walk()
        if not p.is_multipart()
    }
    assert "Bonjour & merci" in parts["text/plain"]
    assert "<p>Bonjour &amp; merci</p>" in parts["text/html"]


def test_sms_reasons_are_classified(live: LiveChannels, provider: SmsProvider) -> None:
    sms = Sms(to="+33612345678", body="test")
    provider.mode = "400"
    with pytest.raises(ProviderRejected, match=r"21211 .*\+336\*+78 is not valid") as rejected:
        live.send_sms(sms, key="k1")
    assert "+33612345678" not in str(rejected.value)
    for mode in ("503", "429", "down", "slow"):
        provider.mode = mode
        with pytest.raises(ProviderUnavailable):
            live.send_sms(sms, key=f"k-{mode}")


def test_a_repeated_idempotency_token_sends_once(live: LiveChannels, provider: SmsProvider) -> None:
    sms = Sms(to="+33611111111", body="une fois")
    first = live.send_sms(sms, key="same-key")
    second = live.send_sms(sms, key="same-key")
    assert first == second and len(provider.deliveries_to(sms.to)) == 1


def test_delivery_after_a_timeout_that_delivered_does_not_send_twice(
    live: LiveChannels, provider: SmsProvider, session: Session
) -> None:
    sms = Sms(to="+33622222222", body="retard")
    provider.mode = "slow"
    with pytest.raises(ProviderUnavailable):
        notify.deliver_sms(session, live, sms, key="slow-1")
    provider.mode = "ok"
    done = notify.deliver_sms(session, live, sms, key="slow-1")
    again = notify.deliver_sms(session, live, sms, key="slow-1")
    assert len(provider.deliveries_to(sms.to)) == 1
    assert done.already_sent and again.already_sent and done.attempts == 2
    row = session.scalars(
        select(NotificationOutbox).where(NotificationOutbox.idempotency_key == "slow-1")
    ).one()
    assert (
        row.status == "sent" and row.provider_message_id == provider.deliveries_to(sms.to)[0]["sid"]
    )


def test_rejected_delivery_is_recorded_failed_with_reason(
    live: LiveChannels, provider: SmsProvider, session: Session
) -> None:
    provider.mode = "400"
    with pytest.raises(ProviderRejected):
        notify.deliver_sms(session, live, Sms(to="+33633333333", body="x"), key="bad-1")
    row = session.scalars(
        select(NotificationOutbox).where(NotificationOutbox.idempotency_key == "bad-1")
    ).one()
    assert row.status == "failed" and "21211" in (row.last_error or "")


def test_file_backend_writes_one_file_per_notification(tmp_path: Path, session: Session) -> None:
    channels = notify.channels_for(Settings(notify_backend="file", outbox_dir=tmp_path))
    email = Email(to="b@example.org", subject="s", html="<p>x</p>", text="x\n")
    for _ in range(2):
        notify.deliver_email(session, channels, email, key="file-1")
    notify.deliver_sms(session, channels, Sms(to="0612345678", body="y"), key="file-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file-1.eml", "file-2.json"]
    assert '"+33612345678"' in (tmp_path / "file-2.json").read_text()


def test_providers_reachable_reports_the_reason(live: LiveChannels, smtp: SmtpServer) -> None:
    assert "outbox" in notify.providers_reachable(Settings(notify_backend="file"))
    assert "reachable" in notify.providers_reachable(live.settings)
    closed = live.settings.model_copy(update={"smtp_port": 1})
    with pytest.raises(RuntimeError, match="SMTP 127.0.0.1:1 unreachable"):
        notify.providers_reachable(closed)


def test_anomaly_alert_goes_to_site_people_in_french(session: Session) -> None:
    site = session.scalars(select(Site)).first()
    assert site is not None
    anomalies = [
        {"kind": "mortality", "ref": "LOT-1", "score": 0.93, "description": "pic de mortalité"}
    ]
    emails, sms = messages.anomaly_alert(
        session,
        site_code=site.code,
        severity="critical",
        title="Mortalité élevée",
        anomalies=anomalies,
    )
    recipients = {e.to for e in emails}
    assert site.manager_email in recipients and len(sms) == len(emails) >= 2
    assert "Alerte critique" in emails[0].html and "pic de mortalité" in emails[0].text
    assert sms[0].body.startswith("[CRITIQUE]")
    warning, no_sms = messages.anomaly_alert(
        session, site_code=site.code, severity="warning", title="t", anomalies=anomalies
    )
    assert warning and not no_sms
    with pytest.raises(NotFound):
        messages.anomaly_alert(
            session, site_code="ZZZ", severity="warning", title="t", anomalies=anomalies
        )


def test_daily_summary_is_one_email_per_site_manager(session: Session) -> None:
    emails = messages.daily_summaries(session, date(2026, 1, 7))
    sites = session.scalars(select(Site)).all()
    assert sorted(e.to for e in emails) == sorted(s.manager_email for s in sites)
    assert "Repas enregistrés" in emails[0].html


def test_outbox_record_is_idempotent(session: Session) -> None:
    key = outbox.idempotency_key("x", 1)
    assert key == outbox.idempotency_key("x", 1) != outbox.idempotency_key("x", 2)
    first = outbox.record(
        session, key=key, channel="email", recipient="c@example.org", subject="s", body="b"
    )
    outbox.mark_sent(session, key, provider_message_id="m1")
    second = outbox.record(
        session, key=key, channel="email", recipient="c@example.org", subject="s", body="b"
    )
    assert first.id == second.id and second.status == "sent" and second.attempts == 1

"""The delivery channels: SMTP, an HTTP SMS provider shaped like Twilio's Messages resource, and
a file outbox for the demo. Each takes the notification's idempotency key.

Failures are sorted once, here: a provider refusing the message (bad number or address) is a
`DeliveryRejected` (permanent, its reason kept); a provider that is down, slow or throttling is
a `ProviderUnavailable` (transient, retried with backoff).
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol

import httpx

from domain.errors import PermanentError, ServiceUnavailable
from domain.settings import Settings


class DeliveryRejected(PermanentError):
    """The provider refused this message for good (invalid number, address or content)."""


class ProviderUnavailable(ServiceUnavailable):
    """The provider did not accept the message this time (down, 5xx, 429, timeout)."""


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Sms:
    to: str
    body: str


class EmailChannel(Protocol):
    provider: str

    def send_email(self, email: Email, *, key: str) -> str | None: ...


class SmsChannel(Protocol):
    provider: str

    def send_sms(self, sms: Sms, *, key: str) -> str | None: ...


def build_email(email: Email, *, sender: str, key: str) -> EmailMessage:
    """multipart/alternative: text first, HTML second; the Message-ID carries the key."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(idstring=key, domain="gaveurs.notify")
    message["X-Idempotency-Key"] = key
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


class Smtp:
    provider = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.smtp_security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s)
                if s.smtp_security == "starttls":
                    client.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                client.login(s.smtp_user, s.smtp_password.get_secret_value())
        except (OSError, smtplib.SMTPException) as error:
            raise ProviderUnavailable(f"SMTP {s.smtp_host}:{s.smtp_port} unreachable: {error}") from None
        return client

    def send_email(self, email: Email, *, key: str) -> str | None:
        message = build_email(email, sender=self.settings.smtp_sender, key=key)
        client = self.connect()
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = {code for code, _ in error.recipients.values()}
            reasons = "; ".join(r.decode(errors="replace") for _, r in error.recipients.values())
            if all(500 <= code < 600 for code in codes):
                raise DeliveryRejected(f"SMTP refused the recipient: {reasons}") from None
            raise ProviderUnavailable(f"SMTP deferred the recipient: {reasons}") from None
        except smtplib.SMTPResponseException as error:
            reason = f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
            if 500 <= error.smtp_code < 600:
                raise DeliveryRejected(f"SMTP refused the message: {reason}") from None
            raise ProviderUnavailable(f"SMTP deferred the message: {reason}") from None
        except (OSError, smtplib.SMTPException) as error:
            raise ProviderUnavailable(f"SMTP failed during send: {error}") from None
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                pass
        return str(message["Message-ID"])


class HttpSms:
    """POST /2010-04-01/Accounts/{sid}/Messages.json with basic auth, as Twilio's API.

    Every request carries `I-Twilio-Idempotency-Token: <key>`: the provider answers a repeated
    token with the message it already created instead of sending a second SMS.
    """

    provider = "sms"

    def __init__(self, settings: Settings, *, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.Client(timeout=settings.sms_timeout_s)

    @property
    def url(self) -> str:
        base = self.settings.sms_base_url.rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.settings.sms_account_sid}/Messages.json"

    def send_sms(self, sms: Sms, *, key: str) -> str | None:
        s = self.settings
        try:
            response = self.client.post(
                self.url,
                data={"To": sms.to, "From": s.sms_sender, "Body": sms.body},
                auth=(s.sms_account_sid, s.sms_auth_token.get_secret_value()),
                headers={"I-Twilio-Idempotency-Token": key},
            )
        except httpx.TimeoutException:
            raise ProviderUnavailable("SMS provider timed out") from None
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"SMS provider unreachable: {error}") from None
        if response.status_code in (200, 201):
            return str(response.json().get("sid"))
        reason = _reason(response)
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderUnavailable(f"SMS provider answered {response.status_code}: {reason}")
        raise DeliveryRejected(f"SMS provider refused ({response.status_code}): {reason}")


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return f"{body.get('code', '')} {body.get('message', '')}".strip()[:300]


class FileOutbox:
    """One file per message under outbox_dir: `<key>.eml` or `<key>.json`, written once."""

    provider = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, name: str, content: bytes) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / name
        if not path.exists():
            partial = path.with_suffix(path.suffix + ".part")
            partial.write_bytes(content)
            partial.replace(path)
        return name

    def send_email(self, email: Email, *, key: str) -> str | None:
        message = build_email(email, sender="outbox@gaveurs.local", key=key)
        return self._write(f"{key}.eml", message.as_bytes())

    def send_sms(self, sms: Sms, *, key: str) -> str | None:
        body = json.dumps({"to": sms.to, "body": sms.body, "key": key}, ensure_ascii=False)
        return self._write(f"{key}.json", body.encode())


def check_backend(settings: Settings) -> None:
    """Refuse the file backend in production: messages would silently go nowhere."""
    if settings.environment == "production" and settings.notify_backend == "file":
        raise RuntimeError(
            "NOTIFY_BACKEND=file is refused when ENVIRONMENT/APP_ENV=production: set "
            "NOTIFY_BACKEND=live with SMTP_* and SMS_* settings"
        )


def email_channel(settings: Settings) -> EmailChannel:
    check_backend(settings)
    return FileOutbox(settings.outbox_dir) if settings.notify_backend == "file" else Smtp(settings)


def sms_channel(settings: Settings) -> SmsChannel:
    check_backend(settings)
    if settings.notify_backend == "file":
        return FileOutbox(settings.outbox_dir)
    return HttpSms(settings)


def providers_reachable(settings: Settings) -> str:
    """For the health check: raises with the reason when SMTP or the SMS API cannot be reached."""
    check_backend(settings)
    if settings.notify_backend == "file":
        settings.outbox_dir.mkdir(parents=True, exist_ok=True)
        return f"file backend, outbox {settings.outbox_dir}"
    Smtp(settings).connect().quit()
    try:
        with socket.create_connection(
            (httpx.URL(settings.sms_base_url).host, httpx.URL(settings.sms_base_url).port or 443),
            timeout=settings.sms_timeout_s,
        ):
            pass
    except OSError as error:
        raise ProviderUnavailable(f"SMS API {settings.sms_base_url} unreachable: {error}") from None
    return f"SMTP {settings.smtp_host}:{settings.smtp_port} ok, SMS API {settings.sms_base_url} ok"

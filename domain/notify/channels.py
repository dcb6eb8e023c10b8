"""The channels: SMTP, a Twilio-shaped SMS API, and a file outbox for demos and tests.

Every send carries the notification's idempotency key: the SMS API receives it as the
`I-Twilio-Idempotency-Token` header, the e-mail as a Message-ID derived from it, the file outbox
as the file name. Errors are classified once here: `ProviderRejected` (never retried) or
`ProviderUnavailable` (retried with backoff, counted by the circuit breaker).
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Protocol

import httpx

from domain.errors import ProviderRejected, ProviderUnavailable
from domain.platform.redact import mask_email, mask_phone
from domain.platform.settings import Settings

SMS_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Sms:
    to: str  # E.164
    body: str


#: Sends one e-mail within an open provider session (`email_session`): its Message-ID.
SendEmail = Callable[[Email, str], str]


class Channels(Protocol):
    def send_email(self, email: Email, *, key: str) -> str: ...
    def email_session(self) -> AbstractContextManager[SendEmail]: ...
    def send_sms(self, sms: Sms, *, key: str) -> str: ...
    def find_sms(self, sms: Sms, *, since: datetime) -> str | None: ...


def build_email(email: Email, *, sender: str, key: str) -> EmailMessage:
    """multipart/alternative, text first then HTML, with a Message-ID stable across retries."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(idstring=key, domain="gaveurs.notify")
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


class LiveChannels:
    """SMTP for e-mail, the HTTP Messages API for SMS."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _smtp(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_security == "tls":
            return smtplib.SMTP_SSL(
                s.smtp_host,
                s.smtp_port,
                timeout=s.smtp_timeout_s,
                context=ssl.create_default_context(),
            )
        client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s)
        if s.smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context())
        return client

    def send_email(self, email: Email, *, key: str) -> str:
        with self.email_session() as send:
            return send(email, key)

    @contextmanager
    def email_session(self) -> Iterator[SendEmail]:
        """One SMTP connection (and login) for any number of messages: SMTP carries many mail
        transactions per session (RFC 5321 3.3), the provider's batch call for e-mail."""
        try:
            with self._smtp() as client:
                if self.settings.smtp_user:
                    client.login(
                        self.settings.smtp_user, self.settings.smtp_password.get_secret_value()
                    )
                yield lambda email, key: self._transaction(client, email, key)
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            raise ProviderUnavailable(
                f"SMTP {self.settings.smtp_host}:{self.settings.smtp_port}: {error}"
            ) from None
        except smtplib.SMTPResponseException as error:
            raise _smtp_error(error) from None

    def _transaction(self, client: smtplib.SMTP, email: Email, key: str) -> str:
        message = build_email(email, sender=self.settings.smtp_sender, key=key)
        try:
            refused = client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            reason = "; ".join(
                f"{code} {text.decode(errors='replace')}"
                for code, text in error.recipients.values()
            )
            raise ProviderRejected(f"SMTP refused {mask_email(email.to)}: {reason}") from None
        except smtplib.SMTPResponseException as error:
            raise _smtp_error(error) from None
        except (OSError, smtplib.SMTPException) as error:
            raise ProviderUnavailable(
                f"SMTP {self.settings.smtp_host}:{self.settings.smtp_port}: {error}"
            ) from None
        if refused:
            raise ProviderRejected(f"SMTP refused {mask_email(email.to)}")
        return str(message["Message-ID"])

    def _sms_url(self) -> str:
        return self.settings.sms_base_url.rstrip("/") + SMS_PATH.format(
            sid=self.settings.sms_account_sid
        )

    def _auth(self) -> tuple[str, str]:
        return (self.settings.sms_account_sid, self.settings.sms_auth_token.get_secret_value())

    def send_sms(self, sms: Sms, *, key: str) -> str:
        data = {"To": sms.to, "From": self.settings.sms_sender, "Body": sms.body}
        try:
            response = httpx.post(
                self._sms_url(),
                data=data,
                auth=self._auth(),
                headers={IDEMPOTENCY_HEADER: key},
                timeout=self.settings.sms_timeout_s,
            )
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"SMS API: {type(error).__name__} {error}") from None
        return _sms_sid(response, sms)

    def find_sms(self, sms: Sms, *, since: datetime) -> str | None:
        """The sid of a message already sent to this number with this body, if any (after a
        timeout the provider may have delivered: its Messages list is the truth)."""
        params = {"To": sms.to, "DateSent>": (since - timedelta(days=1)).date().isoformat()}
        try:
            response = httpx.get(
                self._sms_url(),
                params=params,
                auth=self._auth(),
                timeout=self.settings.sms_timeout_s,
            )
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"SMS API: {type(error).__name__} {error}") from None
        if response.status_code != 200:
            raise ProviderUnavailable(f"SMS API list answered {response.status_code}")
        for message in response.json().get("messages", []):
            if message.get("to") == sms.to and message.get("body") == sms.body:
                return str(message["sid"])
        return None


def _smtp_error(error: smtplib.SMTPResponseException) -> ProviderRejected | ProviderUnavailable:
    """A 5xx answer is final for that message; anything else may heal."""
    text = (
        error.smtp_error.decode(errors="replace")
        if isinstance(error.smtp_error, bytes)
        else str(error.smtp_error)
    )
    if 500 <= error.smtp_code < 600:
        return ProviderRejected(f"SMTP {error.smtp_code} {text}")
    return ProviderUnavailable(f"SMTP {error.smtp_code} {text}")


def _sms_sid(response: httpx.Response, sms: Sms) -> str:
    if response.status_code in (200, 201):
        return str(response.json()["sid"])
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    reason = f"{body.get('code', '')} {body.get('message', response.text[:200])}".strip()
    # Providers echo the number in their reason; the dead letter must not keep it.
    reason = reason.replace(sms.to, mask_phone(sms.to))
    if response.status_code == 429 or response.status_code >= 500:
        raise ProviderUnavailable(f"SMS API {response.status_code}: {reason}")
    raise ProviderRejected(f"SMS API {response.status_code} for {mask_phone(sms.to)}: {reason}")


class FileChannels:
    """One .eml or .json per notification under OUTBOX_DIR, named by its key (rewrite = no-op)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = Path(settings.outbox_dir)

    @contextmanager
    def email_session(self) -> Iterator[SendEmail]:
        yield lambda email, key: self.send_email(email, key=key)

    def send_email(self, email: Email, *, key: str) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        message = build_email(email, sender=self.settings.smtp_sender, key=key)
        (self.dir / f"{key}.eml").write_bytes(bytes(message))
        return str(message["Message-ID"])

    def send_sms(self, sms: Sms, *, key: str) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        record = {
            "to": sms.to,
            "from": self.settings.sms_sender,
            "body": sms.body,
            "sent_at": datetime.now(UTC).isoformat(),
        }
        (self.dir / f"{key}.json").write_text(json.dumps(record, ensure_ascii=False, indent=2))
        return f"file-{key}"

    def find_sms(self, sms: Sms, *, since: datetime) -> str | None:
        return None


def channels_for(settings: Settings) -> Channels:
    return FileChannels(settings) if settings.notify_backend == "file" else LiveChannels(settings)


def check_backend(settings: Settings) -> None:
    """Called at worker and API start: production must not silently write mail to disk."""
    if settings.environment == "production" and settings.notify_backend == "file":
        raise RuntimeError(
            "NOTIFY_BACKEND=file is refused when APP_ENV/ENVIRONMENT=production: set "
            "NOTIFY_BACKEND=live with SMTP_* and SMS_* settings"
        )


def providers_reachable(settings: Settings) -> str:
    """For the health check: raises with the reason when SMTP or the SMS API cannot be reached."""
    if settings.notify_backend == "file":
        return f"file backend, outbox {settings.outbox_dir}"
    try:
        with socket.create_connection((settings.smtp_host, settings.smtp_port), timeout=5):
            pass
    except OSError as error:
        raise RuntimeError(
            f"SMTP {settings.smtp_host}:{settings.smtp_port} unreachable: {error}"
        ) from None
    try:
        response = httpx.get(
            settings.sms_base_url.rstrip("/") + SMS_PATH.format(sid=settings.sms_account_sid),
            auth=(settings.sms_account_sid, settings.sms_auth_token.get_secret_value()),
            params={"PageSize": 1},
            timeout=5,
        )
    except httpx.HTTPError as error:
        raise RuntimeError(f"SMS API {settings.sms_base_url} unreachable: {error}") from None
    if response.status_code != 200:
        raise RuntimeError(f"SMS API {settings.sms_base_url} answered {response.status_code}")
    return f"SMTP {settings.smtp_host}:{settings.smtp_port} and SMS API reachable"

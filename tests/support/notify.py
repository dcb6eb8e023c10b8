"""Real servers for notification tests: aiosmtpd SMTP and a Twilio-shaped Messages API.

The SMS server implements POST/GET /2010-04-01/Accounts/{sid}/Messages.json with basic auth and
honours the I-Twilio-Idempotency-Token header (a repeated token returns the first message, sends
nothing). `mode` makes it misbehave: "ok", "down" (drops the connection), "503", "429", "400"
(invalid number) or "slow" (delivers, then answers after `slow_s`, past the client's timeout).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from ops.local_redis import free_port


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        #: Each message's SMTP session (aiosmtpd makes one per connection; held, so their ids
        #: stay distinct).
        self.sessions: list[Any] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.content or b""
        data = raw.encode() if isinstance(raw, str) else raw
        with self.lock:
            self.messages.append(message_from_bytes(data, policy=policy.default))
            self.sessions.append(session)
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port; `messages` holds every message received."""

    def __init__(self) -> None:
        self.handler = _Collect()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self) -> list[Message]:
        with self.handler.lock:
            return list(self.handler.messages)

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    def sessions_to(self, addresses: set[str]) -> set[int]:
        """The SMTP sessions (connections) that carried messages to these addresses."""
        with self.handler.lock:
            pairs = list(zip(self.handler.messages, self.handler.sessions, strict=True))
        return {id(session) for message, session in pairs if message["To"] in addresses}

    def stop(self) -> None:
        self.controller.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # "down" mode drops connections on purpose


class SmsProvider:
    def __init__(self, *, sid: str = "ACtest", token: str = "secret-token") -> None:
        self.sid = sid
        self.token = token
        self.mode = "ok"
        self.slow_s = 1.5
        self.sent: list[dict[str, str]] = []
        self.by_token: dict[str, dict[str, str]] = {}
        self.requests = 0
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", free_port()), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def env(self) -> dict[str, str]:
        return {"SMS_BASE_URL": self.url, "SMS_ACCOUNT_SID": self.sid, "SMS_AUTH_TOKEN": self.token}

    def deliveries_to(self, number: str) -> list[dict[str, str]]:
        with self.lock:
            return [m for m in self.sent if m["to"] == number]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(provider: SmsProvider) -> type[BaseHTTPRequestHandler]:
    path = f"/2010-04-01/Accounts/{provider.sid}/Messages.json"
    expected = "Basic " + base64.b64encode(f"{provider.sid}:{provider.token}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _checked(self) -> bool:
            if urlparse(self.path).path != path:
                self._answer(404, {"code": 20404, "message": "not found"})
                return False
            if self.headers.get("Authorization") != expected:
                self._answer(401, {"code": 20003, "message": "Authenticate"})
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802
            if not self._checked():
                return
            to = parse_qs(urlparse(self.path).query).get("To", [None])[0]
            with provider.lock:
                found = [m for m in provider.sent if to is None or m["to"] == to]
            self._answer(200, {"messages": found})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            with provider.lock:
                provider.requests += 1
                mode = provider.mode
            if mode == "down":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if not self._checked():
                return
            if mode in ("503", "429"):
                self._answer(int(mode), {"code": 20500, "message": "try again later"})
                return
            if mode == "400":
                self._answer(
                    400,
                    {"code": 21211, "message": f"The 'To' number {form.get('To')} is not valid."},
                )
                return
            token = self.headers.get("I-Twilio-Idempotency-Token", "")
            with provider.lock:
                message = provider.by_token.get(token) if token else None
                if message is None:
                    message = {
                        "sid": "SM" + uuid.uuid4().hex,
                        "to": form["To"],
                        "from": form["From"],
                        "body": form["Body"],
                        "status": "queued",
                    }
                    provider.sent.append(message)
                    if token:
                        provider.by_token[token] = message
            if mode == "slow":
                time.sleep(provider.slow_s)
            self._answer(201, message)

    return Handler


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """A module's SMTP server (import this fixture into the test module)."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def provider() -> Iterator[SmsProvider]:
    """A module's SMS provider (import this fixture into the test module)."""
    server = SmsProvider()
    yield server
    server.stop()

"""Callback URL checks, signatures and bodies (domain/notify/callbacks.py)."""

from __future__ import annotations

import time

import orjson
import pytest

from domain.errors import InvalidInput
from domain.notify import callbacks


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.1.10:8443/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://[::1]/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_loopback_private_and_reserved_targets_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="CALLBACK_ALLOW_PRIVATE"):
        callbacks.check_url(url, https_only=False, allow_private=False)


def test_a_public_address_is_accepted_and_private_ones_when_allowed() -> None:
    assert callbacks.check_url("https://8.8.8.8/h", https_only=True, allow_private=False)
    assert callbacks.check_url("http://127.0.0.1:9/h", https_only=False, allow_private=True)


@pytest.mark.parametrize(
    ("url", "https_only", "why"),
    [
        ("http://8.8.8.8/h", True, "https URL"),
        ("ftp://8.8.8.8/h", False, "https or http URL"),
        ("https://user:pw@8.8.8.8/h", False, "no user:password"),
        ("https:///h", False, "needs a host"),
        ("https://no-such-host.invalid/h", False, "does not resolve"),
    ],
)
def test_bad_urls_say_why(url: str, https_only: bool, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        callbacks.check_url(url, https_only=https_only, allow_private=False)


def test_a_signature_verifies_with_the_secret_only_and_while_fresh() -> None:
    body = b'{"task_id":"t1","status":"SUCCESS"}'
    now = int(time.time())
    header = callbacks.sign("s3cret", body, timestamp=now)
    assert callbacks.verify("s3cret", body, header)
    assert not callbacks.verify("other", body, header)
    assert not callbacks.verify("s3cret", body + b" ", header)
    stale = callbacks.sign("s3cret", body, timestamp=now - 3600)
    assert not callbacks.verify("s3cret", body, stale)


def test_the_body_is_the_public_record() -> None:
    data = orjson.loads(
        callbacks.body(
            {"task_id": "t1", "state": "SUCCESS", "completed_at": 0, "unique_key": "x", "result": 1}
        )
    )
    assert data["status"] == "SUCCESS" and data["result"] == 1 and "unique_key" not in data

"""Notification actor declarations: queues, payload contracts and masking."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from actors.notifications import send_sms, send_urgent_sms, sms_job_for
from domain.errors import InvalidInput
from domain.platform.redact import redact_payload
from runtime import REGISTRY
from tests.support.production import PRODUCTION_KEYS

ALERT: dict[str, Any] = {
    "site_code": "LL",
    "severity": "critical",
    "title": "Mortalité",
    "anomalies": [{"kind": "mortality", "ref": "L1", "score": 0.9, "description": "pic"}],
}


def test_contract_names_are_registered_on_their_queues() -> None:
    names = [
        "send_sms",
        "send_email",
        "send_anomaly_alert",
        "send_lot_completion",
        "send_daily_summary_reports",
        "send_feedback_ack",
        "send_bulk_email",
    ]
    assert all(name in REGISTRY for name in names)
    assert REGISTRY["send_anomaly_alert"].queue == "notifications_urgent"
    assert REGISTRY["send_urgent_sms"].queue == "notifications_urgent"
    assert REGISTRY["send_bulk_email"].queue == "notifications"


@pytest.mark.parametrize(
    ("priority", "urgent"), [("low", False), ("normal", False), ("high", True), ("critical", True)]
)
def test_high_and_critical_sms_take_the_urgent_queue(priority: str, urgent: bool) -> None:
    assert sms_job_for(priority) is (send_urgent_sms if urgent else send_sms)


def test_anomaly_alert_payload_is_the_shared_contract() -> None:
    alert = REGISTRY["send_anomaly_alert"]
    assert alert.validate(ALERT).severity == "critical"
    with pytest.raises(InvalidInput, match="at most 100"):
        alert.validate({**ALERT, "anomalies": ALERT["anomalies"] * 101})
    with pytest.raises(InvalidInput):
        alert.validate({**ALERT, "severity": "info"})


def test_recipients_are_masked_in_job_records() -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("send_sms", {"phone": "+33612345678", "message": "m"}),
        ("send_email", {"to_email": "jean@example.org", "subject": "s", "body_html": "b"}),
        ("send_bulk_email", {"recipients": ["jean@example.org"], "subject": "s", "body_html": "b"}),
    ]
    for name, payload in cases:
        masked = redact_payload(payload, extra=REGISTRY[name].actor.options["redact"])
        assert "+33612345678" not in str(masked) and "jean@" not in str(masked)


def test_a_production_worker_refuses_to_start_with_the_file_backend() -> None:
    env = {**os.environ, "APP_ENV": "production", "NOTIFY_BACKEND": "file", **PRODUCTION_KEYS}
    env.pop("ENVIRONMENT", None)
    # Importing the jobs reads nothing; setting the runtime up (what a worker does) refuses.
    imported = subprocess.run(
        [sys.executable, "-c", "import actors"], env=env, capture_output=True, text=True, timeout=60
    )
    assert imported.returncode == 0, imported.stderr
    done = subprocess.run(
        [sys.executable, "-c", "import actors; actors.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "NOTIFY_BACKEND=file is refused" in done.stderr

"""The running job's side of the processing audit trail (domain/platform/audit.py): who (the
submitting client), which job and task, filled in from the current message."""

from __future__ import annotations

from typing import Any

from dramatiq.middleware import CurrentMessage

from domain.platform.audit import Processing
from runtime.build import current
from runtime.clients import current_client


def audit_processing(*, purpose: str, key: str | None = None, outcome: str = "done") -> Processing:
    """The processing the running job does, under exactly-once `key` (default: its task id, for
    a job whose effect commits once per task)."""
    message: Any = CurrentMessage.get_current_message()
    task_id = message.message_id if message is not None else None
    job = message.actor_name if message is not None else "direct"
    return Processing(
        job=job,
        purpose=purpose,
        key=key or f"{job}:{task_id}",
        client=current_client(),
        task_id=task_id,
        outcome=outcome,
    )


def audit_key() -> str:
    """The key of the subjects' keyed hashes (AUDIT_SUBJECT_KEY)."""
    return current().settings.audit_subject_key.get_secret_value()

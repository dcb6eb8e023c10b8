"""The 202 of an enqueue (api/enqueue.py): a plain one is written without building its model,
byte for byte the body the model (SubmittedPublic) gives, with the same Location."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from actors.notifications import send_email
from api.enqueue import CACHED_NOTE, DUPLICATE_NOTE, _accepted
from api.schemas import Accepted, SubmittedPublic
from runtime import Submitted

TASK = "0f5c2a6e-3b1d-4b8e-9a77-2d4c1e0b9f10"


def by_the_model(outcome: Submitted, *, message: str, echo: dict[str, Any]) -> Accepted:
    extra: dict[str, Any] = {"status": "PENDING", "queued": "deferred"} if outcome.deferred else {}
    if outcome.cached:
        extra |= {"status": "SUCCESS", "cached": True, "result": outcome.result}
    return Accepted(
        SubmittedPublic(
            task_id=outcome.task_id,
            task_name=send_email.name,
            queue=send_email.queue,
            message=CACHED_NOTE
            if outcome.cached
            else DUPLICATE_NOTE
            if outcome.duplicate
            else message,
            status_url=f"/api/tasks/status/{outcome.task_id}",
            duplicate=outcome.duplicate,
            **extra,
            **echo,
        )
    )


@pytest.mark.parametrize(
    ("outcome", "echo"),
    [
        (Submitted(TASK), {"to_email": "b***@example.org"}),
        (Submitted(TASK), {}),
        (Submitted(TASK, duplicate=True), {"k": 3, "ratio": 0.5, "flag": None}),
        (Submitted(TASK, deferred=True), {"site_code": "LL"}),
        (Submitted(TASK, cached=True, result={"sent": True}), {}),
        (Submitted(TASK), {"when": time.gmtime(0)[:3]}),  # not a scalar: the model's path
        (Submitted(TASK), {"status": "echoed"}),  # one of the model's names: the model's path
    ],
)
def test_the_answer_is_the_models_own(outcome: Submitted, echo: dict[str, Any]) -> None:
    message = "Email sending started"
    answer = _accepted(send_email, outcome, started=time.perf_counter(), message=message, echo=echo)
    expected = by_the_model(outcome, message=message, echo=echo)
    assert answer.status_code == expected.status_code == 202
    assert answer.body == expected.body
    assert answer.headers.items() == expected.headers.items()
    assert orjson.loads(answer.body)["task_id"] == TASK

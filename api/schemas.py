"""Response models of the generic task routes, shaped like the source documents' examples."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from runtime import JobRecord, State


def from_ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, tz=UTC) if value else None


class ErrorDetail(BaseModel):
    type: str
    message: str
    traceback: str = ""


class AttemptPublic(BaseModel):
    """One attempt's end in a job's timeline: outcome RETRY, SUCCESS, FAILURE, REVOKED, or LOST
    (its worker died under it); `retry_at` is when a RETRY's next attempt was due."""

    attempt: int
    outcome: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    worker: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    retry_at: datetime | None = None

    @classmethod
    def of(cls, entry: dict[str, Any]) -> AttemptPublic:
        times = {name: from_ms(entry.get(name)) for name in ("started_at", "ended_at", "retry_at")}
        return cls.model_validate({**entry, **times})


class TaskPublic(BaseModel):
    """`GET /api/tasks/status/{task_id}`: seed 001's shape plus what an operator needs."""

    task_id: str
    task_name: str
    queue: str
    status: State
    progress: int = Field(ge=0, le=100)
    progress_note: str = ""
    attempts: int
    args: dict[str, Any]
    enqueued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    eta: datetime | None
    worker: str | None
    result: Any = None
    error: str | None = None
    error_detail: ErrorDetail | None = None
    #: The last 20 attempts' ends, oldest first: each retry with its error and backoff.
    attempt_history: list[AttemptPublic] = []
    #: "deferred" while the job waits in the database for Redis to come back.
    queued: Literal["broker", "deferred"] = "broker"
    #: The API client (or "scheduler", "cli") that submitted the job.
    client: str | None = None

    @classmethod
    def of(cls, record: JobRecord) -> TaskPublic:
        detail = ErrorDetail(**record.error) if record.error else None
        return cls(
            task_id=record.task_id,
            task_name=record.task_name,
            queue=record.queue,
            status=record.state,
            progress=record.progress,
            progress_note=record.progress_note,
            attempts=record.attempts,
            args=record.args,
            enqueued_at=from_ms(record.enqueued_at),
            started_at=from_ms(record.started_at),
            completed_at=from_ms(record.completed_at),
            eta=from_ms(record.eta),
            worker=record.worker,
            result=record.result,
            error=f"{detail.type}: {detail.message}" if detail else None,
            error_detail=detail,
            client=record.client,
            attempt_history=[AttemptPublic.of(entry) for entry in record.timeline],
        )


class TaskList(BaseModel):
    total: int
    tasks: list[TaskPublic]


class SubmittedPublic(BaseModel):
    """202 answer of every enqueue route; job-specific echo fields (lot_id, ...) are added."""

    model_config = ConfigDict(extra="allow")

    status: str = "submitted"
    task_id: str
    task_name: str
    queue: str
    message: str
    status_url: str
    duplicate: bool = False
    #: "deferred" (with status PENDING) when accepted while Redis was down: stored in the
    #: database and sent to its queue once Redis is back.
    queued: Literal["broker", "deferred"] = "broker"


class ModelResponse(Response):
    """A response model's JSON, serialized once (orjson). FastAPI would validate a returned model
    against `response_model` again and serialize it in its thread pool (a second hop for a sync
    route); routes keep `response_model=` for the OpenAPI schema."""

    media_type = "application/json"

    def __init__(
        self, model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            orjson.dumps(model.model_dump(mode="json")), status_code=status_code, headers=headers
        )


class Accepted(ModelResponse):
    """The 202 of an enqueue with its Location header."""

    def __init__(self, submitted: SubmittedPublic) -> None:
        super().__init__(submitted, status_code=202, headers={"Location": submitted.status_url})

    @classmethod
    def of(cls, body: dict[str, Any], *, status_url: str) -> Accepted:
        """The same answer from a body already in the model's JSON form (api/enqueue.py: a
        plain enqueue's 202 without building the model and dumping it, ~10 µs)."""
        answer = cls.__new__(cls)
        Response.__init__(
            answer, orjson.dumps(body), status_code=202, headers={"Location": status_url}
        )
        return answer


#: `responses=` of the routers that enqueue: their 202 body in the OpenAPI schema.
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": SubmittedPublic, "description": "Accepted: the job is queued (or already was)."}
}


class Cancelled(BaseModel):
    status: str = "cancelled"
    task_id: str
    previous_status: State
    message: str


class QueuePublic(BaseModel):
    name: str
    ready: int
    delayed: int
    dead_letters: int
    in_flight: int
    oldest_age_seconds: float


class DeadLetterPublic(BaseModel):
    task_id: str
    task_name: str
    queue: str
    failed_at: datetime
    attempts: int | None
    reason: str | None
    error: str | None
    args: dict[str, Any] | None


class DeadLetterPage(BaseModel):
    queue: str
    total: int
    dead_letters: list[DeadLetterPublic]

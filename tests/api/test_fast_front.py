"""The front of the enqueue fast path (api/fast_front.py): each request is answered as the six
layers behind it answer it, compared with the same app without the front, through the real app
(TestClient) on the real test Redis and database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.fast_front import FastEnqueueFront
from api.main import create_app
from domain.platform.settings import Settings

EMAIL = "/api/tasks/notifications/email"
BODY = b'{"to_email": "chef@example.org", "subject": "Lot 3472", "body_html": "<p>pr\xc3\xaat</p>"}'
JSON = {"Content-Type": "application/json"}
#: An SMS to a number that parses as none: the endpoint's error, the app's handler's 422.
NO_PHONE = {"phone": "+33 0000", "message": "Lot prêt"}
#: Fields that differ from one enqueue to the next.
VOLATILE = {"task_id", "status_url"}


@pytest.fixture()
def both(demo_database: str) -> Iterator[tuple[TestClient, TestClient]]:
    settings = Settings(max_request_body_bytes=4096)
    without = create_app(settings)
    without.user_middleware = [m for m in without.user_middleware if m.cls is not FastEnqueueFront]
    with TestClient(create_app(settings)) as front, TestClient(without) as layers:
        yield front, layers


def cases(auth: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    key = f"order-{uuid.uuid4()}"
    return [
        (EMAIL, {"content": BODY, "headers": {**auth, **JSON}}),
        (EMAIL, {"content": BODY, "headers": {**auth, "Content-Type": "application/merge+json"}}),
        (EMAIL + "?callback_url=https://example.org/hook", {"content": BODY, "headers": auth}),
        (EMAIL, {"content": BODY, "headers": {**auth, **JSON, "Idempotency-Key": key}}),
        (EMAIL, {"content": BODY, "headers": {**auth, **JSON, "Idempotency-Key": "x" * 300}}),
        (EMAIL, {"content": BODY, "headers": {**auth, "Content-Type": "text/plain"}}),
        (EMAIL, {"content": BODY, "headers": auth}),  # no Content-Type
        (EMAIL, {"content": b'{"to_email": ', "headers": {**auth, **JSON}}),
        (EMAIL, {"content": b"[" + b"1," * 3000 + b"1]", "headers": {**auth, **JSON}}),
        (EMAIL, {"content": iter([BODY]), "headers": {**auth, **JSON}}),  # chunked
        (EMAIL, {"content": BODY, "headers": JSON}),
        (EMAIL, {"content": BODY, "headers": {"Authorization": "Bearer nope", **JSON}}),
        (EMAIL, {"content": b'{"to_email": "a@b.fr"}', "headers": {**auth, **JSON}}),
        (EMAIL, {"content": b"", "headers": {**auth, **JSON}}),
        ("/api/jobs/nope", {"content": b"{}", "headers": {**auth, **JSON}}),
        ("/api/jobs/send_email?delay_ms=-1", {"content": BODY, "headers": {**auth, **JSON}}),
        ("/api/jobs/send_email?priority_class=high", {"content": BODY, "headers": auth | JSON}),
        ("/api/tasks/notifications/sms", {"json": NO_PHONE, "headers": auth}),
    ]  # fmt: skip


def test_every_request_is_answered_as_the_layers_answer_it(
    both: tuple[TestClient, TestClient], auth: dict[str, str]
) -> None:
    front, layers = both
    # The front found the layers it stands in for (else it only passes requests on)
    assert front.post("/healthz").status_code in (404, 405)
    assert any(
        isinstance(app, FastEnqueueFront) and app.layers() is not None
        for app in _stack(front.app.middleware_stack)  # type: ignore[attr-defined]
    )
    # Each side its own Idempotency-Key (the two apps share Redis: the second would be a retry)
    for (path, request), (_, other) in zip(cases(auth), cases(auth), strict=True):
        answers = [front.post(path, **request), layers.post(path, **other)]
        statuses = [answer.status_code for answer in answers]
        assert statuses[0] == statuses[1], (path, request.get("headers"), statuses)
        bodies = [_stable(answer.json()) for answer in answers]
        assert bodies[0] == bodies[1], (path, bodies)
        assert ("location" in answers[0].headers) == ("location" in answers[1].headers)
        assert answers[0].headers.get("retry-after") == answers[1].headers.get("retry-after")


def test_a_write_beyond_the_rate_is_the_limits_429(
    demo_database: str, auth: dict[str, str]
) -> None:
    headers = {**auth, **JSON}
    with TestClient(create_app(Settings(enqueue_rate_per_s=2))) as client:
        codes = [client.post(EMAIL, content=BODY, headers=headers).status_code for _ in range(5)]
        assert codes[:2] == [202, 202] and 429 in codes[2:]
        limited = next(
            r for r in (client.post(EMAIL, content=BODY, headers=headers) for _ in range(3))
            if r.status_code == 429
        )  # fmt: skip
        assert limited.headers["Retry-After"] == "1" and "per second" in limited.json()["detail"]
        # counted as the limit counts it: before any route was matched
        assert 'route="unmatched",status="429"' in client.get("/metrics/").text


def _stack(app: Any) -> Iterator[Any]:
    while app is not None:
        yield app
        app = getattr(app, "app", None)


def _stable(body: Any) -> Any:
    if isinstance(body, dict):
        return {name: value for name, value in body.items() if name not in VOLATILE}
    return body

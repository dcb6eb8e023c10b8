"""Security of the HTTP surface and of what jobs leave behind.

Routes are found by walking the app (tests/support/routes.py), so a route added later is held
to the same rules: a token on every write, the admin token on destructive routes, admin
credentials on mounted apps, JSON only on the wire, bounded inputs. A real worker process then
runs notification jobs whose providers refuse them, and no secret may appear in the job records,
the API's answers or the worker's log.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from typer.testing import CliRunner

from api.main import create_app
from domain.platform.redact import mask_url, redact_payload
from domain.platform.settings import Settings
from ops.local_redis import free_port
from runtime import BREAKER_PREFIX, REGISTRY, broker, records
from tests.conftest import ADMIN_TOKEN, API_TOKEN
from tests.support.notify import SmsProvider
from tests.support.polling import wait_for
from tests.support.routes import (
    api_routes,
    mounts,
    needs_admin,
    needs_console_session,
    needs_csrf,
    needs_writer,
    write_methods,
)
from tests.support.workers import ROOT, WorkerProcess

APP = create_app(Settings())  # walked for its routes; requests go through `api_client`
#: The console's login form (no session yet; its own form token, see tests/api/console).
CONSOLE_LOGIN = "/console/login"
#: Console routes take the admin's session cookie, not a bearer token (tests below).
CONSOLE = [
    (method, route.path)
    for route in api_routes(APP)
    if route.path.startswith("/console") and route.path != CONSOLE_LOGIN
    for method in sorted(route.methods or ())
]
WRITES = [
    (method, route.path)
    for route in api_routes(APP)
    for method in write_methods(route)
    if not route.path.startswith("/console")
]
# Writes, and reads that declare a token anyway (downloads of files holding personal data).
GUARDED = WRITES + [
    ("GET", route.path)
    for route in api_routes(APP)
    if "GET" in (route.methods or ()) and (needs_writer(route) or needs_admin(route))
]
ADMIN_ROUTES = [
    (method, route.path)
    for route in api_routes(APP)
    if needs_admin(route)
    for method in write_methods(route)
]


def _id(case: tuple[str, str]) -> str:
    return f"{case[0]} {case[1]}"


def concrete(path: str) -> str:
    """A real queue, so a queue check cannot answer before auth; "1" fits any other parameter."""
    return re.sub(
        r"\{(\w+)(?::[^}]*)?\}", lambda m: "default" if m.group(1) == "queue" else "1", path
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- tokens and scopes -------------------------------------------------------------------------


def test_every_write_route_declares_a_token() -> None:
    assert WRITES, "no write route found: the route walk is broken"
    undeclared = [
        _id((method, route.path))
        for route in api_routes(APP)
        for method in write_methods(route)
        if not (needs_writer(route) or needs_admin(route) or needs_console_session(route))
        and route.path != CONSOLE_LOGIN
    ]
    assert not undeclared, f"write routes without WriterDep/AdminDep/console session: {undeclared}"


@pytest.mark.parametrize("case", GUARDED, ids=_id)
def test_every_guarded_route_refuses_a_missing_or_wrong_token(
    api_client: Any, case: tuple[str, str]
) -> None:
    method, path = case
    refused = [
        {},
        bearer("wrong"),
        bearer(API_TOKEN[:-1]),
        bearer(API_TOKEN + "x"),
        {"Authorization": API_TOKEN},
        basic("admin", ADMIN_TOKEN),
    ]
    for headers in refused:
        response = api_client.request(method, concrete(path), headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert API_TOKEN not in response.text and ADMIN_TOKEN not in response.text


def test_destructive_routes_are_admin_routes() -> None:
    destructive = [
        (method, path)
        for method, path in WRITES
        if (method == "DELETE" and "dead-letters" in path) or "purge" in path
    ]
    assert len(destructive) >= 2, "the dead-letter DELETE routes were not found"
    assert set(destructive) <= set(ADMIN_ROUTES), set(destructive) - set(ADMIN_ROUTES)


@pytest.mark.parametrize("case", ADMIN_ROUTES, ids=_id)
def test_admin_routes_refuse_the_api_token_and_take_the_admin_token(
    api_client: Any, case: tuple[str, str]
) -> None:
    method, path = case
    forbidden = api_client.request(method, concrete(path), headers=bearer(API_TOKEN))
    assert forbidden.status_code == 403, forbidden.text
    assert "admin token" in forbidden.json()["detail"] and API_TOKEN not in forbidden.text
    allowed = api_client.request(method, concrete(path), headers=bearer(ADMIN_TOKEN))
    # 404 is a pass: the one-dead-letter routes name a task that does not exist; so is 422 for
    # a route whose body is required (POST /api/clients): auth passed, the empty body did not.
    assert allowed.status_code in (200, 202, 204, 404, 422), allowed.text


def test_every_console_route_needs_a_session_and_writes_a_csrf_token() -> None:
    assert len(CONSOLE) >= 10, "the console routes were not found"
    routes = {route.path: route for route in api_routes(APP)}
    unguarded = [case for case in CONSOLE if not needs_console_session(routes[case[1]])]
    assert not unguarded, f"console routes without a session check: {unguarded}"
    writes_without_csrf = [
        case for case in CONSOLE if case[0] == "POST" and not needs_csrf(routes[case[1]])
    ]
    assert not writes_without_csrf, writes_without_csrf


@pytest.mark.parametrize("case", CONSOLE, ids=_id)
def test_console_routes_refuse_tokens_without_a_session(
    api_client: Any, case: tuple[str, str]
) -> None:
    method, path = case
    for headers in ({}, bearer(ADMIN_TOKEN), basic("admin", ADMIN_TOKEN)):
        response = api_client.request(
            method, concrete(path), headers=headers, follow_redirects=False
        )
        if method == "GET" and "/fragments/" not in path:
            assert response.status_code == 303, (headers, response.text)
            assert response.headers["location"].startswith("/console/login")
        else:
            assert response.status_code == 401, (headers, response.text)


#: Static assets: the console's CSS and script, Swagger UI's bundle (nothing secret in them).
PUBLIC_MOUNTS = {"/metrics", "/console/static", "/static-offline-docs"}


def test_mounted_apps_need_admin_credentials(api_client: Any) -> None:
    guarded = [m for m in mounts(APP) if m.path not in PUBLIC_MOUNTS]  # metrics: localhost
    assert guarded, "the dashboard mount was not found"
    settings = Settings()
    for mount in guarded:
        url = mount.path + "/"
        for headers in (
            {},
            basic(settings.dashboard_user, API_TOKEN),
            basic(settings.dashboard_user, ADMIN_TOKEN + "x"),
            basic("root", ADMIN_TOKEN),
            bearer(ADMIN_TOKEN),
        ):
            assert api_client.get(url, headers=headers).status_code == 401, (url, headers)
        # Its HTML forms are exempt from JSON-only, not from credentials.
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert api_client.post(url, content=b"a=1", headers=form).status_code == 401
        admin = basic(settings.dashboard_user, ADMIN_TOKEN)
        assert api_client.get(url, headers=admin).status_code == 200
        assert api_client.post(url, content=b"a=1", headers={**form, **admin}).status_code != 415


# --- JSON only, size limit ---------------------------------------------------------------------


@pytest.mark.parametrize("case", WRITES, ids=_id)
def test_a_body_that_is_not_json_is_refused_with_415(
    api_client: Any, case: tuple[str, str]
) -> None:
    method, path = case
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = bearer(ADMIN_TOKEN)
        if content_type:
            headers["Content-Type"] = content_type
        response = api_client.request(method, concrete(path), content=b'{"a": 1}', headers=headers)
        assert response.status_code == 415, (content_type, response.text)
        assert "application/json" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [b'{"phone": ', b'{"phone": NaN}', b'{"score": Infinity}', b"\xff\xfe", b"[" * 2000],
    ids=["truncated", "nan", "infinity", "not-utf8", "too-deep"],
)
def test_malformed_json_is_a_422_with_a_clear_message(api_client: Any, body: bytes) -> None:
    headers = {**bearer(API_TOKEN), "Content-Type": "application/json"}
    for path in ("/api/tasks/notifications/sms", "/api/ingest/sqal"):
        response = api_client.post(path, content=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith("malformed JSON body: ")


def test_json_with_parameters_or_a_json_suffix_is_accepted(api_client: Any) -> None:
    # A valid JSON body missing a field: FastAPI's own 422 shows the body got through.
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = api_client.post(
            "/api/tasks/notifications/sms",
            content=b'{"phone": "+33612345678"}',
            headers={**bearer(API_TOKEN), "Content-Type": content_type},
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "message"]


def test_a_chunked_body_over_the_limit_is_a_413(api_client: Any) -> None:
    limit = Settings().max_request_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(limit // 10_000 + 1):
            yield b"1," * 5_000
        yield b"1]"

    response = api_client.post(
        "/api/ingest/sqal",
        content=chunks(),
        headers={**bearer(API_TOKEN), "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text


# --- bounded inputs, registered jobs only ------------------------------------------------------

BOUNDED_FORMATS = {"date", "date-time", "time"}


def unbounded(node: Any, root: dict[str, Any], where: str = "") -> list[str]:
    """Where a JSON schema admits input of any size: strings without maxLength (or enum or a
    date format), numbers without both bounds, arrays without maxItems, open objects."""
    if not isinstance(node, dict) or "const" in node or "enum" in node:
        return []
    if "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return unbounded(target, root, where)
    found: list[str] = []
    for combinator in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(combinator, []):
            found += unbounded(branch, root, where)
    kind = node.get("type")
    if kind == "string" and "maxLength" not in node and node.get("format") not in BOUNDED_FORMATS:
        found.append(f"{where}: string without maxLength")
    if kind in ("integer", "number"):
        low = "minimum" in node or "exclusiveMinimum" in node
        high = "maximum" in node or "exclusiveMaximum" in node
        if not (low and high):
            found.append(f"{where}: {kind} without both bounds")
    if kind == "array":
        if "maxItems" not in node:
            found.append(f"{where}: array without maxItems")
        found += unbounded(node.get("items", {}), root, f"{where}[]")
    if kind == "object" or "properties" in node:
        if node.get("additionalProperties") is not False:
            found.append(f"{where}: object that accepts unknown fields")
        for name, prop in node.get("properties", {}).items():
            found += unbounded(prop, root, f"{where}.{name}")
    if not kind and not any(c in node for c in ("anyOf", "oneOf", "allOf", "properties")):
        found.append(f"{where}: value of any type")
    return found


PAYLOADS = sorted(
    (name, job.payload)
    for name, job in REGISTRY.items()
    # Jobs of tests/support register here too when their module was imported first.
    if not job.payload.__module__.startswith("tests.")
)


def test_every_registered_job_has_a_closed_bounded_payload() -> None:
    assert len(PAYLOADS) >= 20, [name for name, _ in PAYLOADS]
    problems = {}
    for name, model in PAYLOADS:
        schema = model.model_json_schema()
        found = unbounded(schema, schema, model.__name__)
        if model.model_config.get("extra") != "forbid":
            found.append(f"{model.__name__}: model_config lacks extra='forbid'")
        if found:
            problems[name] = found
    assert not problems, problems


def test_every_request_body_and_parameter_in_the_openapi_schema_is_bounded() -> None:
    document = APP.openapi()
    # The generic enqueue takes any job's payload: the named job's model validates it, and
    # test_every_registered_job_has_a_closed_bounded_payload holds those models to these rules.
    # So does a workflow's step payload (POST /api/workflows, each step's `payload`).
    delegated = {("post", "/api/jobs/{name}"), ("post", "/api/workflows")}
    problems = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                problems += unbounded(parameter["schema"], document, f"{where} {parameter['name']}")
            if (method, path) in delegated:
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                problems += unbounded(media["schema"], document, f"{where} body")
    assert not problems, problems


def test_the_cli_enqueues_only_registered_jobs(redis_server: Any) -> None:
    from ops.cli import app as cli

    before = {key for key in redis_server.client.scan_iter("dramatiq:*")}
    result = CliRunner().invoke(cli, ["enqueue", "os.system", "--param", "command=id"])
    assert result.exit_code == 1
    assert "unknown job 'os.system'" in result.output
    for known in ("health_check", "send_sms", "train_pysr", "ingest_sqal_batch"):
        assert known in result.output
    assert not records().list(actor="os.system", limit=5)
    assert {key for key in redis_server.client.scan_iter("dramatiq:*")} <= before


def test_urls_in_messages_lose_their_password() -> None:
    assert mask_url("rediss://worker:s3cr:et@redis.internal:6380/0?ssl_ca_certs=/ca.pem") == (
        "rediss://worker:***@redis.internal:6380/0?ssl_ca_certs=/ca.pem"
    )
    assert (
        mask_url("postgresql+psycopg://app:pw@db/gaveurs")
        == "postgresql+psycopg://app:***@db/gaveurs"
    )
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_the_cli_does_not_print_the_redis_password(tmp_path: Path) -> None:
    password = "pw-" + uuid.uuid4().hex
    env = {**os.environ, "REDIS_URL": f"redis://worker:{password}@127.0.0.1:{free_port()}/0"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("gaveurs")), "status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "redis://worker:***@127.0.0.1" in done.stderr
    assert password not in done.stderr + done.stdout


def test_redaction_reaches_secrets_inside_lists() -> None:
    payload = {
        "items": [{"api_token": "t0k3n", "name": "ok"}, "plain"],
        "nested": {"smtp_password": "pw"},
        "phone": "+33612345678",
    }
    masked = redact_payload(payload, extra=("phone",))
    assert masked == {
        "items": [{"api_token": "***", "name": "ok"}, "plain"],
        "nested": {"smtp_password": "***"},
        "phone": "+336******78",
    }


# --- no secret in records, answers or worker logs ----------------------------------------------

SMTP_PASSWORD = "smtp-" + uuid.uuid4().hex
SMS_AUTH_TOKEN = "sms-" + uuid.uuid4().hex
SMS_SID = "ACsecurity" + uuid.uuid4().hex[:8]


class _RefuseLogins:
    """An SMTP server that asks for AUTH and refuses every password it is given (and keeps them,
    so the test knows the secret really travelled)."""

    def __init__(self) -> None:
        self.passwords: list[bytes] = []

    def __call__(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.passwords.append(data.password)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        return "250 accepted"


@pytest.fixture(scope="module")
def refusing_smtp() -> Iterator[tuple[int, _RefuseLogins]]:
    handler = _RefuseLogins()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=handler,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield port, handler
    controller.stop()


@pytest.fixture()
def live_workers(
    clean_redis: redis.Redis,
    demo_database: str,
    tmp_path: Path,
    refusing_smtp: tuple[int, _RefuseLogins],
) -> Iterator[tuple[SmsProvider, list[Path]]]:
    """Workers with live providers that fail: SMS to a closed port (routine queue) or to a
    provider that refuses our credentials (urgent queue), e-mail to a server refusing AUTH."""
    refusing = SmsProvider(sid=SMS_SID, token="not-" + SMS_AUTH_TOKEN)
    env = {
        "NOTIFY_BACKEND": "live",
        "NOTIFY_MAX_RETRIES": "0",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(refusing_smtp[0]),
        "SMTP_SECURITY": "none",
        "SMTP_USER": "gaveurs",
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "SMTP_TIMEOUT_S": "5",
        "SMS_ACCOUNT_SID": SMS_SID,
        "SMS_AUTH_TOKEN": SMS_AUTH_TOKEN,
        "SMS_TIMEOUT_S": "5",
    }
    logs = [tmp_path / "worker-routine.log", tmp_path / "worker-urgent.log"]
    closed = f"http://127.0.0.1:{free_port()}"
    client = clean_redis
    client.delete("gaveurs:unique:health_check:health")
    # Notifications left queued by earlier tests would fail here first and open the circuits.
    _clear_notifications(client)
    routine = WorkerProcess(
        client,
        module="actors",
        queues=("notifications", "default"),
        threads=2,
        env={**env, "SMS_BASE_URL": closed},
        log_path=logs[0],
    )
    urgent = WorkerProcess(
        client,
        module="actors",
        queues=("notifications_urgent",),
        threads=2,
        env={**env, "SMS_BASE_URL": refusing.url},
        log_path=logs[1],
    )
    try:
        yield refusing, logs
    finally:
        routine.stop()
        urgent.stop()
        refusing.stop()
        _clear_notifications(client)


def _clear_notifications(client: Any) -> None:
    """No notification queued and no provider circuit open."""
    for queue in ("notifications", "notifications_urgent"):
        broker().flush(queue)
    breakers = list(client.scan_iter(BREAKER_PREFIX + "*"))
    if breakers:
        client.delete(*breakers)


def _finished(api_client: Any, task_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = api_client.get(f"/api/tasks/status/{task_id}").json()
        return body if body["status"] in ("SUCCESS", "FAILURE") else None

    return wait_for(done, timeout=90, interval=0.2, what=f"{task_id} to finish")


@pytest.mark.slow
def test_no_secret_in_records_answers_or_worker_logs(
    api_client: Any,
    live_workers: tuple[SmsProvider, list[Path]],
    refusing_smtp: tuple[int, _RefuseLogins],
) -> None:
    provider, logs = live_workers
    auth = bearer(API_TOKEN)
    phone = "+33612345678"

    # Given jobs that use every provider secret and fail on the way
    def submit(path: str, **kwargs: Any) -> str:
        response = api_client.post(path, headers=auth, **kwargs)
        assert response.status_code == 202, response.text
        return str(response.json()["task_id"])

    notify = "/api/tasks/notifications"
    tasks = {
        "sms_closed_port": submit(f"{notify}/sms", json={"phone": phone, "message": "test"}),
        "sms_refused": submit(
            f"{notify}/sms", json={"phone": phone, "message": "test", "priority": "critical"}
        ),
        "email_refused": submit(
            f"{notify}/email",
            json={"to_email": "jean@example.org", "subject": "s", "body_html": "<p>b</p>"},
        ),
        "health_check": submit("/api/tasks/maintenance/health-check"),
    }
    done = {name: _finished(api_client, task_id) for name, task_id in tasks.items()}

    # Then they failed for the expected reasons, after really sending the secrets
    assert done["sms_closed_port"]["error"].startswith("ProviderUnavailable: SMS API")
    assert done["sms_refused"]["error"].startswith("ProviderRejected: SMS API 401")
    assert "535" in done["email_refused"]["error"]
    assert refusing_smtp[1].passwords and set(refusing_smtp[1].passwords) == {
        SMTP_PASSWORD.encode()
    }
    assert provider.requests >= 1

    # And no secret is in a record, an answer, a dead letter, Redis's copy or a worker's log
    texts = {f"record {name}": str(body) for name, body in done.items()}
    for path in (
        "/api/tasks?limit=500",
        "/api/tasks/list/active",
        "/api/tasks/stats",
        "/api/queues/notifications/dead-letters",
        "/api/queues/notifications_urgent/dead-letters",
        "/api/schedules",
        "/readyz",
        "/metrics/",
    ):
        texts[path] = api_client.get(path).text
    client = broker().client
    for name, task_id in tasks.items():
        texts[f"redis {name}"] = str(client.hgetall(f"gaveurs:jobs:job:{task_id}"))
    for queue in ("notifications", "notifications_urgent"):
        texts[f"redis {queue}.XQ"] = str(client.hgetall(f"dramatiq:{queue}.XQ.msgs"))
    # (a worker's log reaches its file through Dramatiq's main process, maybe after the record)
    wait_for(
        lambda: "ProviderUnavailable" in logs[0].read_text(errors="replace"),
        timeout=10,
        what="the worker log's failure",
    )
    for log in logs:
        texts[log.name] = log.read_text(errors="replace")
    credentials = base64.b64encode(f"{SMS_SID}:{SMS_AUTH_TOKEN}".encode()).decode()
    secrets = {
        "API_TOKEN": API_TOKEN,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "SMS_AUTH_TOKEN": SMS_AUTH_TOKEN,
        "SMS basic credentials": credentials,
    }
    leaks = [
        f"{secret} in {where}"
        for where, text in texts.items()
        for secret, value in secrets.items()
        if value in text
    ]
    assert not leaks, leaks
    # Personal data is masked in the records too
    assert phone not in texts["record sms_closed_port"] and "+336******78" in str(
        done["sms_closed_port"]["args"]
    )

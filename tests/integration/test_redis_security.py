"""Redis with ACL users and TLS: the whole stack runs with exactly the ACL the README documents.

A throw-away redis-server gets the README's `user ...` lines as its ACL file (the default user
off) plus a test-only admin user, and listens on a plain and a TLS port (certificates from a
throw-away CA). Real processes (worker, uvicorn API, clock, exporter) reach it through
REDIS_URL; afterwards Redis's ACL LOG must hold no denied command, key or channel. They share a
database of their own: its job journal must not send this Redis's jobs to the session's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis

from domain.platform import db
from domain.platform.settings import Settings
from ops.local_redis import free_port, stop_server
from runtime import redis_client
from tests.conftest import ADMIN_TOKEN, API_TOKEN
from tests.support.certificates import write_certificates
from tests.support.polling import wait_for
from tests.support.scheduler import clock_process
from tests.support.sockets import listening_on
from tests.support.workers import ROOT, WorkerProcess

pytestmark = pytest.mark.slow

APP_PASSWORD = "app-" + os.urandom(12).hex()
METRICS_PASSWORD = "metrics-" + os.urandom(12).hex()
ADMIN_PASSWORD = "admin-" + os.urandom(12).hex()


def documented_acl() -> list[str]:
    """The ACL lines of the README's Security section: this test's contract."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```acl\n(.*?)```", section, re.DOTALL)
    assert block, "the README's Security section has no ```acl block"
    lines = [line for line in block.group(1).splitlines() if line.startswith("user ")]
    assert any(line.startswith("user default off") for line in lines)
    return lines


@dataclass
class SecuredRedis:
    port: int
    tls_port: int
    ca: Path
    admin: redis.Redis
    database_url: str

    def url(self, user: str, password: str, *, tls: bool = False) -> str:
        if tls:
            return (
                f"rediss://{user}:{password}@127.0.0.1:{self.tls_port}/0"
                f"?ssl_ca_certs={quote(str(self.ca))}"
            )
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"

    @property
    def app_url(self) -> str:
        return self.url("gaveurs", APP_PASSWORD)

    def env(self, redis_url: str) -> dict[str, str]:
        # A requested refresh waits out its debounce window (60 s by default): not here.
        return {
            "REDIS_URL": redis_url,
            "DATABASE_URL": self.database_url,
            "AGGREGATES_DEBOUNCE_MS": "50",
            # Dead workers are found by the broker-maintenance job this test runs, not first
            # by a random broker call of these processes (seen once, under load).
            "BROKER_MAINTENANCE_CHANCE": "0",
        }

    def denials(self) -> list[dict[str, Any]]:
        return [
            {key: entry.get(key) for key in ("username", "reason", "context", "object")}
            for entry in self.admin.acl_log()
        ]


@pytest.fixture(scope="module")
def secured_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredRedis]:
    directory = tmp_path_factory.mktemp("acl-redis")
    certs = write_certificates(directory)
    acl = [
        line.replace(">APP_PASSWORD", f">{APP_PASSWORD}").replace(
            ">METRICS_PASSWORD", f">{METRICS_PASSWORD}"
        )
        for line in documented_acl()
    ]
    acl.append(f"user admin on >{ADMIN_PASSWORD} ~* &* +@all")  # the test's own eyes
    (directory / "users.acl").write_text("\n".join(acl) + "\n")
    port, tls_port = free_port(), free_port()
    binary = shutil.which("redis-server")
    assert binary, "redis-server not found: `make test` installs it"
    process = subprocess.Popen(
        [
            binary,
            "--port", str(port),
            "--tls-port", str(tls_port),
            "--bind", "127.0.0.1",
            "--dir", str(directory),
            "--save", "",
            "--appendonly", "no",
            "--aclfile", str(directory / "users.acl"),
            "--tls-cert-file", str(certs["cert"]),
            "--tls-key-file", str(certs["key"]),
            "--tls-ca-cert-file", str(certs["ca"]),
            "--tls-auth-clients", "no",
        ],
        stdout=(directory / "redis.log").open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    admin = redis.Redis(host="127.0.0.1", port=port, username="admin", password=ADMIN_PASSWORD)
    wait_for(lambda: _answers(admin), timeout=30, interval=0.1, what="redis-server with ACL")
    database_url = f"sqlite:///{directory}/gaveurs.db"
    db.migrate(database_url)
    try:
        yield SecuredRedis(port, tls_port, certs["ca"], admin, database_url)
    finally:
        stop_server(process, directory)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@contextmanager
def api_process(env: dict[str, str], log: Path) -> Iterator[str]:
    """A real uvicorn serving the API with `env` over the session's; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(f"{base}/healthz"), timeout=60, interval=0.2, what="the API")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def exporter_process(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.exporter"],
        cwd=ROOT,
        env={**os.environ, **env, "EXPORTER_PORT": str(port)},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: _up(url), timeout=60, interval=0.2, what="the exporter")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class Api:
    """The API process seen by a client with the API token (or the admin token)."""

    def __init__(self, base: str, *, denials: Callable[[], list[dict[str, Any]]]) -> None:
        self.base = base
        self.denials = denials  # shown when a job does not end as expected

    def send(self, method: str, path: str, *, admin: bool = False, **kwargs: Any) -> Any:
        token = ADMIN_TOKEN if admin else API_TOKEN
        response = httpx.request(
            method,
            self.base + path,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            **kwargs,
        )
        assert response.status_code in (200, 202), (method, path, response.text)
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        response = httpx.get(self.base + path, timeout=30, **kwargs)
        assert response.status_code == 200, (path, response.text)
        return response.json() if "json" in response.headers["content-type"] else response.text

    def submit(self, path: str, **kwargs: Any) -> str:
        return str(self.send("POST", path, **kwargs)["task_id"])

    def state(self, task_id: str) -> str:
        return str(self.get(f"/api/tasks/status/{task_id}")["status"])

    def wait(self, task_id: str, state: str) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            record: dict[str, Any] = self.get(f"/api/tasks/status/{task_id}")
            return record if record["status"] in (state, "SUCCESS", "FAILURE") else None

        try:
            record = wait_for(ended, timeout=90, interval=0.2, what=f"{task_id} to end")
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}; Redis denied {self.denials()}") from None
        assert record["status"] == state, (record["error"], self.denials())
        return record

    def dead_letters(self, queue: str) -> set[str]:
        page = self.get(f"/api/queues/{queue}/dead-letters")
        return {letter["task_id"] for letter in page["dead_letters"]}


def worker(secured: SecuredRedis, url: str, tmp: Path, *queues: str) -> WorkerProcess:
    return WorkerProcess(
        secured.admin,
        module="actors",
        queues=queues,
        threads=2,
        env={**secured.env(url), "OUTBOX_DIR": str(tmp / "outbox")},
        log_path=tmp / f"worker-{'-'.join(queues)}.log",
    )


def test_the_documented_acl_runs_api_worker_clock_and_exporter(
    secured_redis: SecuredRedis, tmp_path: Path
) -> None:
    secured = secured_redis
    secured.admin.acl_log_reset()
    with api_process(secured.env(secured.app_url), tmp_path / "api.log") as base:
        api = Api(base, denials=secured.denials)
        # Given a job accepted while no worker runs: it waits, PENDING
        health = api.submit("/api/tasks/maintenance/health-check")
        assert api.state(health) == "PENDING"
        queued = api.submit("/api/tasks/ml/retrain-all")  # ml_light: nobody consumes it here
        # When a worker, a clock and the exporter start with their documented users
        consumer = worker(secured, secured.app_url, tmp_path, "default", "notifications")
        clock = clock_process(
            tmp_path / "clock.log",
            "--start", "2026-01-05T05:59:30", "--speed", "60", "--poll", "0.5",
            env=secured.env(secured.app_url),
        )  # fmt: skip
        metrics_url = secured.url("gaveurs-metrics", METRICS_PASSWORD)
        try:
            with exporter_process(secured.env(metrics_url), tmp_path / "exporter.log") as exporter:
                # Then every kind of Redis work succeeds: Lua dispatch and records, INFO,
                # results, rate limiter and breaker, cancel (aborts), dead letters, maintenance
                assert api.wait(health, "SUCCESS")["result"]["checks"]
                # (the e-mail goes through a half-open breaker: its probe reads Redis's TIME)
                breaker = "gaveurs:breaker:smtp"
                secured.admin.hset(breaker, mapping={"failures": 99, "open_until_ms": 0})
                email = {"to_email": "jean@example.org", "subject": "s", "body_html": "<p>b</p>"}
                sent = api.submit("/api/tasks/notifications/email", json=email)
                assert api.wait(sent, "SUCCESS")["result"]["status"] == "sent"
                assert not secured.admin.exists(breaker)  # the probe succeeded: closed
                api.send("DELETE", f"/api/tasks/cancel/{queued}")
                missing = api.submit("/api/tasks/notifications/feedback-ack?feedback_id=2147483647")
                api.wait(missing, "FAILURE")
                assert missing in api.dead_letters("notifications")
                api.send("POST", f"/api/queues/notifications/dead-letters/{missing}/requeue")
                wait_for(
                    lambda: missing in api.dead_letters("notifications"),
                    timeout=90,
                    what="the re-driven job to be dead-lettered again",
                )
                api.send("DELETE", "/api/queues/notifications/dead-letters", admin=True)
                # A dead worker in the heartbeats makes Dramatiq's maintenance list its acks
                secured.admin.zadd("dramatiq:__heartbeats__", {"gone-worker": 0})
                upkeep = api.submit("/api/tasks/maintenance/broker-maintenance")
                assert api.wait(upkeep, "SUCCESS")["result"]["dead_workers"] >= 1
                # The clock claims and sends ticks; the exporter reads everything
                wait_for(
                    lambda: api.get("/api/schedules")["schedulers_alive"] >= 1,
                    timeout=60,
                    what="the clock's heartbeat",
                )
                scrape = httpx.get(exporter, timeout=10).text
                assert "gaveurs_exporter_redis_up 1.0" in scrape, scrape[-2000:]
                assert 'gaveurs_workers_alive{queue="default"} 1.0' in scrape
                # Metrics of the worker and the exporter, and the API, listen on loopback only
                for port in (consumer.metrics_port, int(exporter.split(":")[2].split("/")[0])):
                    assert listening_on(port) == {"127.0.0.1"}, port
                assert listening_on(int(base.rsplit(":", 1)[1])) == {"127.0.0.1"}
                for path in ("/api/tasks/stats", "/api/queues", "/api/tasks?limit=50", "/readyz"):
                    api.get(path)
                assert "default" in api.get("/dashboard/", auth=("admin", ADMIN_TOKEN))
        finally:
            clock.terminate()
            clock.wait(timeout=20)
            consumer.stop()
        assert api.state(queued) == "REVOKED"

    # And Redis denied nothing to any of them
    assert secured.denials() == []


def test_the_acl_denies_what_the_app_does_not_need(secured_redis: SecuredRedis) -> None:
    secured = secured_redis
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=secured.port).ping()  # the default user is off
    app = redis.Redis.from_url(secured.app_url)
    for command in (
        "FLUSHALL",
        "FLUSHDB",
        "CONFIG GET *",
        "ACL LIST",
        "SCRIPT FLUSH",
        "SWAPDB 0 1",
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command.split())
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.set("somebody-else:key", 1)  # outside the documented key patterns
    metrics = redis.Redis.from_url(secured.url("gaveurs-metrics", METRICS_PASSWORD))
    assert metrics.llen("dramatiq:default") >= 0
    with pytest.raises(redis.exceptions.NoPermissionError):
        metrics.set("gaveurs:jobs:x", 1)  # the exporter only reads
    secured.admin.acl_log_reset()


def test_tls_urls_reach_the_worker_and_the_api(secured_redis: SecuredRedis, tmp_path: Path) -> None:
    secured = secured_redis
    tls_url = secured.url("gaveurs", APP_PASSWORD, tls=True)
    # redis_client keeps the URL's TLS options (redis-py passes query arguments through)
    client = redis_client(Settings(redis_url=tls_url))
    assert client.connection_pool.connection_kwargs["ssl_ca_certs"] == str(secured.ca)
    assert client.ping()
    # Without our CA the server's certificate is refused; plain text to the TLS port fails
    untrusted = f"rediss://gaveurs:{APP_PASSWORD}@127.0.0.1:{secured.tls_port}/0"
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        redis.Redis.from_url(untrusted, socket_connect_timeout=5).ping()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(untrusted.replace("rediss:", "redis:"), socket_timeout=5).ping()
    secured.admin.acl_log_reset()

    with api_process(secured.env(tls_url), tmp_path / "api.log") as base:
        api = Api(base, denials=secured.denials)
        task = api.submit("/api/tasks/maintenance/refresh-aggregates")
        assert api.state(task) == "PENDING"
        consumer = worker(secured, tls_url, tmp_path, "default")
        try:
            done = api.wait(task, "SUCCESS")
        finally:
            consumer.stop()
    assert done["worker"] and done["result"]["status"] == "success"
    assert secured.denials() == []

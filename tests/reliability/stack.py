"""One scenario's private platform: its own redis-server (which the scenario may kill, restart or
stall), its own SQLite database, a real API process and real worker processes on them.

The test process talks to it only from outside, as an operator would: HTTP to the API, a plain
Redis client for inspection, and the SQLite ledger of executions written by the suite's jobs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from domain.platform import db
from ops.local_redis import RedisServer, free_port
from ops.local_sentinel import LocalSentinels
from runtime import JobRecords, State
from tests.conftest import ADMIN_TOKEN, API_TOKEN
from tests.reliability import jobs
from tests.support.api import ApiProcess
from tests.support.polling import wait_for
from tests.support.workers import ROOT, WorkerProcess

#: Multiplies the job counts: 1 in `make test`, more in `make soak`.
SCALE = int(os.environ.get("RELIABILITY_SCALE", "1"))
REPORTS = Path(os.environ.get("RELIABILITY_REPORTS", "var/reliability"))


@dataclass
class Report:
    """What a scenario prints: the issue's table of figures, one line per scenario."""

    scenario: str
    accepted: int = 0
    enqueued: int = 0
    unique_completions: int = 0
    executions: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    stuck_in_acks: int = 0
    lost: int = 0
    recovery_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        recovery = "-" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        extra = ", ".join(f"{k}={v}" for k, v in self.notes.items())
        return (
            f"[reliability] {self.scenario}: accepted {self.accepted}, enqueued {self.enqueued}, "
            f"unique completions {self.unique_completions}, executions {self.executions}, "
            f"duplicates {self.duplicates}, dead-lettered {self.dead_lettered}, "
            f"stuck in acks {self.stuck_in_acks}, lost {self.lost}, recovery {recovery}"
            + (f" ({extra})" if extra else "")
        )


class Stack:
    def __init__(
        self,
        tmp: Path,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        sentinels: bool = False,
        **settings: str,
    ) -> None:
        self.tmp = tmp
        # With `sentinels`, a master, a replica and three Sentinels: `redis` is the first master
        # and `client` follows the master across failovers.
        self.ha = LocalSentinels(appendonly=appendonly) if sentinels else None
        self.redis = (
            self.ha.master()
            if self.ha
            else RedisServer(appendonly=appendonly, appendfsync=appendfsync)
        )
        self.client = self.ha.client() if self.ha else self.redis.client
        self.db_path = tmp / "reliability.db"
        db.migrate(f"sqlite:///{self.db_path}")
        self.env = {
            "ENVIRONMENT": "test",
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "API_TOKEN": API_TOKEN,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "EXPORT_DIR": str(tmp / "exports"),
            "BACKUP_DIR": str(tmp / "backups"),
            "WORKER_HEARTBEAT_TIMEOUT_MS": "5000",
            **(
                {"REDIS_SENTINELS": self.ha.spec, "REDIS_SENTINEL_MASTER": self.ha.name}
                if self.ha
                else {}
            ),
            **settings,
        }
        os.environ["DATABASE_URL"], saved = self.env["DATABASE_URL"], os.environ["DATABASE_URL"]
        try:
            jobs.prepare()
        finally:
            os.environ["DATABASE_URL"] = saved
        self.records = JobRecords(self.client, retention_s=86_400)
        self.workers: list[WorkerProcess] = []
        self.api: ApiProcess | None = None

    # -- processes ----------------------------------------------------------------------

    def start_api(self, **settings: str) -> ApiProcess:
        self.api = ApiProcess(
            {**self.env, **settings},
            command=("-m", "tests.reliability.serve"),
            log=self.tmp / "api.log",
        )
        return self.api

    def start_worker(
        self,
        *,
        threads: int = 4,
        prefix: tuple[str, ...] = (),
        queues: tuple[str, ...] = ("default",),
        **settings: str,
    ) -> WorkerProcess:
        worker = WorkerProcess(
            self.client,
            module="tests.reliability.jobs",
            queues=queues,
            threads=threads,
            env={**self.env, **settings},
            log_path=self.tmp / f"worker-{len(self.workers)}.log",
            command_prefix=prefix,
        )
        self.workers.append(worker)
        return worker

    @contextmanager
    def maintenance(self, every_s: float = 2.0) -> Iterator[None]:
        """Broker maintenance sent through the API every `every_s`, as the clock sends it every
        minute in production: dead workers' messages back, lost jobs resent."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every_s):
                try:
                    assert self.api is not None
                    self.api.post("/api/jobs/broker_maintenance", json={})
                except Exception:  # the API or Redis is down on purpose: try again later
                    continue

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    def scrape_exporter(self) -> str:
        """One scrape of a real `python -m ops.exporter` on this stack (started and stopped)."""
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.exporter"],
            cwd=ROOT,
            env={**os.environ, **self.env, "EXPORTER_PORT": str(port)},
            stdout=(self.tmp / "exporter.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            text: str = wait_for(
                lambda: _scrape(f"http://127.0.0.1:{port}/metrics"), timeout=60, what="exporter"
            )
            return text
        finally:
            process.terminate()
            process.wait(timeout=20)

    def close(self) -> None:
        for worker in self.workers:
            if worker.alive:
                worker.stop()
        if self.api is not None:
            self.api.stop()
        if self.ha is not None:
            self.ha.stop()
        else:
            self.redis.stop()

    # -- jobs -----------------------------------------------------------------------------

    def submit(self, name: str, payload: dict[str, Any], **headers: str) -> str:
        assert self.api is not None
        response = self.api.post(f"/api/jobs/{name}", json=payload, headers=headers)
        assert response.status_code == 202, response.text
        return str(response.json()["task_id"])

    def submit_effects(self, n: int, *, ms: int = 20, prefix: str = "job") -> dict[str, str]:
        """n `rel_effect` jobs through the API; key -> task_id."""
        run = uuid.uuid4().hex[:6]
        keys = [f"{prefix}-{run}-{i}" for i in range(n)]
        return {key: self.submit("rel_effect", {"key": key, "ms": ms}) for key in keys}

    # -- what happened --------------------------------------------------------------------

    def _ledger(self, query: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path, timeout=30) as connection:
            return list(connection.execute(query))

    def executions(self) -> Counter[str]:
        return Counter(key for (key,) in self._ledger("SELECT key FROM rel_executions"))

    def duplicate_evidence(self, keys: dict[str, str]) -> dict[str, Any]:
        """For each key run more than once (key -> task_id): its runs (pid, time) and its record's
        attempt timeline, to tell a message sent twice from a delivery taken for lost."""
        runs = self._ledger("SELECT key, pid, at FROM rel_executions ORDER BY at")
        evidence: dict[str, Any] = {}
        for key, count in self.executions().items():
            if key in keys and count > 1:
                record = self.record(keys[key])
                evidence[key] = {
                    "runs": [(pid, round(at, 3)) for k, pid, at in runs if k == key],
                    "timeline": record.timeline if record else None,
                }
        return evidence

    def effects(self) -> set[str]:
        return {key for (key,) in self._ledger("SELECT key FROM rel_effects")}

    def wait_effects(self, keys: set[str] | list[str], *, timeout: float) -> float:
        """Seconds until every key's effect is applied."""
        started = time.monotonic()
        wanted = set(keys)
        wait_for(
            lambda: wanted <= self.effects(),
            timeout=timeout,
            interval=0.25,
            what=f"{len(wanted - self.effects())} of {len(wanted)} effects",
        )
        return time.monotonic() - started

    def dead_letters(self, queue: str = "default") -> int:
        return int(self.client.zcard(f"dramatiq:{queue}.XQ"))

    def stuck_in_acks(self) -> int:
        """Messages held in the ack set of a worker process that is gone or done."""
        total = 0
        for key in self.client.scan_iter("dramatiq:__acks__.*", count=1000):
            total += int(self.client.scard(key))
        return total

    def record(self, task_id: str) -> Any:
        return self.records.get(task_id)

    def states(self, task_ids: list[str]) -> Counter[State]:
        return Counter(r.state for r in self.records.get_many(task_ids))

    def report(self, scenario: str, keys: list[str], **fields: Any) -> Report:
        executions = self.executions()
        effects = self.effects()
        expected = fields.pop("expected_executions", {})
        wanted = set(keys)
        report = Report(
            scenario=scenario,
            accepted=fields.pop("accepted", len(keys)),
            enqueued=fields.pop("enqueued", len(keys)),
            unique_completions=len(effects & wanted),
            executions=sum(executions[key] for key in wanted),
            duplicates=sum(max(0, executions[key] - expected.get(key, 1)) for key in wanted),
            dead_lettered=self.dead_letters(),
            stuck_in_acks=self.stuck_in_acks(),
            lost=len(wanted - effects),
            **fields,
        )
        REPORTS.mkdir(parents=True, exist_ok=True)
        (REPORTS / f"{scenario}.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
        return report


def _scrape(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None

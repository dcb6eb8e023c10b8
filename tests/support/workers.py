"""Real Dramatiq worker processes started the way the Procfile starts them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from ops.local_redis import free_port
from runtime import live_workers

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """`dramatiq <module> --queues ...` in its own process group, so a test can SIGKILL it all."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        module: str = "tests.support.jobs",
        queues: tuple[str, ...] = ("default",),
        threads: int = 4,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        command_prefix: tuple[str, ...] = (),
        shutdown_timeout_ms: int = 5000,
        launcher_options: tuple[str, ...] | None = None,
    ) -> None:
        self.client = client
        self.log_path = log_path or Path(os.environ.get("GAVEURS_TEST_TMP", "/tmp")) / "worker.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        known = {w["pid"] for w in live_workers(client)}
        self.metrics_port = free_port()
        #: Dramatiq's Prometheus samples of this worker: removed when it is stopped (or with the
        #: session's directory if the run is killed).
        self.prom_dir = tempfile.mkdtemp(prefix="prom-", dir=os.environ.get("GAVEURS_TEST_TMP"))
        metrics_env = {
            "dramatiq_prom_port": str(self.metrics_port),
            "dramatiq_prom_db": self.prom_dir,
            # Idle consumers poll every 100 ms instead of up to 1 s, so timings in tests
            # (retry delays, cancel, recovery) measure our code rather than polling.
            "dramatiq_worker_timeout": "100",
        }
        command = [
            *command_prefix,
            sys.executable,
            "-m",
            "dramatiq",
            # Dramatiq's CLI calls `module:setup` after importing it: the runtime's entry point.
            module if ":" in module else f"{module}:setup",
            "--processes",
            "1",
            "--threads",
            str(threads),
            "--queues",
            *queues,
            "--worker-shutdown-timeout",
            str(shutdown_timeout_ms),
        ]
        if launcher_options is not None:
            # Through the Procfile's launcher (ops.worker), which also replaces recycled processes.
            command = [
                *command_prefix,
                sys.executable,
                "-m",
                "ops.worker",
                "--module",
                module if ":" in module else f"{module}:setup",
                "--metrics-port",
                str(self.metrics_port),
                "--threads",
                str(threads),
                "--worker-shutdown-timeout",
                str(shutdown_timeout_ms),
                *launcher_options,
                "--queues",
                *queues,
            ]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **metrics_env, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not ({w["pid"] for w in live_workers(client)} - known):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {self.log_path}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole worker (main and child processes), as a crash or OOM kill would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._closed()

    def terminate(self) -> None:
        """SIGTERM, as a PaaS sends before a restart; returns once the process has exited."""
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)
        self._closed()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._closed()

    def _closed(self) -> None:
        """Once the process has exited: its log closed, its metrics directory removed."""
        if not self.log.closed:
            self.log.close()
        shutil.rmtree(self.prom_dir, ignore_errors=True)

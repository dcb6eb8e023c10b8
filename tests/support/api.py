"""A real API process (`python -m api.serve`, as the Procfile runs it) on a free port, for tests
that need the HTTP server in its own process with its own environment (its own Redis, a Redis
that is down)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ops.local_redis import free_port
from tests.conftest import API_TOKEN
from tests.support.workers import ROOT

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


class ApiProcess:
    def __init__(
        self, env: dict[str, str], *, command: tuple[str, ...] | None = None, log: Path
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = list(command or ("-m", "api.serve", "--port"))
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, *argv, str(self.port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, headers=AUTH, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.get("/healthz", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"API did not start; see {log}") from None
                time.sleep(0.1)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()

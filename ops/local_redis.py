"""A real redis-server on a free port in its own temp directory, for tests and benchmarks."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """`appendonly` turns AOF persistence on (`appendfsync`: always, everysec or no); without
    it the server keeps nothing across a restart. `extra_args` are more redis-server options
    (`--replicaof`, say). Fault tests use kill/start/pause/resume."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        bind: tuple[str, ...] = ("127.0.0.1",),
        extra_args: tuple[str, ...] = (),
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: `make test` and `make bench` install it")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gaveurs-redis-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            *bind,
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--appendfsync",
            appendfsync,
            *extra_args,
        ]
        if set(bind) - {"127.0.0.1", "::1"}:
            # Test hosts (ops/netns.py) reach it on their private veth pairs, unauthenticated.
            self.args += ["--protected-mode", "no"]
        self.client = redis.Redis.from_url(self.url)
        self.start()

    def start(self) -> None:
        """Start (or start again, on the same port and directory) and wait until it answers."""
        running: subprocess.Popen[bytes] | None = getattr(self, "process", None)
        if running is not None and running.poll() is None:
            # A second server on the port would fail to bind while the first answered the
            # ping, and `stop()` would then stop the dead one: the first would outlive the run.
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash. What survives is what the AOF had on disk."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the server stalls; connections stay open, commands get no answer."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()  # a stopped process would not act on SIGTERM
        stop_server(self.process, self.dir)


def stop_server(
    process: subprocess.Popen[bytes], directory: Path, *, timeout_s: float = 15
) -> None:
    """Stop a throw-away server politely, forcefully if it lingers, and remove its directory."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)
    shutil.rmtree(directory, ignore_errors=True)

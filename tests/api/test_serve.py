"""The web process (`python -m api.serve`, the Procfile's `web`): several server processes, each
with its own listening socket on the port, supervised, restarted, stopped together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.serve import server_config
from ops.local_redis import free_port
from tests.support.polling import wait_for
from tests.support.production import PRODUCTION_KEYS
from tests.support.workers import ROOT

pytestmark = pytest.mark.slow


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def listening_sockets(port: int) -> int:
    """LISTEN entries for the port in the kernel's socket table (one per server process)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if int(local.split(":")[1], 16) == port and state == "0A":
            count += 1
    return count


def accepted(pid: int, port: int) -> int:
    """Established connections on the port whose socket the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture()
def web(demo_database: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        stdout=(tmp_path / "web.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), timeout=60, what="the web process")
    yield process, port
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_two_processes_each_listen_are_restarted_and_stop_together(
    web: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = web
    url = f"http://127.0.0.1:{port}"
    # Given two server processes under the supervisor, each with its own listening socket
    servers = sorted(
        wait_for(lambda: len(kids := children(process.pid)) == 2 and kids, what="servers")
    )
    wait_for(lambda: listening_sockets(port) == 2, what="two listening sockets")
    # that new connections are spread over (16 held open: all on one would be 2 in 65,536)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
    try:
        spread = wait_for(
            lambda: sum(n := [accepted(pid, port) for pid in servers]) == 16 and n,
            what="16 accepted connections",
        )
        assert min(spread) > 0, spread
    finally:
        for conn in held:
            conn.close()
    # When one of them is SIGKILLed, the supervisor starts another and the port keeps answering
    victim = servers[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: healthy(url), what="the survivor")
    restarted = wait_for(
        lambda: len(kids := children(process.pid)) == 2 and victim not in kids and kids,
        timeout=30,
        what="a replacement server",
    )
    wait_for(lambda: listening_sockets(port) == 2 and healthy(url), what="two listeners again")
    # And SIGTERM stops everything gracefully: the supervisor exits 0, no server is left
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in restarted)
    assert listening_sockets(port) == 0


def test_a_busy_port_is_a_clear_error(demo_database: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "api.serve", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stdout + done.stderr
    assert time.monotonic() - started < 30


def test_servers_that_cannot_start_stop_the_supervisor_with_their_reason(
    demo_database: str,
) -> None:
    # A refused production setting: each server fails while loading the app
    done = subprocess.run(
        [sys.executable, "-m", "api.serve", "--port", str(free_port()), "--workers", "2"],
        cwd=ROOT,
        env={
            **os.environ,
            "APP_ENV": "production",
            "ENVIRONMENT": "production",
            "NOTIFY_BACKEND": "file",
            **PRODUCTION_KEYS,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "NOTIFY_BACKEND=file is refused" in done.stderr
    assert "keep failing at start" in done.stderr


def _get(conn: socket.socket, path: str) -> bytes:
    """One keep-alive GET on `conn`, its whole response read (head and Content-Length body)."""
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection before answering"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head


def test_idle_keep_alive_connections_are_kept_api_keepalive_s_then_closed(
    demo_database: str, tmp_path: Path
) -> None:
    # By default longer than a PaaS router's or load balancer's idle timeout (AWS ALB 60 s), so
    # the router, not the server, closes an idle connection (uvicorn's own default is 5 s)
    assert server_config().timeout_keep_alive == 75
    # Given the web process with idle keep-alive connections kept 2 s
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env={**os.environ, "API_KEEPALIVE_S": "2"},
        stdout=(tmp_path / "web.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), timeout=60, what="the web process")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            assert _get(conn, "/healthz").startswith(b"HTTP/1.1 200")
            # When the connection waits 0.5 s, it still serves the next request
            time.sleep(0.5)
            assert _get(conn, "/healthz").startswith(b"HTTP/1.1 200")
            # And idle 2 s after that answer, the server closes it (well before uvicorn's 5 s)
            began = time.monotonic()
            assert conn.recv(1) == b""
            assert time.monotonic() - began < 4.5
    finally:
        process.terminate()
        process.wait(timeout=30)

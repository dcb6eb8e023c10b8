"""The web process's HTTP protocol (api/http_protocol.py): a response of known length leaves in
one write, head and body together; a streamed response's head still leaves at once. A real
uvicorn server (uvloop, the protocol under test) on a free port, read with a raw socket."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from api.http_protocol import OneWriteHttpToolsProtocol
from ops.local_redis import free_port

BODY = b'{"status":"submitted"}'


class Gate:
    """The app's pause between its head and its body: the test sees the socket meanwhile."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.release: asyncio.Event | None = None

    async def wait(self) -> None:
        self.loop, self.release = asyncio.get_running_loop(), asyncio.Event()
        self.started.set()
        await self.release.wait()

    def open(self) -> None:
        assert self.loop is not None and self.release is not None
        self.loop.call_soon_threadsafe(self.release.set)


def app_with(gate: Gate) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        headers = [(b"content-type", b"application/json")]
        if path != "/stream":
            headers.append((b"content-length", str(len(BODY)).encode()))
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        if path == "/fail":
            await gate.wait()
            raise RuntimeError("the app failed after its head")
        if scope["method"] != "HEAD":
            await gate.wait()
        await send({"type": "http.response.body", "body": BODY})

    return app


@pytest.fixture
def served() -> Iterator[tuple[int, Gate]]:
    gate = Gate()
    port = free_port()
    config = uvicorn.Config(
        app_with(gate), host="127.0.0.1", port=port, loop="uvloop",
        http=OneWriteHttpToolsProtocol, log_level="critical", lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield port, gate
    server.should_exit = True
    thread.join(10)


def request(port: int, method: str, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def readable(sock: socket.socket, timeout_s: float = 0.2) -> bool:
    return bool(select.select([sock], [], [], timeout_s)[0])


def read_all(sock: socket.socket, until: bytes) -> bytes:
    received = b""
    while until not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_a_response_of_known_length_leaves_head_and_body_together(
    served: tuple[int, Gate],
) -> None:
    port, gate = served
    with request(port, "POST", "/enqueue") as sock:
        # Given the app has sent its head (with a Content-Length) and not yet its body
        assert gate.started.wait(5)
        # Then nothing has been written: the head waits for the body
        assert not readable(sock)
        # When the body is sent, the whole answer arrives, in one piece
        gate.open()
        assert readable(sock, 5)
        time.sleep(0.05)  # a second write, had there been one, would be here by now
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 202 Accepted\r\n")
        assert first.endswith(b"\r\n\r\n" + BODY)


def test_a_streamed_response_sends_its_head_at_once(served: tuple[int, Gate]) -> None:
    port, gate = served
    with request(port, "GET", "/stream") as sock:
        assert gate.started.wait(5)
        assert readable(sock, 5)
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 202 Accepted\r\n")
        assert b"transfer-encoding: chunked" in head
        gate.open()
        assert BODY in read_all(sock, b"0\r\n\r\n")


def test_a_head_request_is_answered_without_a_body(served: tuple[int, Gate]) -> None:
    port, _ = served
    with request(port, "HEAD", "/enqueue") as sock:
        answer = read_all(sock, b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 202 Accepted\r\n")
        assert f"content-length: {len(BODY)}".encode() in answer


def test_an_app_failing_after_its_head_still_sends_the_head_then_closes(
    served: tuple[int, Gate],
) -> None:
    port, gate = served
    with request(port, "POST", "/fail") as sock:
        assert gate.started.wait(5)
        gate.open()
        answer = read_all(sock, b"never")  # until the server closes the connection
        assert answer.startswith(b"HTTP/1.1 202 Accepted\r\n")
        assert answer.endswith(b"\r\n\r\n")


def test_keep_alive_requests_on_one_connection_are_each_answered_whole(
    served: tuple[int, Gate],
) -> None:
    port, gate = served
    with request(port, "HEAD", "/first") as sock:
        assert read_all(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 202")
        sock.sendall(b"POST /second HTTP/1.1\r\nHost: test\r\n\r\n")
        assert gate.started.wait(5)
        gate.open()
        assert read_all(sock, BODY).endswith(b"\r\n\r\n" + BODY)

"""uvicorn's httptools protocol, writing a response of known length in one socket write.

uvicorn writes the status line and headers when the app sends `http.response.start`, and the
body when it sends `http.response.body`: two system calls (and two loopback or network
deliveries) for a 202 of 300 bytes, the largest single cost of an enqueue in the server's profile
(README, Benchmarks, "API enqueue, fourth pass"). Here a head that declares a Content-Length is
held until the body's first write and leaves with it. Everything else is uvicorn's own code:
parsing, keep-alive, pipelining, flow control, errors.

A head is written at once, as before, when the body's length is unknown (chunked streaming,
server-sent events: a client waits for the head) or the request is a HEAD (no body follows).
A response closed before its body (the app failed after its start) still sends its head first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _HeadHolding:
    """The transport as one response sees it: the head of a response of known length waits for
    the body's first write (uvicorn's cycle calls only write, close and is_closing)."""

    __slots__ = ("_transport", "_cycle", "_head", "_head_seen")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
            return
        cycle = self._cycle
        # The first write once the response started is its head (a 100 Continue comes before).
        if cycle.response_started and not self._head_seen:
            self._head_seen = True
            if (
                cycle.chunked_encoding is False
                and cycle.expected_content_length > 0
                and cycle.scope["method"] != "HEAD"
            ):
                self._head = data
                return
        self._transport.write(data)

    def close(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """`uvicorn.Config(http=...)`: each request's cycle writes through a `_HeadHolding`."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        cycle.transport = _HeadHolding(self.transport, cycle)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)

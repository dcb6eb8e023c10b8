"""The web process: uvicorn serving the app of `api.main.from_environment()`, in WEB_CONCURRENCY
processes that each own a listening socket on the same port (SO_REUSEPORT), so the kernel
spreads connections over them.

`uvicorn --workers N` shares one listening socket between its processes: whichever wakes first
accepts every pending connection, and keep-alive clients then stay on it (in the API benchmark 16
connections opened together often all landed on one of two processes, which served them at the
rate of one). With a socket per process the kernel hashes each new connection to one of them.

    python -m api.serve [--host H] [--port P] [--workers N]    (defaults: API_HOST, API_PORT,
                                                               WEB_CONCURRENCY or 1)

With one process it is plain uvicorn in this process. With more, this process only supervises:
it checks the address is free, starts the servers, restarts one that dies, and on SIGTERM or
SIGINT stops them all gracefully (uvicorn finishes the requests in flight) and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
import traceback
from types import FrameType
from typing import Any

import uvicorn

from api.http_protocol import OneWriteHttpToolsProtocol
from domain.platform.settings import get_settings

APP = "api.main:from_environment"  # an app factory: uvicorn --factory
BACKLOG = 2048
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 30.0
#: The exit code of a server that ended before it ever served (a bad setting, an app that
#: cannot import, a failed start-up), however long its start took (a loaded host can import for
#: more than 10 s). One that exits with an error within QUICK_FAILURE_S of its start counts too.
FAILED_AT_START = 3
QUICK_FAILURE_S = 10.0
#: After this many failures at start in a row the supervisor stops instead of looping.
MAX_QUICK_FAILURES = 3

log = logging.getLogger("gaveurs.web")


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def server_config(**options: Any) -> uvicorn.Config:
    """uvicorn's settings for every server process: no access log (a line per request costs
    more than an enqueue), uvloop, httptools writing a response of known length at once, idle
    keep-alive connections kept API_KEEPALIVE_S (settings.py says why)."""
    return uvicorn.Config(
        APP, factory=True, access_log=False, loop="uvloop", http=OneWriteHttpToolsProtocol,
        timeout_keep_alive=get_settings().api_keepalive_s, **options,
    )  # fmt: skip


def _child(host: str, port: int) -> int:
    """The exit code of a forked server (its errors printed: os._exit skips the usual report).
    The app is imported here, after fork, each server on its own listening socket."""
    config = server_config(log_level="info")
    server = uvicorn.Server(config)
    try:
        sock = listening_socket(host, port)
        sock.listen(BACKLOG)
        server.run(sockets=[sock])
        code = 0
    except SystemExit as stop:  # uvicorn exits 1 when the app cannot be loaded
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code if server.started else FAILED_AT_START


class Supervisor:
    def __init__(self, host: str, port: int, workers: int) -> None:
        self.host, self.port, self.workers = host, port, workers
        self.children: dict[int, float] = {}  # pid -> when it started (monotonic)
        self.stopping = False
        self.reservation: socket.socket
        self.quick_failures = 0
        self.failed = False

    def start(self) -> None:
        pid = os.fork()
        if pid == 0:  # the child: its own socket on the shared port, then uvicorn
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            self.reservation.close()
            os._exit(_child(self.host, self.port))
        self.children[pid] = time.monotonic()

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        # Bound but not listening: the address is checked (a clear error, once) and reserved
        # for the servers; a socket that does not listen takes no connections.
        try:
            self.reservation = listening_socket(self.host, self.port)
        except OSError as error:
            log.error("cannot listen on %s:%s: %s", self.host, self.port, error)
            return 1
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for _ in range(self.workers):
            self.start()
        log.info("serving on http://%s:%s with %d processes", self.host, self.port, self.workers)
        deadline: float | None = None
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                if self.stopping:
                    deadline = deadline or time.monotonic() + STOP_TIMEOUT_S
                    if time.monotonic() > deadline:
                        for child in self.children:
                            os.kill(child, signal.SIGKILL)
                time.sleep(0.1)
                continue
            started = self.children.pop(pid, None)
            if started is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            failed_at_start = code == FAILED_AT_START or (
                code != 0 and time.monotonic() - started < QUICK_FAILURE_S
            )
            self.quick_failures = self.quick_failures + 1 if failed_at_start else 0
            if self.quick_failures >= MAX_QUICK_FAILURES:
                log.error("web processes keep failing at start (see above); giving up")
                self.stop(signal.SIGTERM, None)
                self.failed = True
                continue
            log.error("web process %d ended (exit code %d); restarting it", pid, code)
            time.sleep(RESTART_DELAY_S)
            if not self.stopping:
                self.start()
        self.reservation.close()
        return 1 if self.failed else 0


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=settings.api_host)
    parser.add_argument("--port", type=int, default=settings.api_port)
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 1),
        help="server processes (default: WEB_CONCURRENCY, else 1)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    if args.workers == 1:
        server = uvicorn.Server(server_config(host=args.host, port=args.port))
        server.run()
        return 0 if server.started else FAILED_AT_START  # as uvicorn.run exits
    return Supervisor(args.host, args.port, args.workers).run()


if __name__ == "__main__":
    sys.exit(main())

"""A Redis master, its replica and three Sentinels on free loopback ports (Debian's `redis-server`
and `redis-sentinel`), with Sentinel's timeouts tuned for tests: a dead master is noticed after
`down_after_ms` (production default 30 s) and a failover is retried after `failover_timeout_ms`.

The processes are real; tests kill the master (`kill_master`), wait for the Sentinels to promote
the replica (`wait_failover`) and start the old master again, which the Sentinels turn into a
replica of the new one (`wait_rejoined`).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import redis.sentinel

from ops.local_redis import RedisServer, free_port, stop_server

MASTER_NAME = "gaveurs"


class SentinelProcess:
    """One `redis-sentinel` monitoring `master_port` under `name`."""

    def __init__(
        self, master_port: int, *, name: str, quorum: int, down_after_ms: int, failover_ms: int
    ) -> None:
        binary = shutil.which("redis-sentinel")
        if binary is None:
            raise RuntimeError("redis-sentinel not found: `make test` and `make soak` install it")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gaveurs-sentinel-"))
        config = self.dir / "sentinel.conf"  # Sentinel rewrites it: its own file, writable
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {name} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
            f"sentinel failover-timeout {name} {failover_ms}\n"
            f"sentinel parallel-syncs {name} 1\n"
        )
        self.log = self.dir / "sentinel.log"
        self.process = subprocess.Popen(
            [binary, str(config)], stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        self.client = redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def master(self, name: str) -> dict[str, Any]:
        masters: dict[str, dict[str, Any]] = self.client.sentinel_masters()
        return masters[name]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        self.client.close()
        stop_server(self.process, self.dir)


class LocalSentinels:
    """A master, `replicas` replicas and `sentinels` Sentinels (quorum: a majority)."""

    def __init__(
        self,
        *,
        name: str = MASTER_NAME,
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_ms: int = 3000,
        appendonly: bool = False,
    ) -> None:
        self.name = name
        self.servers: list[RedisServer] = []
        self.sentinels: list[SentinelProcess] = []
        try:
            master = self._server(appendonly=appendonly)
            for _ in range(replicas):
                self._server(
                    appendonly=appendonly, replicaof=("--replicaof", "127.0.0.1", str(master.port))
                )
            self.sentinels = [
                SentinelProcess(
                    master.port,
                    name=name,
                    quorum=sentinels // 2 + 1,
                    down_after_ms=down_after_ms,
                    failover_ms=failover_ms,
                )
                for _ in range(sentinels)
            ]
            self._wait(
                self._formed, timeout=30, what="Sentinels to see the replicas and each other"
            )
        except BaseException:
            self.stop()
            raise

    def _server(self, *, appendonly: bool, replicaof: tuple[str, ...] = ()) -> RedisServer:
        # A replica (or a restarted old master) syncs at once, not after diskless sync's 5 s wait.
        server = RedisServer(
            appendonly=appendonly, extra_args=("--repl-diskless-sync-delay", "0", *replicaof)
        )
        self.servers.append(server)
        return server

    # -- what the Sentinels say -----------------------------------------------------------

    @property
    def spec(self) -> str:
        """REDIS_SENTINELS for the processes under test."""
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def master_port(self) -> int | None:
        """The master's port as the first answering Sentinel names it."""
        for sentinel in self.sentinels:
            try:
                state = sentinel.master(self.name)
            except redis.RedisError:
                continue
            return int(state["port"])
        return None

    def master(self) -> RedisServer:
        port = self.master_port()
        return next(server for server in self.servers if server.port == port)

    def epoch(self) -> int:
        """The master's configuration epoch: one more at each failover."""
        return max(int(s.master(self.name)["config-epoch"]) for s in self.sentinels)

    def client(self, **options: Any) -> redis.Redis:
        """A client that follows the master across failovers (redis-py's Sentinel support)."""
        sentinel = redis.sentinel.Sentinel(
            [("127.0.0.1", s.port) for s in self.sentinels], sentinel_kwargs={"socket_timeout": 2}
        )
        return sentinel.master_for(self.name, socket_timeout=5, **options)

    def _formed(self) -> bool:
        expected_replicas = len(self.servers) - 1
        for sentinel in self.sentinels:
            try:
                state = sentinel.master(self.name)
            except (redis.RedisError, KeyError):
                return False
            if (
                state["is_sdown"]
                or int(state["num-slaves"]) < expected_replicas
                or int(state["num-other-sentinels"]) < len(self.sentinels) - 1
            ):
                return False
        return all(
            self._replica_in_sync(server) for server in self.servers if server is not self.master()
        )

    def _replica_in_sync(self, server: RedisServer) -> bool:
        try:
            info = server.client.info("replication")
        except redis.RedisError:
            return False
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    @staticmethod
    def _wait(check: Any, *, timeout: float, what: str) -> float:
        started = time.monotonic()
        while not check():
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")
            time.sleep(0.1)
        return time.monotonic() - started

    # -- faults ---------------------------------------------------------------------------

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master; returns its server (to `start()` it again later)."""
        master = self.master()
        master.kill()
        return master

    def demote_master(self) -> RedisServer:
        """`SENTINEL FAILOVER`: the replica is promoted while the old master keeps running and
        its clients keep their connections, until the Sentinels make it a replica (then its
        clients get READONLY); returns the old master."""
        master = self.master()
        self.sentinels[0].client.execute_command("SENTINEL", "FAILOVER", self.name)
        return master

    def wait_failover(self, old: RedisServer, *, timeout: float = 60) -> float:
        """Seconds until every Sentinel names another master and that one says it is master."""

        def switched() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                try:
                    ports.add(int(sentinel.master(self.name)["port"]))
                except redis.RedisError:
                    return False
            if len(ports) != 1 or old.port in ports:
                return False
            new = next(s for s in self.servers if s.port in ports)
            try:
                return bool(new.client.info("replication")["role"] == "master")
            except redis.RedisError:
                return False

        try:
            return self._wait(switched, timeout=timeout, what="the Sentinels to promote a replica")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; {self.diagnosis()}") from None

    def wait_rejoined(self, server: RedisServer, *, timeout: float = 120) -> float:
        """Seconds until a restarted old master replicates the new one (a Sentinel waits ~8 s
        before converting it, and 30 s more in TILT mode, which a loaded machine triggers)."""
        try:
            return self._wait(
                lambda: self._replica_in_sync(server),
                timeout=timeout,
                what=f"port {server.port} to rejoin as a replica",
            )
        except TimeoutError as error:
            raise TimeoutError(f"{error}; {self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """What each Sentinel says and the last lines of its log, for a failed wait."""
        lines = []
        for sentinel in self.sentinels:
            try:
                tilt = sentinel.client.info("sentinel").get("sentinel_tilt")
                master = sentinel.master(self.name)
                said = f"master port {master['port']}, flags {master['flags']}, tilt {tilt}"
            except redis.RedisError as error:
                said = f"no answer ({error})"
            tail = sentinel.log.read_text(errors="replace").splitlines()[-8:]
            lines.append(f"Sentinel {sentinel.port}: {said}; log: " + " | ".join(tail))
        return "\n".join(lines)

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()

"""Test hosts on one machine: network namespaces joined to this one by veth pairs, round-trip
time from a userspace delay proxy, partitions by taking a link down. For tests and benchmarks.

    with netns.hosts(2) as (a, b):                 # two hosts, each with its own network stack
        redis = RedisServer(bind=("127.0.0.1", a.gateway, b.gateway))
        with netns.DelayProxy(to=("127.0.0.1", redis.port), listen=[a.gateway], rtt_ms=10) as p:
            url = f"redis://{a.gateway}:{p.port}/0"   # 10 ms round trip from host a
            subprocess.Popen([*a.run, "python", "-m", "dramatiq", ...], env={"REDIS_URL": url})
            a.partition(); ...; a.heal()

This machine is the Redis host (and the API's, the test's); each worker host reaches it through
its own veth pair, host i as 10.X.i.2 and this side as 10.X.i.1 (its `gateway`). Nothing listens
beyond loopback and those pairs. The kernel here has no netem and no iptables: latency comes from
DelayProxy (an asyncio TCP forwarder that holds each chunk RTT/2 in each direction, so pipelined
traffic keeps its bandwidth), a partition from `ip link set <veth> down`. Root only: `reason()`
says why hosts cannot be made.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

CHUNK_BYTES = 65_536


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def reason() -> str | None:
    """Why worker hosts cannot be made here (None when they can)."""
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` command"
    if os.geteuid() != 0:
        return "network namespaces and veth pairs need root (CAP_NET_ADMIN)"
    return None


@dataclass(frozen=True)
class Host:
    """A worker host: a network namespace with one link to this machine."""

    name: str
    #: The veth end on this machine's side: down is a partition.
    link: str
    #: This machine's address as the host sees it (where Redis or a delay proxy listens).
    gateway: str
    #: The host's own address.
    address: str

    @property
    def run(self) -> list[str]:
        """The prefix that runs a command on the host (`ip netns exec` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name]

    def partition(self) -> None:
        """Cut the host off: its packets go nowhere, its connections hang until they time out."""
        _ip("link", "set", self.link, "down")

    def heal(self) -> None:
        _ip("link", "set", self.link, "up")


def _free_subnet() -> int:
    """A second octet for 10.X.0.0/16 that no interface here uses yet."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    for offset in range(200):
        octet = 100 + (os.getpid() + offset) % 150
        if f" 10.{octet}." not in used:
            return octet
    raise RuntimeError("no free 10.X.0.0/16 subnet for test hosts")


@contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """`count` worker hosts, removed when the block ends. The caller stops the processes it
    started on them first (a namespace's processes outlive its deletion)."""
    why = reason()
    if why:
        raise RuntimeError(f"cannot make test hosts: {why}")
    tag, octet = f"gv{os.getpid() % 100_000}", _free_subnet()
    made: list[Host] = []
    try:
        for index in range(1, count + 1):
            host = Host(
                name=f"{tag}h{index}",
                link=f"{tag}o{index}",
                gateway=f"10.{octet}.{index}.1",
                address=f"10.{octet}.{index}.2",
            )
            inner = f"{tag}i{index}"
            _ip("netns", "add", host.name)
            made.append(host)
            _ip("link", "add", host.link, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", host.name)
            _ip("addr", "add", f"{host.gateway}/24", "dev", host.link)
            _ip("link", "set", host.link, "up")
            for args in (
                ("addr", "add", f"{host.address}/24", "dev", inner),
                ("link", "set", inner, "up"),
                ("link", "set", "lo", "up"),
            ):
                _ip("netns", "exec", host.name, "ip", *args)
        yield made
    finally:
        for host in made:
            # Deleting the namespace deletes its veth end, and with it the pair.
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True)
            subprocess.run(["ip", "link", "del", host.link], capture_output=True)


class DelayProxy:
    """A TCP forwarder adding `rtt_ms` of round trip, in its own process (the caller's GIL and
    CPU load must not stretch the delays). Listens on `listen` addresses, all on one port."""

    def __init__(self, *, to: tuple[str, int], listen: Sequence[str], rtt_ms: float) -> None:
        self.to, self.listen, self.rtt_ms = to, list(listen), rtt_ms
        self.port = 0
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> DelayProxy:
        command = [sys.executable, "-m", "ops.netns", "proxy", "--rtt-ms", str(self.rtt_ms)]
        command += ["--to", f"{self.to[0]}:{self.to[1]}"]
        for address in self.listen:
            command += ["--listen", address]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.process.kill()
            raise RuntimeError(f"delay proxy did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def path_to_redis(host: Host, redis_port: int, rtt_ms: float) -> Iterator[str]:
    """The Redis URL a process on `host` uses to see `rtt_ms` of round trip."""
    if rtt_ms <= 0:
        yield f"redis://{host.gateway}:{redis_port}/0"
        return
    with DelayProxy(to=("127.0.0.1", redis_port), listen=[host.gateway], rtt_ms=rtt_ms) as p:
        yield f"redis://{host.gateway}:{p.port}/0"


def measured_rtt_ms(host: Host, url: str, *, pings: int = 30) -> float:
    """Median PING time from a client on the host (what a worker there pays per round trip)."""
    probe = (
        "import redis, statistics, time\n"
        f"c = redis.Redis.from_url({url!r}); c.ping(); times = []\n"
        f"for _ in range({pings}):\n"
        "    t = time.perf_counter(); c.ping(); times.append((time.perf_counter() - t) * 1000)\n"
        "print(statistics.median(times))\n"
    )
    done = subprocess.run(
        [*host.run, sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return round(float(done.stdout), 2)


async def _forward(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float
) -> None:
    """One direction: each chunk is written `delay_s` after it was read, in order; reading
    goes on meanwhile, so the delay adds latency, not a bandwidth cap."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        try:
            while data := await reader.read(CHUNK_BYTES):
                chunks.put_nowait((loop.time() + delay_s, data))
        except ConnectionError:
            pass
        chunks.put_nowait((loop.time() + delay_s, b""))

    async def deliver() -> None:
        try:
            while True:
                due, data = await chunks.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    await asyncio.gather(read(), deliver())


async def serve(*, to: tuple[str, int], listen: Sequence[str], rtt_ms: float) -> None:
    delay_s = rtt_ms / 2000

    async def connected(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*to)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _forward(client_r, server_w, delay_s), _forward(server_r, client_w, delay_s)
        )

    servers = [await asyncio.start_server(connected, listen[0], 0)]
    port = servers[0].sockets[0].getsockname()[1]
    for address in listen[1:]:
        servers.append(await asyncio.start_server(connected, address, port))
    print(f"listening {port}", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ops.netns", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    proxy = commands.add_parser("proxy", help="a TCP forwarder adding round-trip time")
    proxy.add_argument("--to", required=True, help="HOST:PORT to forward to")
    proxy.add_argument("--listen", action="append", required=True, help="address to listen on")
    proxy.add_argument("--rtt-ms", type=float, required=True)
    args = parser.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    try:
        asyncio.run(serve(to=(host, int(port)), listen=args.listen, rtt_ms=args.rtt_ms))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every Redis client of the platform, sync and asyncio, from Settings: one Redis (`REDIS_URL`)
or the master a set of Sentinels names (`REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`).

With Sentinels, REDIS_URL still gives what the master connection needs besides its address:
user, password, database and TLS options (`rediss://` and its `ssl_*` query arguments). The
clients are redis-py's own Sentinel-managed ones: each new connection asks a Sentinel where the
master is, and a `READONLY` answer from a master demoted under a held connection becomes a
`ConnectionError` after the connection is dropped, so every path that rides out a connection loss
(runtime/outage.py, the consumer, the API's 503) rides out a failover the same way.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.sentinel
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ReadOnlyError

from domain.platform.redact import mask_url
from domain.platform.settings import Settings

logger = logging.getLogger("gaveurs.redis")

HEALTH_CHECK_INTERVAL_S = 30


class SentinelMisconfigured(RuntimeError):
    """The Sentinels answer but none monitors the configured master name."""


class SentinelUnreachable(redis.ConnectionError):
    """No configured Sentinel answers."""


def sentinel_addresses(spec: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (a bare host means Sentinel's port 26379) as (host, port) pairs."""
    addresses = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS: {item!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    if not addresses:
        raise ValueError("REDIS_SENTINELS names no Sentinel")
    return addresses


def _master_options(settings: Settings) -> dict[str, Any]:
    """REDIS_URL's credentials, database and TLS options, without its host and port."""
    options = parse_url(settings.redis_url)
    connection_class = options.pop("connection_class", None)
    if connection_class is UnixDomainSocketConnection:
        raise ValueError("REDIS_URL: a unix socket cannot be combined with REDIS_SENTINELS")
    if connection_class is SSLConnection:
        options["ssl"] = True
    for address in ("host", "port", "path"):
        options.pop(address, None)
    return options


def _sentinel_options(settings: Settings, master: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_timeout": settings.redis_socket_timeout_s,
    }
    if settings.redis_sentinel_username:
        options["username"] = settings.redis_sentinel_username
    if settings.redis_sentinel_password.get_secret_value():
        options["password"] = settings.redis_sentinel_password.get_secret_value()
    if settings.redis_sentinel_tls:
        options["ssl"] = True
        options |= {key: value for key, value in master.items() if key.startswith("ssl_")}
    return options


def _timeouts(settings: Settings) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_timeout": settings.redis_socket_timeout_s,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }


DEMOTED = "READONLY: this Redis is now a replica (failover); the connection is dropped"


class _ReadOnlyIsLoss:
    """A plain REDIS_URL connection that treats `READONLY` as a connection loss, as redis-py's
    Sentinel-managed connections do: a managed Redis behind one endpoint (a PaaS) fails over by
    moving its address, and a connection still held to the demoted node answers READONLY to every
    write. Dropping it makes the next connection resolve the endpoint again, and every path that
    rides out a connection loss rides out this failover the same way."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        except ReadOnlyError:
            self.disconnect()  # type: ignore[attr-defined]
            raise redis.ConnectionError(DEMOTED) from None


class FailoverConnection(_ReadOnlyIsLoss, Connection):
    pass


class FailoverSSLConnection(_ReadOnlyIsLoss, SSLConnection):
    pass


class _AsyncReadOnlyIsLoss:
    """`_ReadOnlyIsLoss` for the asyncio clients."""

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except ReadOnlyError:
            await self.disconnect()  # type: ignore[attr-defined]
            raise redis.ConnectionError(DEMOTED) from None


class AsyncFailoverConnection(_AsyncReadOnlyIsLoss, redis.asyncio.connection.Connection):
    pass


class AsyncFailoverSSLConnection(_AsyncReadOnlyIsLoss, redis.asyncio.connection.SSLConnection):
    pass


def _failover_class(url: str, *, asyncio: bool) -> dict[str, Any]:
    """The connection class that turns READONLY into a connection loss, for TCP and TLS URLs
    (a unix socket has no failover to follow)."""
    parsed = parse_url(url).get("connection_class")
    if parsed is UnixDomainSocketConnection:
        return {}
    tls = parsed is SSLConnection
    if asyncio:
        return {"connection_class": AsyncFailoverSSLConnection if tls else AsyncFailoverConnection}
    return {"connection_class": FailoverSSLConnection if tls else FailoverConnection}


def redis_client(settings: Settings) -> redis.Redis:
    """One client for the broker and every backend; fails fast when Redis is unreachable."""
    if not settings.redis_sentinels:
        url = settings.redis_url
        failover = _failover_class(url, asyncio=False)
        return redis.Redis.from_url(url, **failover, **_timeouts(settings))
    master = _master_options(settings)
    sentinel = redis.sentinel.Sentinel(
        sentinel_addresses(settings.redis_sentinels),
        sentinel_kwargs=_sentinel_options(settings, master),
    )
    return sentinel.master_for(settings.redis_sentinel_master, **master, **_timeouts(settings))


def async_redis_client(settings: Settings) -> redis.asyncio.Redis:
    """The asyncio twin of `redis_client` (the API's live streams)."""
    if not settings.redis_sentinels:
        url = settings.redis_url
        failover = _failover_class(url, asyncio=True)
        return redis.asyncio.Redis.from_url(url, **failover, **_timeouts(settings))
    master = _master_options(settings)
    sentinel = redis.asyncio.sentinel.Sentinel(
        sentinel_addresses(settings.redis_sentinels),
        sentinel_kwargs=_sentinel_options(settings, master),
    )
    return sentinel.master_for(settings.redis_sentinel_master, **master, **_timeouts(settings))


def describe_redis(settings: Settings) -> str:
    """Where the clients look for Redis, for error messages (password masked)."""
    if settings.redis_sentinels:
        return f"master {settings.redis_sentinel_master!r} of Sentinels {settings.redis_sentinels}"
    return mask_url(settings.redis_url)


def sentinel_master(settings: Settings) -> dict[str, Any]:
    """What the first answering Sentinel knows of REDIS_SENTINEL_MASTER (SENTINEL MASTERS: ip,
    port, flags, config-epoch...). Raises SentinelUnreachable naming every address tried and its
    error, or SentinelMisconfigured when the Sentinels answer but none monitors that name."""
    options = _sentinel_options(settings, _master_options(settings))
    tried: list[str] = []
    answered = 0
    for host, port in sentinel_addresses(settings.redis_sentinels):
        client = redis.Redis(host=host, port=port, **options)
        try:
            masters = client.sentinel_masters()
        except redis.RedisError as error:
            tried.append(f"{host}:{port} ({type(error).__name__}: {error})")
            continue
        finally:
            client.close()
        if settings.redis_sentinel_master in masters:
            state: dict[str, Any] = masters[settings.redis_sentinel_master]
            return state
        answered += 1
        tried.append(f"{host}:{port} (monitors {', '.join(sorted(masters)) or 'nothing'})")
    if answered:
        raise SentinelMisconfigured(
            f"REDIS_SENTINEL_MASTER={settings.redis_sentinel_master!r}: no Sentinel monitors a "
            f"master by that name; tried {'; '.join(tried)}"
        )
    raise SentinelUnreachable(f"no Redis Sentinel answers; tried {'; '.join(tried)}")


def check_sentinels(settings: Settings) -> None:
    """At start-up: a wrong master name stops the process with a message that says so; Sentinels
    that do not answer yet are logged once, naming what was tried, and the clients keep trying
    as after any connection loss (the API answers 503, workers wait)."""
    if not settings.redis_sentinels:
        return
    try:
        sentinel_master(settings)
    except SentinelUnreachable as error:
        logger.warning("%s; clients keep retrying", error)

"""Dependencies as Annotated aliases: settings, control plane, database session, auth."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.client_auth import ClientDirectory
from domain.platform import clients
from domain.platform.db import session_factory
from domain.platform.settings import Settings
from runtime import Control, act_as, broker, current, engine, records, redis_client

bearer = HTTPBearer(auto_error=False)


# Dependencies that do no I/O are `async def`: FastAPI runs sync ones in its thread pool, and
# each hop costs more than the work (a few hops were most of an enqueue's latency).


async def settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


_controls: dict[int, Control] = {}


async def control() -> Control:
    """The control plane of the runtime `create_app` set up (one per broker, built once)."""
    current = broker()
    found = _controls.get(id(current))
    if found is None:
        found = _controls[id(current)] = Control(current, records())
    return found


def session_dep() -> Iterator[Session]:
    with session_factory(engine())() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(settings_dep)]
ControlDep = Annotated[Control, Depends(control)]
SessionDep = Annotated[Session, Depends(session_dep)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


#: The bootstrap tokens of the settings act as these clients (README "Named API clients").
API_TOKEN_CLIENT = clients.Client(
    name="api-token", scopes=frozenset({"jobs:write", "exports:read"})
)
ADMIN_TOKEN_CLIENT = clients.Client(name="admin-token", scopes=frozenset({clients.ADMIN}))

_directories: dict[int, ClientDirectory] = {}


def directory() -> ClientDirectory:
    """This process's named-client lookups for the runtime `create_app` set up."""
    built = current()
    found = _directories.get(id(built))
    if found is None:
        found = _directories[id(built)] = ClientDirectory(
            engine=lambda: built.engine, client=redis_client(built.settings)
        )
    return found


def still_admin(digest: str) -> bool:
    """A console session's named client is still active and holds `admin` (api/console)."""
    found = directory().active(digest)
    return found is not None and found.allows(clients.ADMIN)


def _bootstrap(settings: Settings, given: bytes) -> clients.Client | None:
    api, admin = settings.api_token.get_secret_value(), settings.admin_token.get_secret_value()
    # Constant-time comparison against every configured token, without short-circuiting.
    matches = [
        (hmac.compare_digest(given, token.encode()), client)
        for token, client in ((admin, ADMIN_TOKEN_CLIENT), (api, API_TOKEN_CLIENT))
        if token
    ]
    return next((client for matched, client in matches if matched), None)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def named_client(token: str) -> clients.Client | None:
    """The active named client of a token (a cache hit does no I/O), its use noted; or None."""
    if not token.startswith(clients.TOKEN_PREFIX):
        return None
    named = directory()
    client = named.cached(clients.hash_token(token))
    if client is None:
        client = await run_in_threadpool(named.lookup, token)
    if client is None or client.expired():
        return None
    named.used(client)
    return client


async def authenticate(settings: Settings, credentials: Credentials) -> clients.Client:
    """The caller: a bootstrap token of the settings or a named client's token (401 if none)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token (Authorization: Bearer $API_TOKEN)")
    token = credentials.credentials
    client = _bootstrap(settings, token.encode())
    if client is None:
        client = await named_client(token)
    if client is None:
        raise _unauthorized("invalid, revoked or expired bearer token")
    # Jobs this request sends carry the client's name (job records, journal, audit trail).
    act_as(client.name)
    return client


async def _require(settings: Settings, credentials: Credentials, scope: str) -> clients.Client:
    client = await authenticate(settings, credentials)
    if not client.allows(scope):
        held = ", ".join(sorted(client.scopes))
        hint = " (the admin token, or a client with that scope)" if scope == clients.ADMIN else ""
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this route needs the scope {scope!r}{hint}; client {client.name!r} has {held}",
        )
    return client


async def require_writer(settings: SettingsDep, credentials: Credentials) -> clients.Client:
    """Write routes: scope jobs:write (API_TOKEN, or a named client holding it)."""
    return await _require(settings, credentials, "jobs:write")


async def require_exports_reader(settings: SettingsDep, credentials: Credentials) -> clients.Client:
    """Produced files: scope exports:read."""
    return await _require(settings, credentials, "exports:read")


async def require_audit_reader(settings: SettingsDep, credentials: Credentials) -> clients.Client:
    """The processing audit trail: scope audit:read."""
    return await _require(settings, credentials, "audit:read")


async def require_admin(settings: SettingsDep, credentials: Credentials) -> clients.Client:
    """Destructive routes and client management: scope admin (ADMIN_TOKEN, or a client)."""
    return await _require(settings, credentials, clients.ADMIN)


WriterDep = Depends(require_writer)
ExportsReaderDep = Depends(require_exports_reader)
AuditReaderDep = Depends(require_audit_reader)
AdminDep = Depends(require_admin)
AdminClient = Annotated[clients.Client, Depends(require_admin)]

"""Dependencies as Annotated aliases: settings, control plane, database session, auth."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from domain.platform.db import session_factory
from domain.platform.settings import Settings
from runtime import Control, broker, engine, records

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


def _token_matches(credentials: HTTPAuthorizationCredentials | None, *expected: str) -> bool:
    if credentials is None or credentials.scheme.lower() != "bearer":
        return False
    given = credentials.credentials.encode()
    # Constant-time comparison against every accepted token, without short-circuiting.
    matches = [hmac.compare_digest(given, token.encode()) for token in expected if token]
    return any(matches)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def require_writer(settings: SettingsDep, credentials: Credentials) -> None:
    """Write routes: the API token (or the admin token)."""
    api, admin = settings.api_token.get_secret_value(), settings.admin_token.get_secret_value()
    if not (api or admin):
        raise _unauthorized("the server has no API_TOKEN configured; writes are disabled")
    if not _token_matches(credentials, api, admin):
        raise _unauthorized("missing or invalid bearer token (Authorization: Bearer $API_TOKEN)")


async def require_admin(settings: SettingsDep, credentials: Credentials) -> None:
    """Destructive routes: the admin token only."""
    admin = settings.admin_token.get_secret_value()
    if not admin:
        raise _unauthorized("the server has no ADMIN_TOKEN configured; admin routes are disabled")
    if not _token_matches(credentials, admin):
        if _token_matches(credentials, settings.api_token.get_secret_value()):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail="this route needs the admin token"
            )
        raise _unauthorized("missing or invalid admin bearer token")


WriterDep = Depends(require_writer)
AdminDep = Depends(require_admin)

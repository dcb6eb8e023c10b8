"""Named API clients (admin): create (the token is shown once), list, rotate, revoke.

Each change is announced to every web process before the answer (api/client_auth.py), so a
revoked or rotated token is refused by the next request whichever process serves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.client_auth import announce
from api.deps import AdminDep, SessionDep, directory
from api.params import NamePath
from domain.platform import clients

router = APIRouter(prefix="/api/clients", tags=["clients"], dependencies=[AdminDep])


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=64)
    scopes: list[Annotated[str, Field(max_length=32)]] = Field(
        min_length=1, max_length=len(clients.SCOPES)
    )
    expires_at: datetime | None = None


class ClientPublic(BaseModel):
    name: str
    scopes: list[str]
    status: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: clients.ClientRow) -> ClientPublic:
        return cls(status=row.status, **vars(row))


class ClientToken(ClientPublic):
    """The answer of create and rotate: the only time the token is shown."""

    token: str
    web_processes_told: int


def _changed(name: str) -> int:
    return announce(directory().client, name)


@router.get("")
def list_clients(session: SessionDep) -> list[ClientPublic]:
    return [ClientPublic.of(row) for row in clients.list_clients(session)]


@router.post("", status_code=201)
def create_client(body: ClientCreate, session: SessionDep) -> ClientToken:
    """A new client; keep its token now, it is stored only as a hash."""
    row, token = clients.create(
        session, name=body.name, scopes=body.scopes, expires_at=body.expires_at
    )
    session.commit()
    return ClientToken(
        token=token, web_processes_told=_changed(row.name), **vars(row), status=row.status
    )


@router.post("/{name}/rotate")
def rotate_client(name: NamePath, session: SessionDep) -> ClientToken:
    """A new token; the old one is refused from the answer on."""
    row, token = clients.rotate(session, name)
    session.commit()
    return ClientToken(
        token=token, web_processes_told=_changed(name), **vars(row), status=row.status
    )


@router.delete("/{name}")
def revoke_client(name: NamePath, session: SessionDep) -> dict[str, Any]:
    """Refuse the client's token from the answer on, in every web process."""
    row = clients.revoke(session, name)
    session.commit()
    return {**ClientPublic.of(row).model_dump(mode="json"), "web_processes_told": _changed(name)}

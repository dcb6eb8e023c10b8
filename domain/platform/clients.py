"""Named API clients: who calls the API, with which scopes, until when.

A client's token is 32 random bytes shown once, at creation or rotation; the database keeps
only its SHA-256 (a token is high-entropy, so a plain hash is enough: no salt, no slow KDF).
Callers look a token up by its hash and compare in constant time. The web processes cache what
they read and drop it when told (api/client_auth.py); last-use times are written in batches.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.errors import Conflict, InvalidInput, NotFound
from domain.models import ApiClient

#: The scopes a client may hold; `admin` implies every other.
SCOPES = ("jobs:write", "exports:read", "audit:read", "admin")
ADMIN = "admin"
#: Every named client's token starts with this, so a leaked one is recognisable (and greppable).
TOKEN_PREFIX = "gvt_"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
#: Names the platform itself uses for who submitted a job; no stored client may take them.
RESERVED = frozenset({"scheduler", "cli", "api-token", "admin-token", "system"})


@dataclass(frozen=True)
class Client:
    """What a request's caller may do."""

    name: str
    scopes: frozenset[str]
    id: int | None = None  # None for the bootstrap tokens of the settings
    expires_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))


@dataclass(frozen=True)
class ClientRow:
    """A stored client as listed (never its token)."""

    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown or not chosen:
        raise InvalidInput(f"unknown or no scopes {unknown}; choose among {list(SCOPES)}")
    return chosen


def _row(client: ApiClient) -> ClientRow:
    return ClientRow(
        name=client.name,
        scopes=client.scopes.split(),
        created_at=client.created_at,
        last_used_at=client.last_used_at,
        expires_at=client.expires_at,
        revoked_at=client.revoked_at,
    )


def create(
    session: Session, *, name: str, scopes: Iterable[str], expires_at: datetime | None = None
) -> tuple[ClientRow, str]:
    """A new client and its token (returned once; only its hash is stored)."""
    if not NAME.match(name) or name in RESERVED:
        raise InvalidInput(
            f"client name {name!r} must be 2-64 of a-z 0-9 . _ - (starting with a letter or "
            f"digit) and not one of {sorted(RESERVED)}"
        )
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidInput("expires_at needs a timezone (e.g. 2027-01-01T00:00:00Z)")
    token = new_token()
    client = ApiClient(
        name=name,
        token_hash=hash_token(token),
        scopes=" ".join(check_scopes(scopes)),
        created_at=datetime.now(UTC),
        expires_at=expires_at,
    )
    session.add(client)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a client named {name!r} already exists") from None
    return _row(client), token


def _named(session: Session, name: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise NotFound(f"no API client named {name!r}")
    return client


def revoke(session: Session, name: str) -> ClientRow:
    """Refuse the client's token from now on (kept for the audit trail's names)."""
    client = _named(session, name)
    if client.revoked_at is None:
        client.revoked_at = datetime.now(UTC)
    return _row(client)


def rotate(session: Session, name: str) -> tuple[ClientRow, str]:
    """A new token for the client; the old one is refused from now on."""
    client = _named(session, name)
    if client.revoked_at is not None:
        raise Conflict(f"client {name!r} is revoked; create a new client")
    token = new_token()
    client.token_hash = hash_token(token)
    return _row(client), token


def list_clients(session: Session) -> list[ClientRow]:
    return [_row(c) for c in session.scalars(select(ApiClient).order_by(ApiClient.name))]


def find(session: Session, token: str) -> Client | None:
    """The active client whose token this is, or None (unknown, revoked or expired)."""
    return find_hash(session, hash_token(token))


def find_hash(session: Session, digest: str) -> Client | None:
    """`find` by the token's hash (what a console session keeps instead of the token)."""
    client = session.scalar(select(ApiClient).where(ApiClient.token_hash == digest))
    # The index found the row by hash; compare in constant time anyway, as for any secret.
    if client is None or not hmac.compare_digest(client.token_hash, digest):
        return None
    found = Client(
        name=client.name,
        scopes=frozenset(client.scopes.split()),
        id=client.id,
        expires_at=client.expires_at,
    )
    if client.revoked_at is not None or found.expired():
        return None
    return found


def record_last_use(engine: Engine, used: Mapping[int, datetime]) -> None:
    """Write a batch of last-use times (client id -> when), one UPDATE per client."""
    if not used:
        return
    with Session(engine) as session, session.begin():
        for client_id, when in used.items():
            session.execute(
                update(ApiClient).where(ApiClient.id == client_id).values(last_used_at=when)
            )

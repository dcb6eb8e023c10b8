"""`gaveurs clients create|list|revoke|rotate`: named API clients, in the database; and
`gaveurs audit`, the processing audit trail they leave.

Tokens are printed once (create, rotate) and stored hashed. Each change is announced to the web
processes through Redis and waits for them to drop their caches (api/client_auth.py); with Redis
unreachable the change is stored anyway and the command says the web processes were not told
(they read the database on every request while they cannot hear Redis either).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from domain.platform.settings import get_settings

clients_app = typer.Typer(
    help="Named API clients: create, list, revoke, rotate.", no_args_is_help=True
)
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
ISO_TIME = "ISO date-time (UTC if no zone)"


@contextmanager
def _session() -> Iterator[Any]:
    from sqlalchemy.orm import Session

    from domain.errors import GaveursError
    from domain.platform import db

    try:
        with Session(db.make_engine(get_settings().database_url)) as session, session.begin():
            yield session
    except GaveursError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def _announce(name: str) -> str:
    import redis

    from api.client_auth import announce
    from runtime import redis_client

    try:
        told = announce(redis_client(get_settings()), name)
    except redis.RedisError as error:
        return f"web processes NOT told (Redis unreachable: {error}); they read the database"
    return f"{told} web process(es) dropped their cached tokens"


def _show(row: Any, *, token: str | None, note: str, as_json: bool) -> None:
    data = {**vars(row), "status": row.status, "note": note}
    if token is not None:
        data["token"] = token
    if as_json:
        typer.echo(json.dumps(data, default=str))
        return
    typer.echo(f"client {row.name}: {row.status}, scopes {' '.join(row.scopes)}; {note}")
    if token is not None:
        typer.echo(f"token (shown once, keep it now): {token}")


def _changed(change: Callable[[Any], tuple[Any, str | None]], name: str, as_json: bool) -> None:
    with _session() as session:
        row, token = change(session)
    _show(row, token=token, note=_announce(name), as_json=as_json)


@clients_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="e.g. farm-app, quality-tools")],
    scope: Annotated[
        list[str], typer.Option("--scope", "-s", help="jobs:write, exports:read, audit:read, admin")
    ],
    expires: Annotated[
        str | None, typer.Option(help="ISO date-time with zone, e.g. 2027-06-30T00:00:00Z")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a client; its token is printed once."""
    from domain.platform import clients

    expires_at = None
    if expires is not None:
        try:
            expires_at = datetime.fromisoformat(expires)
        except ValueError:
            typer.echo(f"error: --expires {expires!r} is not an ISO date-time", err=True)
            raise typer.Exit(1) from None
    _changed(
        lambda s: clients.create(s, name=name, scopes=scope, expires_at=expires_at), name, as_json
    )


@clients_app.command("list")
def list_clients(as_json: JsonOption = False) -> None:
    """Every client with its scopes, status and last use (never a token)."""
    from domain.platform import clients

    with _session() as session:
        rows = clients.list_clients(session)
    if as_json:
        typer.echo(json.dumps([{**vars(r), "status": r.status} for r in rows], default=str))
        return
    table = Table("name", "scopes", "status", "created", "last used", "expires")
    for r in rows:
        when = [str(t)[:19] if t else "-" for t in (r.created_at, r.last_used_at, r.expires_at)]
        table.add_row(r.name, " ".join(r.scopes), r.status, *when)
    from rich.console import Console

    Console().print(table)


@clients_app.command("revoke")
def revoke(name: str, as_json: JsonOption = False) -> None:
    """Refuse the client's token from now on, in every web process."""
    from domain.platform import clients

    _changed(lambda s: (clients.revoke(s, name), None), name, as_json)


@clients_app.command("rotate")
def rotate(name: str, as_json: JsonOption = False) -> None:
    """Print a new token for the client; the old one is refused from now on."""
    from domain.platform import clients

    _changed(lambda s: clients.rotate(s, name), name, as_json)


def audit_trail(
    subject: Annotated[
        str | None, typer.Option(help="gaveur:ID, feedback:ID, email:ADDRESS or phone:NUMBER")
    ] = None,
    client: Annotated[str | None, typer.Option(help="API client name, scheduler, cli")] = None,
    since: Annotated[str | None, typer.Option("--from", help=ISO_TIME)] = None,
    until: Annotated[str | None, typer.Option("--to", help=ISO_TIME)] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 500,
    as_json: JsonOption = False,
) -> None:
    """The processing audit trail: who processed whose personal data, when and why."""
    from domain.platform import audit

    def when(text: str | None, option: str) -> datetime | None:
        if text is None:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            typer.echo(f"error: {option} {text!r} is not an ISO date-time", err=True)
            raise typer.Exit(1) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    window = when(since, "--from"), when(until, "--to")
    key = get_settings().audit_subject_key.get_secret_value()
    with _session() as session:
        who = audit.parse_subject(subject, key=key) if subject else None
        entries = audit.read(
            session, subject=who, client=client, since=window[0], until=window[1], limit=limit
        )
    if as_json:
        typer.echo(json.dumps(audit.entries_as_dicts(entries)))
        return
    table = Table("at", "client", "job", "task", "subject", "purpose", "outcome")
    for e in entries:
        table.add_row(
            str(e.at)[:19],
            e.client or "-",
            e.job,
            e.task_id or "-",
            e.subject[:30],
            e.purpose,
            e.outcome,
        )
    from rich.console import Console

    Console().print(table)

"""`gaveurs gdpr export|erase --gaveur ID | --email ADDRESS`: right of access and erasure.

`export` prints the JSON of what we hold on the person and their processing history; `erase`
anonymises them everywhere in this process (the same function as the `erase_personal_data`
job) after a confirmation (`--yes` to skip it).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from domain.platform.settings import get_settings

gdpr_app = typer.Typer(help="GDPR: a person's data (export) and its erasure.", no_args_is_help=True)
Gaveur = Annotated[int | None, typer.Option("--gaveur", help="gaveur id")]
Email = Annotated[str | None, typer.Option("--email", help="e-mail address")]


def _one(gaveur: int | None, email: str | None) -> None:
    if (gaveur is None) == (email is None):
        typer.echo("error: name the person by exactly one of --gaveur and --email", err=True)
        raise typer.Exit(1)


@gdpr_app.command("export")
def export(gaveur: Gaveur = None, email: Email = None) -> None:
    """Print what we hold on the person, as JSON."""
    from domain import gdpr
    from ops.clients_cli import _session

    _one(gaveur, email)
    key = get_settings().audit_subject_key.get_secret_value()
    with _session() as session:
        person = gdpr.find_person(session, gaveur_id=gaveur, email=email, key=key)
        data = gdpr.export(session, person, key=key)
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@gdpr_app.command("erase")
def erase(
    gaveur: Gaveur = None,
    email: Email = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Anonymise the person across the database, files, Redis and the search index."""
    from actors.gdpr import erase_person
    from ops.cli import _redis_errors, _runtime
    from runtime import acting_as

    _one(gaveur, email)
    if not yes:
        typer.confirm("Erase this person everywhere? This cannot be undone", abort=True)
    _runtime()
    with _redis_errors(), acting_as("cli"):
        outcome = erase_person(gaveur_id=gaveur, email=email)
    typer.echo(json.dumps(outcome))

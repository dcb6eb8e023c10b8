"""The `gaveurs` command line: database and demo data (more arrive with the operations issue)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from domain.settings import get_settings

app = typer.Typer(help="Gaveurs Tasks operations.", no_args_is_help=True)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Procfile `release`)."""
    from domain import db

    settings = get_settings()
    db.migrate(settings.database_url)
    typer.echo(f"database at {settings.database_url} is up to date")


@app.command("demo-data")
def demo_data(
    scale: Annotated[
        float, typer.Option(min=0.01, max=1000, help="1 = 3 sites, 60 gaveurs, 600 lots")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same data")] = 42,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="only when the database has no site")
    ] = False,
    today: Annotated[
        str | None, typer.Option(help="reference date YYYY-MM-DD (default: today)")
    ] = None,
) -> None:
    """Load the deterministic demo dataset."""
    from domain import db, demo

    settings = get_settings()
    engine = db.make_engine(settings.database_url)
    reference = date.fromisoformat(today) if today else None
    if if_empty and not db.is_empty(engine):
        typer.echo("demo data already present; nothing loaded")
        return
    with db.session_factory(engine)() as session, session.begin():
        summary = demo.generate(session, seed=seed, scale=scale, today=reference)
    typer.echo(f"demo data loaded: {summary}")


if __name__ == "__main__":
    app()

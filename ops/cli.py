"""The `gaveurs` command line: database, demo data, schedules (more with the operations issue)."""

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


@app.command()
def schedules(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Each schedule entry: cron, next run, last run (tick, task, outcome), skips; live clocks."""
    import json

    import redis

    from actors import broker
    from actors.jobs import records
    from scheduler.state import ScheduleState
    from scheduler.status import schedule_status

    settings = get_settings()
    state = ScheduleState(broker.client)
    try:
        entries = schedule_status(state, records(), tz=settings.tz)
        alive = state.alive()
    except redis.RedisError as error:
        typer.echo(f"Redis at {settings.redis_url} is unreachable: {error}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        rows = [entry.as_dict() for entry in entries]
        typer.echo(json.dumps({"schedulers_alive": len(alive), "entries": rows}, indent=2))
        return
    typer.echo(f"clocks alive: {len(alive)}  (times in {settings.tz})")
    header = f"{'entry':38} {'cron':13} {'next run':17} {'last tick':17} {'outcome':10} skips"
    typer.echo(header)
    for entry in entries:
        last = entry.last_run or {}
        flag = "" if entry.registered else "  (actor not installed)"
        typer.echo(
            f"{entry.name:38} {entry.cron:13} {(entry.next_run or 'disabled')[:16]:17} "
            f"{(last.get('tick') or '-')[:16]:17} {str(last.get('outcome') or '-')[:10]:10} "
            f"{entry.skips}{flag}"
        )


if __name__ == "__main__":
    app()

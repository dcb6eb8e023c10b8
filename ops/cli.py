"""The `gaveurs` command line: what `celery inspect`, `celery purge` and Flower do, on Redis.

status, tasks list|show|cancel, enqueue JOB --param k=v --wait, dead-letters list|requeue|
delete, purge QUEUE, schedules, migrate, demo-data. Tables for people, `--json` for scripts.
Every command talks to REDIS_URL (and DATABASE_URL for the data commands) from the settings.
"""

from __future__ import annotations

import json
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from domain.platform.redact import mask_url
from domain.platform.settings import get_settings

if TYPE_CHECKING:
    from runtime import Control, Runtime

app = typer.Typer(help="Gaveurs Tasks operations.", no_args_is_help=True)
tasks_app = typer.Typer(help="Job records: list, show, cancel.", no_args_is_help=True)
dead_app = typer.Typer(help="Dead letters: list, re-drive, delete.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(dead_app, name="dead-letters")
console = Console()
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Redis down or a domain error: one clear line and a non-zero exit, not a traceback."""
    import redis

    from domain.errors import GaveursError
    from runtime import SentinelMisconfigured, describe_redis

    try:
        yield
    except redis.RedisError as error:
        where = describe_redis(get_settings())
        # redis-py's MasterNotFoundError lists each Sentinel client's whole repr
        reason = str(error).partition(" : ")[0]
        typer.echo(f"error: Redis at {where} is unreachable: {reason}", err=True)
        raise typer.Exit(2) from None
    except SentinelMisconfigured as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except GaveursError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def _runtime() -> Runtime:
    """The job runtime for the settings in the environment, with every job declared."""
    import actors  # noqa: F401  (declares the jobs)
    import runtime

    return runtime.setup(get_settings())


def _control() -> Control:
    from runtime import Control

    built = _runtime()
    return Control(built.broker, built.records)


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _emit(data: Any, as_json: bool, table: Callable[[], Table | str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        console.print(table())


def _queue(name: str) -> str:
    from runtime import QUEUES

    if name not in QUEUES:
        typer.echo(f"error: unknown queue {name!r}; queues are {', '.join(QUEUES)}", err=True)
        raise typer.Exit(1)
    return name


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Procfile `release`)."""
    from domain.platform import db

    settings = get_settings()
    db.migrate(settings.database_url)
    typer.echo(f"database at {mask_url(settings.database_url)} is up to date")


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
    """Load the deterministic demo dataset, and index it for search."""
    from domain import demo, search
    from domain.platform import db

    settings = get_settings()
    engine = db.make_engine(settings.database_url)
    reference = date.fromisoformat(today) if today else None
    if if_empty and not db.is_empty(engine):
        typer.echo("demo data already present; nothing loaded")
        return
    with db.session_factory(engine)() as session, session.begin():
        summary = demo.generate(session, seed=seed, scale=scale, today=reference)
    typer.echo(f"demo data loaded: {summary}")
    # Searchable at once: the clock's safety net would index it only at its next run (2 min).
    indexed = search.index_changes(engine)
    typer.echo(f"search index: {indexed['indexed']} documents indexed")


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Queues (ready, delayed, dead letters, in flight, oldest age), workers, clocks, job counts."""
    from runtime import QUEUES, live_workers
    from scheduler.state import ScheduleState

    with _redis_errors():
        control = _control()
        queues = control.queue_stats(QUEUES)
        workers = live_workers(control.client)
        clocks = ScheduleState(control.client).alive()
        counts = control.records.counts()
    alive = {queue: 0 for queue in QUEUES}
    for worker in workers:
        for queue in worker.get("queues", []):
            alive[queue] = alive.get(queue, 0) + 1
    data = {
        "queues": [{**vars(q), "workers_alive": alive.get(q.name, 0)} for q in queues],
        "workers": workers,
        "schedulers_alive": len(clocks),
        "jobs": {state.value: count for state, count in counts.items()},
    }

    def table() -> Table:
        grid = Table(title=f"queues - {len(workers)} workers, {len(clocks)} clocks alive")
        for column in ("queue", "ready", "delayed", "dead letters", "in flight", "oldest (s)"):
            if column == "queue":
                grid.add_column(column, no_wrap=True, min_width=20)
            else:
                grid.add_column(column, justify="right")
        grid.add_column("workers", justify="right")
        for q in queues:
            grid.add_row(
                q.name,
                str(q.ready),
                str(q.delayed),
                str(q.dead_letters),
                str(q.in_flight),
                f"{q.oldest_age_seconds:.0f}",
                str(alive.get(q.name, 0)),
            )
        grid.caption = "jobs: " + ", ".join(f"{s.value} {n}" for s, n in counts.items())
        skewed = [
            f"{w['worker']} {w['clock_offset_ms'] / 1000:+.1f} s"
            for w in workers
            if abs(w.get("clock_offset_ms", 0)) > 1000
        ]
        if skewed:
            grid.caption += "\nclocks off Redis's: " + ", ".join(skewed)
        return grid

    _emit(data, as_json, table)


def _record_row(record: Any) -> dict[str, Any]:
    from api.schemas import TaskPublic

    return TaskPublic.of(record).model_dump(mode="json")


@tasks_app.command("list")
def tasks_list(
    state: Annotated[str | None, typer.Option(help="PENDING, STARTED, RETRY, SUCCESS...")] = None,
    queue: Annotated[str | None, typer.Option()] = None,
    actor: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Recent jobs, newest first."""
    from runtime import State

    try:
        states = [State(state.upper())] if state else None
    except ValueError:
        typer.echo(f"error: unknown state {state!r}; use {', '.join(s.value for s in State)}")
        raise typer.Exit(1) from None
    with _redis_errors():
        found = _control().records.list(states=states, queue=queue, actor=actor, limit=limit)

    def table() -> Table:
        grid = Table(title=f"{len(found)} jobs")
        for column in ("task_id", "job", "queue", "state", "progress", "enqueued", "attempts"):
            grid.add_column(column)
        for r in found:
            grid.add_row(
                r.task_id,
                r.task_name,
                r.queue,
                r.state.value,
                f"{r.progress}% {r.progress_note}"[:40],
                _when(r.enqueued_at),
                str(r.attempts),
            )
        return grid

    _emit([_record_row(r) for r in found], as_json, table)


@tasks_app.command("show")
def tasks_show(task_id: str, as_json: JsonOption = False) -> None:
    """One job record: state, progress, args, timestamps, result or error."""
    with _redis_errors():
        record = _control().records.get(task_id)
    if record is None:
        typer.echo(f"error: unknown task_id {task_id!r} (never existed or expired)", err=True)
        raise typer.Exit(1)
    row = _record_row(record)
    _emit(row, as_json, lambda: json.dumps(row, indent=2, default=str, ensure_ascii=False))


@tasks_app.command("cancel")
def tasks_cancel(task_id: str, as_json: JsonOption = False) -> None:
    """Cancel a queued job (skipped) or a running one (interrupted): REVOKED."""
    with _redis_errors():
        previous = _control().cancel(task_id)
    data = {"task_id": task_id, "previous_state": previous.value, "status": "REVOKED"}
    _emit(data, as_json, lambda: f"{task_id}: {previous.value} -> REVOKED")


def _param(text: str, payload: type[BaseModel]) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"{text!r}: use --param name=value")
    if _takes_text(payload, name):
        return name, raw  # `-p key=0042` stays the text "0042", not the number 42
    try:
        return name, json.loads(raw)  # numbers, booleans, null, lists
    except json.JSONDecodeError:
        return name, raw


def _takes_text(payload: type[BaseModel], name: str) -> bool:
    """Whether the payload's field is a string (or an optional string, or a choice of strings)."""
    field = payload.model_fields.get(name)
    if field is None:
        return False
    annotation = field.annotation
    options = typing.get_args(annotation) if typing.get_origin(annotation) else (annotation,)
    if typing.get_origin(annotation) is typing.Literal:
        return all(isinstance(option, str) for option in options)
    return str in options and all(option in (str, type(None)) for option in options)


@app.command()
def enqueue(
    job_name: Annotated[str, typer.Argument(metavar="JOB", help="a registered job name")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job to its end")] = False,
    timeout: Annotated[float, typer.Option(help="seconds --wait waits at most")] = 3600,
    as_json: JsonOption = False,
    priority_class: Annotated[
        str | None,
        typer.Option(help="critical, high, normal or low, within the job's range"),
    ] = None,
) -> None:
    """Submit a job with typed parameters; --wait shows its progress until it ends."""
    from runtime import REGISTRY, acting_as

    _runtime()
    job = REGISTRY.get(job_name)
    if job is None:
        known = ", ".join(sorted(REGISTRY))
        typer.echo(f"error: unknown job {job_name!r}; registered jobs are {known}", err=True)
        raise typer.Exit(1)
    with _redis_errors():
        payload = job.validate(dict(_param(p, job.payload) for p in param or []))
        with acting_as("cli"):  # who submitted it, in its record and the journal
            submitted = job.submit(payload, priority_class=priority_class)
    if not wait:
        data = {"task_id": submitted.task_id, "job": job.name, "duplicate": submitted.duplicate}
        _emit(
            data,
            as_json,
            lambda: (
                f"{job.name}: {submitted.task_id}"
                + (" (already active)" if submitted.duplicate else "")
            ),
        )
        return
    record = _follow(submitted.task_id, timeout=timeout, quiet=as_json)
    row = _record_row(record)
    _emit(row, as_json, lambda: json.dumps(row, indent=2, default=str, ensure_ascii=False))
    raise typer.Exit(0 if record.state.value == "SUCCESS" else 1)


def _follow(task_id: str, *, timeout: float, quiet: bool) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from runtime import follow

    deadline = time.monotonic() + timeout
    records = _control().records
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
    )
    with Progress(
        *columns, TimeElapsedColumn(), disable=quiet, console=Console(stderr=True)
    ) as bar:
        shown = bar.add_task(task_id, total=100)
        # The job's live-results channel tells when to read its record again: no polling.
        with _redis_errors():
            for record in follow(records, task_id, timeout_s=max(0.0, deadline - time.monotonic())):
                if record is None:
                    continue
                bar.update(
                    shown,
                    completed=record.progress,
                    description=(f"{record.state.value} {record.progress_note}"[:60]),
                )
                if not record.active:
                    return record
        typer.echo(f"error: {task_id} still running after {timeout:.0f} s", err=True)
        raise typer.Exit(3)


@dead_app.command("list")
def dead_letters_list(
    queue: str,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Dead letters of a queue, newest first, with their error."""
    with _redis_errors():
        total, letters = _control().dead_letters(_queue(queue), limit=limit)
    rows = [
        {
            "task_id": letter.task_id,
            "job": letter.task_name,
            "failed_at": datetime.fromtimestamp(letter.failed_at, tz=UTC).isoformat(),
            "reason": letter.record.failure_reason if letter.record else None,
            "error": (letter.record.error or {}).get("message") if letter.record else None,
        }
        for letter in letters
    ]

    def table() -> Table:
        grid = Table(title=f"{total} dead letters in {queue}")
        for column in ("task_id", "job", "failed at", "reason", "error"):
            grid.add_column(column)
        for row in rows:
            grid.add_row(
                *(
                    str(row[k] or "-")[:60]
                    for k in ("task_id", "job", "failed_at", "reason", "error")
                )
            )
        return grid

    _emit({"queue": queue, "total": total, "dead_letters": rows}, as_json, table)


def _one_or_all(task_id: str | None, all_: bool) -> None:
    if bool(task_id) == all_:
        typer.echo("error: give a TASK_ID or --all", err=True)
        raise typer.Exit(1)


@dead_app.command("requeue")
def dead_letters_requeue(
    queue: str,
    task_id: Annotated[str | None, typer.Argument()] = None,
    all_: Annotated[bool, typer.Option("--all", help="re-drive every dead letter")] = False,
    as_json: JsonOption = False,
) -> None:
    """Re-drive one dead letter (same task_id, fresh retries), or all with --all."""
    _one_or_all(task_id, all_)
    with _redis_errors():
        control = _control()
        if all_:
            data: dict[str, Any] = control.requeue_all_dead_letters(_queue(queue))
        else:
            assert task_id is not None
            data = {"requeued": 1, "task_id": control.requeue_dead_letter(_queue(queue), task_id)}
    _emit(
        data,
        as_json,
        lambda: (
            f"re-driven: {data['requeued']}"
            + (f", refused: {len(data['refused'])}" if data.get("refused") else "")
        ),
    )


@dead_app.command("delete")
def dead_letters_delete(
    queue: str,
    task_id: Annotated[str | None, typer.Argument()] = None,
    all_: Annotated[bool, typer.Option("--all", help="delete every dead letter")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete one dead letter, or all with --all (asks first)."""
    _one_or_all(task_id, all_)
    with _redis_errors():
        control = _control()
        if all_:
            if not yes:
                typer.confirm(f"Delete every dead letter of {_queue(queue)}?", abort=True)
            deleted = control.delete_all_dead_letters(_queue(queue))
        else:
            assert task_id is not None
            control.delete_dead_letter(_queue(queue), task_id)
            deleted = 1
    _emit({"deleted": deleted}, as_json, lambda: f"deleted: {deleted}")


@app.command()
def purge(
    queue: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
    as_json: JsonOption = False,
) -> None:
    """Drop every waiting message of QUEUE (running jobs finish); their records say REVOKED."""
    name = _queue(queue)
    with _redis_errors():
        control = _control()
        (stats,) = control.queue_stats((name,))
        if not yes:
            typer.confirm(
                f"Drop {stats.ready} ready and {stats.delayed} delayed messages of {name}?",
                abort=True,
            )
        dropped = control.purge(name)
    _emit(
        {"queue": name, **dropped},
        as_json,
        lambda: (
            f"{name}: dropped {dropped['ready']} ready and {dropped['delayed']} delayed messages"
        ),
    )


@app.command()
def schedules(as_json: JsonOption = False) -> None:
    """Each schedule entry: cron, next run, last run (tick, task, outcome), skips; live clocks."""
    from scheduler.state import ScheduleState
    from scheduler.status import schedule_status

    settings = get_settings()
    built = _runtime()
    state = ScheduleState(built.broker.client)
    with _redis_errors():
        entries = schedule_status(state, built.records, tz=settings.tz)
        alive = state.alive()
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


from ops.workflow_cli import workflow_app  # noqa: E402  (its commands use the helpers above)

app.add_typer(workflow_app, name="workflow")

if __name__ == "__main__":
    app()


def _add_search() -> None:
    # At the end: ops.search_cli reuses this module's helpers.
    from ops.search_cli import search_app

    app.add_typer(search_app, name="search")


_add_search()


def _add_clients() -> None:
    from ops.clients_cli import audit_trail, clients_app
    from ops.gdpr_cli import gdpr_app

    app.add_typer(clients_app, name="clients")
    app.add_typer(gdpr_app, name="gdpr")
    app.command("audit")(audit_trail)


_add_clients()

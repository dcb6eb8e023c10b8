"""`gaveurs search ...`: query the index, see its freshness, and run its jobs.

`query` and `status` read the database directly (DATABASE_URL); `index`, `optimize` and
`rebuild` enqueue the jobs on queue `default` like `gaveurs enqueue` does (`--wait` follows).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from domain.platform.settings import get_settings

search_app = typer.Typer(
    help="Search index: query, status, index, optimize, rebuild.", no_args_is_help=True
)


def _engine() -> Any:
    from domain.platform import db

    return db.make_engine(get_settings().database_url)


@search_app.command("query")
def query(
    q: Annotated[str, typer.Argument(help='words, "a phrase", a OR b, -excluded, prefix*')],
    kind: Annotated[
        str | None, typer.Option(help="lot, feedback, anomaly, certificate, file")
    ] = None,
    site_code: Annotated[str | None, typer.Option("--site", help="site code, e.g. LL")] = None,
    date_debut: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    date_fin: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Search lots, consumer feedback, anomalies, certificates and files."""
    from domain import search
    from ops.cli import _emit, _redis_errors

    with _redis_errors():
        found = search.search(
            _engine(),
            q,
            kind=kind,
            site_code=site_code,
            date_from=date.fromisoformat(date_debut) if date_debut else None,
            date_to=date.fromisoformat(date_fin) if date_fin else None,
            limit=limit,
        )

    def table() -> Table:
        total = found["total"]
        more = "+" if total["relation"] == "gte" else ""
        shown = Table(title=f"{total['value']}{more} results for {q!r}")
        for column in ("kind", "id", "site", "date", "title", "snippet"):
            shown.add_column(column)
        for hit in found["results"]:
            shown.add_row(
                hit["kind"],
                str(hit["id"]),
                hit["site_code"] or "-",
                str(hit["date"] or "-"),
                hit["title"],
                hit["snippet"],
            )
        return shown

    _emit(found, as_json, table)


@search_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Pending changes, index lag, documents by kind, generation."""
    from domain import search
    from ops.cli import _emit

    figures = search.status(_engine())

    def table() -> str:
        kinds = ", ".join(f"{kind}={count}" for kind, count in figures["documents"].items())
        return (
            f"{figures['engine']}: generation {figures['active_generation']}"
            f"{' (rebuilding)' if figures['rebuilding'] else ''}, "
            f"{figures['pending_changes']} pending changes, lag {figures['lag_s']:.1f} s\n"
            f"documents: {kinds}"
        )

    _emit(figures, as_json, table)


def _run(job_name: str, wait: bool, timeout: float, as_json: bool) -> None:
    from ops.cli import enqueue

    enqueue(job_name=job_name, param=None, wait=wait, timeout=timeout, as_json=as_json)


Wait = Annotated[bool, typer.Option("--wait", help="follow the job to its end")]
Timeout = Annotated[float, typer.Option(help="seconds --wait waits at most")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@search_app.command("index")
def index(wait: Wait = False, timeout: Timeout = 600, as_json: Json = False) -> None:
    """Enqueue `index_changes`: index every change since the last run."""
    _run("index_changes", wait, timeout, as_json)


@search_app.command("optimize")
def optimize(wait: Wait = False, timeout: Timeout = 1800, as_json: Json = False) -> None:
    """Enqueue `optimize_search_index`: the engine's merge, stale documents purged."""
    _run("optimize_search_index", wait, timeout, as_json)


@search_app.command("rebuild")
def rebuild(wait: Wait = False, timeout: Timeout = 3600, as_json: Json = False) -> None:
    """Enqueue `rebuild_search_index`: a new index, switched to atomically when complete."""
    _run("rebuild_search_index", wait, timeout, as_json)

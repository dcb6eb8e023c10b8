"""Searching the active generation: ranked hits with a highlighted snippet, total, facets."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from domain.errors import InvalidInput
from domain.search import engines
from domain.search.schema import KINDS
from domain.search.text import QuerySyntaxError, parse, snippet

MAX_LIMIT = 100
MAX_OFFSET = 10_000


def search(
    engine: Engine,
    q: str,
    *,
    kind: str | None = None,
    site_code: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """Hits of `q` (see domain.search.text.parse), best first, with facets by kind and site.

    Facets ignore their own filter (the kind facet counts every kind within the site filter,
    and the other way round), so a client can show what another choice would give.
    """
    query = parse(q)
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    if date_from and date_to and date_from > date_to:
        raise InvalidInput(f"date_debut {date_from} is after date_fin {date_to}")
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"limit must be 1-{MAX_LIMIT} and offset 0-{MAX_OFFSET}")
    filters = engines.Filters(kind, site_code, date_from, date_to)
    backend = engines.for_dialect(engine.dialect.name)
    try:
        with engine.connect() as connection:
            rows = backend.page(connection, query, filters, limit=limit, offset=offset)
            grouped = backend.facets(connection, query, filters)
    except (OperationalError, ProgrammingError) as error:
        # The parser writes every engine query itself; an engine that still refuses one is
        # told to the user as a query problem, with the engine's words.
        message = str(getattr(error, "orig", error)).splitlines()[0]
        if "syntax" in message or "fts5" in message or "tsquery" in message:
            raise QuerySyntaxError(f"the search engine refused the query: {message}") from None
        raise
    by_kind: dict[str, int] = {}
    by_site: dict[str, int] = {}
    total = 0
    for row in grouped:
        site = row.site_code or "-"
        if site_code is None or row.site_code == site_code:
            by_kind[row.kind] = by_kind.get(row.kind, 0) + row.n
        if kind is None or row.kind == kind:
            by_site[site] = by_site.get(site, 0) + row.n
            if site_code is None or row.site_code == site_code:
                total += row.n
    return {
        "query": q,
        "total": total,
        "offset": offset,
        "limit": limit,
        "results": [
            {
                "kind": row.kind,
                "id": row.ref_id,
                "site_code": row.site_code,
                "date": str(row.doc_date) if row.doc_date is not None else None,
                "title": row.title,
                "snippet": snippet(row.body, query),
                "score": round(-float(row.score), 4),
            }
            for row in rows
        ],
        "facets": {"kind": by_kind, "site_code": by_site},
    }

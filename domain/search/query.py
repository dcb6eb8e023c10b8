"""Searching the active generation: ranked hits with a highlighted snippet, total, facets.

Every query costs about the same however broad it is: the page is ranked among the `WINDOW`
newest matches, the total is counted up to `WINDOW` (then reported as "at least"), and the
facets are counted on the `WINDOW` newest matches. A query matching fewer is ranked, counted
and faceted exactly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypedDict, Unpack

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from domain.errors import InvalidInput
from domain.search import engines, ranking
from domain.search.schema import KINDS
from domain.search.text import Query, QuerySyntaxError, parse, snippet

MAX_LIMIT = 100
MAX_OFFSET = 10_000
#: Matches a query ranks, counts and facets at most: beyond it the work would grow with them.
WINDOW = 1_000
#: A kind or site filter passed by less than this share of a query's matches is intersected
#: in the index by the ranked query; a date range of at most this many months likewise.
RARE_FILTER_SHARE = 0.25
RANKED_MONTH_TAGS = 3


class RequestOptions(TypedDict, total=False):
    """What a search may add to its query (Request.of's keywords)."""

    kind: str | None
    site_code: str | None
    date_from: date | None
    date_to: date | None
    limit: int
    offset: int


def search(
    engine: Engine, q: str, *, window: int = WINDOW, **options: Unpack[RequestOptions]
) -> dict[str, Any]:
    """Hits of `q` (see domain.search.text.parse), best first, with facets by kind and site.

    `total` is `{"value": n, "relation": "eq"}`, or `"gte"` with n = `window` when more match;
    the results are then the best of the `window` newest matches, and `facets_relation` says
    the same of the facets. Facets ignore their own filter (the kind facet counts every kind
    within the site filter, and the other way round), so a client can show what another
    choice would give.
    """
    request = Request.of(q, **options)
    # Read-only where the engine can say so (PostgreSQL); SQLite reads take no write lock.
    with engine.connect().execution_options(postgresql_readonly=True) as connection:
        return answer(connection, request, window=window)


@dataclass(frozen=True)
class Request:
    """A checked search request: its parsed query, filters and page (hashable: a cache key)."""

    q: str
    query: Query
    filters: engines.Filters
    limit: int
    offset: int

    @classmethod
    def of(
        cls,
        q: str,
        kind: str | None = None,
        site_code: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        *,
        limit: int = 20,
        offset: int = 0,
    ) -> Request:
        query = parse(q)
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
        if date_from and date_to and date_from > date_to:
            raise InvalidInput(f"date_debut {date_from} is after date_fin {date_to}")
        if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
            raise InvalidInput(f"limit must be 1-{MAX_LIMIT} and offset 0-{MAX_OFFSET}")
        filters = engines.Filters(kind, site_code, date_from, date_to)
        return cls(q, query, filters, limit, offset)

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.q, self.filters, self.limit, self.offset)


def answer(connection: Connection, request: Request, *, window: int = WINDOW) -> dict[str, Any]:
    """The reads of one search on `connection`: the page, the total and the facets."""
    query, filters = request.query, request.filters
    backend = engines.for_dialect(connection.dialect.name)
    try:
        if isinstance(backend, engines.Fts5):
            # One walk and a ranking in Python: FTS5's bm25() rescans doclists per query.
            reads = ranking.read(
                connection,
                backend,
                query,
                filters,
                window=window,
                limit=request.limit,
                offset=request.offset,
            )
            return _answer(request, reads.grouped, reads.rows, reads.total, window=window)
        # One match over the window tells a complete sample from a full one.
        # An engine that checked a capped sample of candidates (`sampled`) found at least this.
        grouped, sampled = backend.facets(connection, query, filters, window=window + 1)
        sample = sum(row.n for row in grouped)
        rows = backend.page(
            connection,
            query,
            filters,
            limit=request.limit,
            offset=request.offset,
            window=window,
            tagged=_page_tags(filters, grouped, sample),
        )
        if (filters.kind is None and filters.site_code is None) or sample <= window:
            # The facets' sample holds every match the total counts (all of them, or the
            # window and one more): no second walk through the index.
            total = sum(row.n for row in grouped if _within(row, filters))
        else:
            total = backend.count(connection, query, filters, cap=window + 1)
    except (OperationalError, ProgrammingError, sqlite3.OperationalError) as error:
        # The parser writes every engine query itself; an engine that still refuses one is
        # told to the user as a query problem, with the engine's words. (SQLite's ranking
        # reads through the driver: its errors are the driver's, not SQLAlchemy's.)
        message = str(getattr(error, "orig", error)).splitlines()[0]
        if "syntax" in message or "fts5" in message or "tsquery" in message:
            raise QuerySyntaxError(f"the search engine refused the query: {message}") from None
        raise
    return _answer(request, grouped, rows, total, window=window, sampled=sampled)


def _answer(
    request: Request,
    grouped: Sequence[Any],
    rows: Sequence[Any],
    total: int,
    *,
    window: int,
    sampled: bool = False,
) -> dict[str, Any]:
    """The response: the page's results with snippets, the bounded total, the facets."""
    query, filters = request.query, request.filters
    sample = sum(row.n for row in grouped)
    by_kind: dict[str, int] = {}
    by_site: dict[str, int] = {}
    for row in grouped:
        site = row.site_code or "-"
        if filters.site_code is None or row.site_code == filters.site_code:
            by_kind[row.kind] = by_kind.get(row.kind, 0) + row.n
        if filters.kind is None or row.kind == filters.kind:
            by_site[site] = by_site.get(site, 0) + row.n
    return {
        "query": request.q,
        "total": _bounded(total, window, sampled=sampled),
        "offset": request.offset,
        "limit": request.limit,
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
        "facets_relation": "gte" if sampled or sample > window else "eq",
    }


def _page_tags(filters: engines.Filters, grouped: list[Any], sample: int) -> engines.Filters:
    """The filters the ranked query intersects in the index: a kind or site that few of the
    matches pass (the facets' sample says how many), and a date range of a few months. The
    others are checked on each match: the window fills within a few times its size."""
    passing = sum(row.n for row in grouped if _within(row, filters))
    rare = passing < sample * RARE_FILTER_SHARE
    months = filters.dates_only().tags()  # [] or [the months of the range]
    narrow = bool(months) and len(months[0]) <= RANKED_MONTH_TAGS
    return engines.Filters(
        filters.kind if rare else None,
        filters.site_code if rare else None,
        filters.date_from if narrow else None,
        filters.date_to if narrow else None,
    )


def _within(row: Any, filters: engines.Filters) -> bool:
    return filters.kind in (None, row.kind) and filters.site_code in (None, row.site_code)


def _bounded(count: int, window: int, *, sampled: bool = False) -> dict[str, Any]:
    """A count made up to `window` + 1: exact below, "at least `window`" above; "at least" too
    when the engine counted on a sample of the candidates."""
    if count > window:
        return {"value": window, "relation": "gte"}
    return {"value": count, "relation": "gte" if sampled else "eq"}

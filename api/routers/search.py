"""Search (seed 002 "Indexation et Recherche"): the query route, index status, and the
enqueue routes of the indexing jobs (queue `default`)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Response

from actors.maintenance import (
    Empty,
    IndexChanges,
    index_changes,
    optimize_search_index,
    rebuild_search_index,
)
from api.deps import SettingsDep, WriterDep
from api.enqueue import submit
from api.params import OptionalSiteCode
from api.schemas import ACCEPTED, Accepted
from domain import search as index
from domain.search.query import MAX_LIMIT, MAX_OFFSET, Request
from domain.search.reader import searcher_for
from domain.search.text import MAX_QUERY_CHARS
from runtime import engine

router = APIRouter(tags=["search"])
tasks = APIRouter(
    responses=ACCEPTED, prefix="/api/tasks/search", tags=["search"], dependencies=[WriterDep]
)
Kind = Literal["lot", "feedback", "anomaly", "certificate", "file"]


@router.get("/api/search")
async def search(
    settings: SettingsDep,
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_CHARS,
            description='words (all required), "a phrase", a OR b, -word, pref*',
        ),
    ],
    kind: Kind | None = None,
    site_code: OptionalSiteCode = None,
    date_debut: date | None = None,
    date_fin: date | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Ranked results with a highlighted snippet (`**word**`), total, facets by kind and site.

    Past 1,000 matches the 1,000 newest are ranked and faceted, and `total.relation` is
    "gte". Reads the database only: answers while Redis is down. Runs on the process's
    searcher (its own thread, its few read-only connections); repeated within SEARCH_CACHE_S,
    answered from memory unless the index changed meanwhile."""
    searcher = searcher_for(
        engine(), connections=settings.search_connections, cache_s=settings.search_cache_s
    )
    request = Request.of(q, kind, site_code, date_debut, date_fin, limit=limit, offset=offset)
    found = await asyncio.wrap_future(searcher.submit(request))
    # Already plain JSON types: orjson writes it without FastAPI's encoder walking it.
    return Response(orjson.dumps(found), media_type="application/json")


@router.get("/api/search/status")
def search_status() -> dict[str, Any]:
    """Pending changes, lag of the oldest (seconds), documents by kind, generation."""
    return index.status(engine())


@tasks.post("/index-changes", status_code=202)
def enqueue_index_changes() -> Accepted:
    return submit(index_changes, IndexChanges(), message="Search indexing started")


@tasks.post("/optimize", status_code=202)
def enqueue_optimize() -> Accepted:
    return submit(optimize_search_index, Empty(), message="Search index optimization started")


@tasks.post("/rebuild", status_code=202)
def enqueue_rebuild() -> Accepted:
    return submit(rebuild_search_index, Empty(), message="Search index rebuild started")

"""GET /api/search's fast path (api/fast_search.py): the same answers as FastAPI's route, byte
for byte, through the real app (TestClient) on the real test database and its index."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.deps import require_writer
from api.fast_search import FastSearch, search_route
from api.main import create_app
from api.routers import search as search_router
from domain import search
from domain.platform.settings import Settings
from ops.bench.search import QUERIES
from runtime import engine

#: The benchmark's mix, pages past the first, and the facets' filters on their own.
REQUESTS: list[dict[str, Any]] = [
    *(params for _, params in QUERIES),
    {"q": "foie", "limit": 5, "offset": 5},
    {"q": "foie", "limit": 100, "offset": 300},
    {"q": "mulard", "kind": "lot", "site_code": "LL", "limit": 100},
    {"q": "mulard", "date_debut": "2025-12-01"},
    {"q": "foie", "unknown": "ignored"},
]
#: What FastAPI refuses (its 422s) and what the endpoint refuses (the app's 422s).
REFUSED: list[dict[str, Any]] = [
    {},
    {"q": "foie", "kind": "cow"},
    {"q": "x" * 501},
    {"q": "a", "limit": 0},
    {"q": "a", "offset": -1},
    {"q": "a", "date_debut": "yesterday"},
    {"q": "a", "site_code": ""},
    {"q": ""},
    {"q": '"foie gras'},
    {"q": "foie OR"},
    {"q": "(foie)"},
    {"q": "foie", "date_debut": "2026-02-01", "date_fin": "2026-01-01"},
]


@pytest.fixture()
def slow_client(api_client: Any) -> Iterator[TestClient]:
    """The same app without the fast path: every search routed by FastAPI, and read from the
    index (no cache: none of its answers is one the fast path put there)."""
    app = create_app(Settings(search_cache_s=0))
    fast = next(m for m in app.user_middleware if m.cls is FastSearch)
    fast.kwargs["route"] = None
    with TestClient(app) as client:
        yield client


def test_the_search_route_qualifies_and_a_route_with_a_token_would_not(api_client: Any) -> None:
    fast = next(m for m in api_client.app.user_middleware if m.cls is FastSearch)
    route = fast.kwargs["route"]
    assert isinstance(route, APIRoute) and route.path == "/api/search"
    assert route.endpoint is search_router.search
    # A search route that gained a reader token falls back to FastAPI instead of skipping it
    guarded = APIRoute(
        "/api/search", search_router.search, methods=["GET"], dependencies=[Depends(require_writer)]
    )
    assert search_route([guarded]) is None


def test_fast_and_slow_paths_answer_the_same_bytes(
    api_client: Any, slow_client: TestClient
) -> None:
    # Given the demo database indexed
    search.index_changes(engine())
    for params in REQUESTS:
        # When the same search is asked through both paths
        fast = api_client.get("/api/search", params=params)
        slow = slow_client.get("/api/search", params=params)
        # Then the answers are identical, headers included
        assert fast.status_code == slow.status_code == 200, (params, fast.text)
        assert fast.content == slow.content, params
        assert fast.headers == slow.headers, params


def test_refusals_are_the_routes_own_answers(api_client: Any, slow_client: TestClient) -> None:
    for params in REFUSED:
        fast = api_client.get("/api/search", params=params)
        slow = slow_client.get("/api/search", params=params)
        assert fast.status_code == slow.status_code == 422, (params, fast.text)
        assert fast.content == slow.content, params


def test_the_fast_path_answers_without_fastapi_and_hands_refusals_to_it(
    api_client: Any,
) -> None:
    search.index_changes(engine())
    passed: list[str] = []

    async def fastapi(scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = FastSearch(fastapi, route=search_route(search_router.router.routes))

    def status(query: str) -> int:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http", "method": "GET", "path": "/api/search", "root_path": "",
            "query_string": query.encode(), "headers": [], "app": api_client.app,
        }  # fmt: skip
        asyncio.run(fast(scope, receive, send))
        return int(sent[0]["status"])

    assert status("q=foie&kind=feedback&limit=3") == 200 and passed == []
    assert status("q=foie&limit=0") == 599 and passed == ["q=foie&limit=0"]
    assert status("q=%22foie") == 599 and passed[-1] == "q=%22foie"


def test_searches_are_counted_under_their_route(api_client: Any) -> None:
    api_client.get("/api/search", params={"q": "foie"})
    metrics = api_client.get("/metrics/").text
    assert 'method="GET",route="/api/search"' in metrics

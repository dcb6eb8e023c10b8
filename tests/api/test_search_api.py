"""GET /api/search and the indexing routes: results, facets, 422s, auth."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from domain import search
from domain.models import ConsumerFeedback
from runtime import engine


def _indexed(api_client: Any) -> None:
    search.index_changes(engine())


def test_search_answers_ranked_hits_with_snippet_total_and_facets(api_client: Any) -> None:
    # Given the demo database indexed
    _indexed(api_client)
    # When comments are searched without accents and by a plural
    body = api_client.get("/api/search", params={"q": "foies fondants", "limit": 3}).json()
    # Then the best hits come first, with the words marked, and facets add up to the total
    total = body["total"]["value"]
    assert total > 3 and body["total"]["relation"] == "eq" and len(body["results"]) == 3
    first = body["results"][0]
    assert first["kind"] == "feedback" and "**foie**" in first["snippet"].lower()
    assert {"id", "site_code", "date", "title", "score"} <= set(first)
    assert sum(body["facets"]["kind"].values()) == total
    assert sum(body["facets"]["site_code"].values()) == total
    assert body["facets_relation"] == "eq"
    scores = [hit["score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_filters_by_kind_site_and_dates(api_client: Any) -> None:
    _indexed(api_client)
    lots = api_client.get(
        "/api/search", params={"q": "mulard", "kind": "lot", "site_code": "LL", "limit": 100}
    ).json()
    assert lots["total"]["value"] > 0
    assert {hit["kind"] for hit in lots["results"]} == {"lot"}
    assert {hit["site_code"] for hit in lots["results"]} == {"LL"}
    dated = api_client.get(
        "/api/search",
        params={"q": "mulard", "kind": "lot", "date_debut": "2025-12-01", "date_fin": "2025-12-31"},
    ).json()
    assert dated["total"]["value"] > 0
    assert all("2025-12-01" <= hit["date"] <= "2025-12-31" for hit in dated["results"])


def test_bad_queries_are_422_with_a_message(api_client: Any) -> None:
    for params, words in (
        ({"q": ""}, "empty"),
        ({"q": "   "}, "empty"),
        ({"q": '"foie gras'}, "quote"),
        ({"q": "foie OR"}, "OR"),
        ({"q": "(foie)"}, "parentheses"),
        ({"q": "foie", "date_debut": "2026-02-01", "date_fin": "2026-01-01"}, "after"),
    ):
        response = api_client.get("/api/search", params=params)
        assert response.status_code == 422, params
        assert words in str(response.json()["detail"]), params
    for params in ({}, {"q": "foie", "kind": "cow"}, {"q": "x" * 501}, {"q": "a", "limit": 0}):
        assert api_client.get("/api/search", params=params).status_code == 422, params


def test_status_route_shows_freshness(api_client: Any) -> None:
    _indexed(api_client)
    body = api_client.get("/api/search/status").json()
    assert body["pending_changes"] == 0 and body["lag_s"] == 0.0
    assert body["documents"]["lot"] == 60


def test_indexing_routes_need_a_token_and_answer_202(api_client: Any, auth: dict[str, str]) -> None:
    for route in ("index-changes", "optimize", "rebuild"):
        assert api_client.post(f"/api/tasks/search/{route}").status_code == 401
        answer = api_client.post(f"/api/tasks/search/{route}", headers=auth)
        assert answer.status_code == 202, answer.text
        assert answer.json()["status_url"].startswith("/api/tasks/status/")


def test_a_cached_answer_gives_way_to_the_next_indexing_run(api_client: Any) -> None:
    # Given a search answered (and cached: SEARCH_CACHE_S defaults to 30 s)
    _indexed(api_client)
    params = {"q": "ortolan", "limit": 5}
    assert api_client.get("/api/search", params=params).json()["total"]["value"] == 0
    # When a comment saying the word is written and indexed
    with engine().begin() as connection:
        connection.execute(
            insert(ConsumerFeedback).values(
                lot_id=3001,
                created_at=datetime(2026, 1, 5, tzinfo=UTC),
                rating=4,
                texture=4,
                taste=4,
                comment="Un ortolan, paraît-il.",
            )
        )
    search.index_changes(engine())
    # Then the very next search finds it
    found = api_client.get("/api/search", params=params).json()
    assert found["total"] == {"value": 1, "relation": "eq"}
    assert found["results"][0]["snippet"].startswith("Un **ortolan**")

"""Search queries on the real engines: filters as index tags, the result cache and its
watermark, migration 0010 on an indexed database, bounded phrase queries. Each case runs on
SQLite FTS5 and on the test PostgreSQL (the `engine` fixture of test_search.py).
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, text, update

from domain import demo, search
from domain.models import Lot
from domain.platform import db
from domain.search.engines import PostgresFts
from domain.search.query import Request
from domain.search.reader import Searcher
from tests.integration.test_search import add_feedback, fresh_database
from tests.integration.test_search import engine as engine  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

FILTERS: list[dict[str, Any]] = [
    {"kind": "feedback"},
    {"kind": "lot"},
    {"site_code": "LL"},
    {"kind": "feedback", "site_code": "MT"},
    {"date_from": date(2025, 12, 10), "date_to": date(2026, 1, 6)},
    {"kind": "lot", "site_code": "LS", "date_from": date(2025, 11, 1)},
    # wider than the month tags go: the exact date filter alone
    {"date_from": date(2020, 1, 1), "date_to": date(2026, 12, 31)},
]


def everything(engine: Engine, q: str) -> list[dict[str, Any]]:
    return search.search(engine, q, limit=100)["results"]


def wanted(hit: dict[str, Any], filters: dict[str, Any]) -> bool:
    day = date.fromisoformat(hit["date"]) if hit["date"] else None
    return (
        filters.get("kind", hit["kind"]) == hit["kind"]
        and filters.get("site_code", hit["site_code"]) == hit["site_code"]
        and ("date_from" not in filters or (day is not None and day >= filters["date_from"]))
        and ("date_to" not in filters or (day is not None and day <= filters["date_to"]))
    )


def test_filtered_queries_find_what_filtering_every_match_finds(engine: Engine) -> None:
    # Given the demo indexed, and lots whose notes share a word with comments of every site
    with engine.begin() as connection:
        connection.execute(update(Lot).where(Lot.id % 7 == 0).values(notes="mulard hermine"))
    for lot_id in range(3001, 3061, 3):
        add_feedback(engine, "hermine au goût de noisette", lot_id=lot_id)
    search.index_changes(engine)
    every = everything(engine, "hermine")
    assert 0 < len(every) < 100 and {h["kind"] for h in every} == {"lot", "feedback"}

    # When searched with each filter (kind, site and month are tags of the index)
    for filters in FILTERS:
        found = search.search(engine, "hermine", limit=100, **filters)
        # Then the hits are those of the unfiltered search that pass the filter, ranked alike
        expected = [(h["kind"], h["id"]) for h in every if wanted(h, filters)]
        got = [(h["kind"], h["id"]) for h in found["results"]]
        assert sorted(got) == sorted(expected), filters
        assert found["total"] == {"value": len(expected), "relation": "eq"}, filters


def test_a_filter_finds_its_few_matches_past_a_full_window_of_others(engine: Engine) -> None:
    # Given 8 comments saying "hermine", newer than the one lot that says it
    with engine.begin() as connection:
        connection.execute(update(Lot).where(Lot.id == 3010).values(notes="hermine"))
    search.index_changes(engine)
    for _ in range(8):
        add_feedback(engine, "hermine")
    search.index_changes(engine)
    # When searched for lots with a window of 5 newest matches
    found = search.search(engine, "hermine", kind="lot", window=5)
    # Then the window is of lots only: the lot is found and counted exactly
    assert [(h["kind"], h["id"]) for h in found["results"]] == [("lot", 3010)]
    assert found["total"] == {"value": 1, "relation": "eq"}


def test_documents_carry_their_tags_in_the_index(engine: Engine) -> None:
    search.index_changes(engine)
    documents = search.status(engine)["documents"]
    assert tagged(engine, "kfeedback") == documents["feedback"] > 0
    assert tagged(engine, "klot") == documents["lot"] == 60


def ids(found: dict[str, Any]) -> set[tuple[str, int]]:
    return {(hit["kind"], hit["id"]) for hit in found["results"]}


def tagged(engine: Engine, tag: str) -> int:
    """Documents of the index carrying `tag`, counted by the engine's own full-text match."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            sql = "SELECT count(*) FROM search_fts WHERE search_fts MATCH :m"
            return int(connection.execute(text(sql), {"m": f'tags : "{tag}"'}).scalar_one())
        sql = "SELECT count(*) FROM search_documents WHERE tsv @@ CAST(:m AS tsquery)"
        return int(connection.execute(text(sql), {"m": f"'#{tag}'"}).scalar_one())


def test_cached_results_answer_until_the_index_changes(engine: Engine) -> None:
    # Given an indexed database and a searcher that keeps results for a minute
    search.index_changes(engine)
    searcher = Searcher(engine, connections=2, cache_s=60)
    try:
        first = searcher.search(Request.of("foie"))
        # When the same search comes again, it is answered from memory
        assert searcher.search(Request.of("foie")) is first and searcher.hits == 1
        # (another page or filter is another entry)
        assert searcher.search(Request.of("foie", kind="lot")) is not first
        # When a comment is written, the cache answers until the change is indexed,
        ref = add_feedback(engine, "foie exceptionnel de fraîcheur")
        assert searcher.search(Request.of("foie")) is first
        search.index_changes(engine)
        # then the next search reads the index again and sees it at once
        after = searcher.search(Request.of("foie", limit=100))
        assert ("feedback", ref) in [(h["kind"], h["id"]) for h in after["results"]]
        assert searcher.search(Request.of("fraicheur"))["total"]["value"] == 1
        # and a rebuild moves the watermark too
        before = searcher.search(Request.of("fraicheur"))
        search.rebuild(engine)
        assert searcher.search(Request.of("fraicheur")) is not before
    finally:
        searcher.close()


def test_searcher_connections_are_read_only_and_bad_queries_still_422(engine: Engine) -> None:
    searcher = Searcher(engine, connections=1, cache_s=0)
    try:
        with pytest.raises(search.QuerySyntaxError, match="quote"):
            searcher.search(Request.of('"foie'))
        with searcher.engine.connect() as connection, pytest.raises(Exception, match="read"):
            connection.execute(text("DELETE FROM search_state"))
    finally:
        searcher.close()


def test_searches_run_on_the_searchers_own_threads(engine: Engine) -> None:
    # Given a searcher of four connections
    search.index_changes(engine)
    searcher = Searcher(engine, connections=4, cache_s=0)
    try:
        # When searches are submitted at once, each answers what a direct search does
        requests = [Request.of(q) for q in ("foie", "mulard", "foie -fondant", "terrine*")] * 3
        futures = [searcher.submit(request) for request in requests]
        assert [f.result(timeout=30) for f in futures] == [searcher.search(r) for r in requests]
        # on threads of its own: one on SQLite (threads searching at once would hand the GIL
        # to and fro at every row), one per connection where the database works apart
        own = [t for t in threading.enumerate() if t.name.startswith(searcher.thread_names)]
        assert len(own) == (1 if engine.dialect.name == "sqlite" else 4)
    finally:
        searcher.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(searcher.thread_names)]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0010_tags_an_indexed_database_and_downgrades(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given an indexed database taken back to revision 0009 (documents without tags)
    url = fresh_database(kind, tmp_path, lambda: request.getfixturevalue("postgres"))
    db.migrate(url)
    built = db.make_engine(url)
    try:
        demo.load_if_empty(built, seed=7, scale=0.1, today=date(2026, 1, 8))
        search.index_changes(built)
        before = search.search(built, "foie", limit=100)
        feedback = search.status(built)["documents"]["feedback"]
        built.dispose()
        command.downgrade(db.alembic_config(url), "0009_processing_audit")
        assert untagged(built)
        built.dispose()
        # When migrated again
        db.migrate(url)
        # Then every document has its tags, unfiltered searches are unchanged and filtered
        # ones work without a rebuild
        assert tagged(built, "kfeedback") == feedback
        after = search.search(built, "foie", limit=100)
        assert after["total"] == before["total"] and ids(after) == ids(before)
        lots = search.search(built, "mulard", kind="lot", site_code="LL", limit=100)
        assert lots["results"] and {(h["kind"], h["site_code"]) for h in lots["results"]} == {
            ("lot", "LL")
        }
    finally:
        built.dispose()


def untagged(engine: Engine) -> bool:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            columns = connection.execute(text("SELECT * FROM search_fts LIMIT 1")).keys()
            return list(columns) == ["terms"]
        sql = "SELECT count(*) FROM search_documents WHERE tsv @@ CAST(:m AS tsquery)"
        return bool(connection.execute(text(sql), {"m": "'#kfeedback'"}).scalar_one() == 0)


def test_postgres_checks_a_phrase_on_a_capped_set_of_candidates(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a comment holding a phrase, then 6 newer ones holding its words in another order
    url = fresh_database("postgresql", tmp_path, lambda: request.getfixturevalue("postgres"))
    db.migrate(url)
    built = db.make_engine(url)
    try:
        demo.load_if_empty(built, seed=7, scale=0.1, today=date(2026, 1, 8))
        phrase = add_feedback(built, "Une hermine de plume, rare.")
        for _ in range(6):
            add_feedback(built, "La plume et l'hermine.")
        search.index_changes(built)
        # When the phrase is checked on the 5 newest documents holding its words
        monkeypatch.setattr(PostgresFts, "PHRASE_CANDIDATES", 5)
        capped = search.search(built, '"hermine de plume"')
        # Then the older match is out of reach, and the total says "at least"
        assert capped["results"] == [] and capped["total"] == {"value": 0, "relation": "gte"}
        assert capped["facets_relation"] == "gte"
        # When the candidates hold every document with the words, the phrase alone matches
        monkeypatch.setattr(PostgresFts, "PHRASE_CANDIDATES", 8)
        found = search.search(built, '"hermine de plume"')
        assert [h["id"] for h in found["results"]] == [phrase]
        assert found["total"] == {"value": 1, "relation": "eq"}
        # and excluding the phrase keeps the others
        assert search.search(built, 'plume -"hermine de plume"')["total"]["value"] == 6
    finally:
        built.dispose()


def test_a_site_code_never_reaches_the_engines_query_syntax(engine: Engine) -> None:
    search.index_changes(engine)
    assert search.search(engine, "mulard", site_code="LL")["total"]["value"] > 0
    for odd in ('LL" OR "foie', "LL' | 'foie", "L L"):
        found = search.search(engine, "mulard", site_code=odd)
        assert found["results"] == [] and found["total"] == {"value": 0, "relation": "eq"}

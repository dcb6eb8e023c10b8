"""The search index on the real engines: SQLite FTS5 and the test PostgreSQL (tsvector + GIN).

Every test gets a fresh migrated database holding the small demo (60 lots, ~150 comments).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select, update

from domain import demo, search
from domain.models import ConsumerFeedback, Lot
from domain.platform import db
from domain.search import schema
from domain.search.index import index_batch

pytestmark = pytest.mark.slow


def fresh_database(kind: str, tmp_path: Path, postgres_server: Any) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'search.db'}"
    return postgres_server().create_database(f"search_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = fresh_database(request.param, tmp_path, lambda: request.getfixturevalue("postgres"))
    db.migrate(url)
    built = db.make_engine(url)
    demo.load_if_empty(built, seed=7, scale=0.1, today=date(2026, 1, 8))
    yield built
    built.dispose()


def add_feedback(engine: Engine, comment: str, *, lot_id: int = 3001) -> int:
    with engine.begin() as connection:
        return int(
            connection.execute(
                insert(ConsumerFeedback)
                .values(
                    lot_id=lot_id,
                    created_at=datetime(2026, 1, 5, tzinfo=UTC),
                    rating=5,
                    texture=5,
                    taste=5,
                    comment=comment,
                )
                .returning(ConsumerFeedback.id)
            ).scalar_one()
        )


def hits(engine: Engine, q: str, **filters: Any) -> list[tuple[str, int]]:
    found = search.search(engine, q, limit=100, **filters)
    return [(hit["kind"], hit["id"]) for hit in found["results"]]


def test_migration_logs_existing_rows_and_a_first_run_indexes_them(engine: Engine) -> None:
    # Given the demo loaded (every row a logged change), when indexed once
    before = search.status(engine)
    assert before["pending_changes"] > 0 and before["documents"]["lot"] == 0
    outcome = search.index_changes(engine)

    # then every lot and comment is a document and nothing is pending
    after = search.status(engine)
    with engine.connect() as connection:
        lots = connection.execute(select(func.count()).select_from(Lot)).scalar_one()
        comments = connection.execute(select(func.count()).select_from(ConsumerFeedback))
        assert after["documents"]["lot"] == lots == 60
        assert after["documents"]["feedback"] == comments.scalar_one()
    assert outcome["changes"] == before["pending_changes"] and after["pending_changes"] == 0
    assert after["lag_s"] == 0.0


def test_accented_comment_is_found_without_accents_and_by_its_plural(engine: Engine) -> None:
    # Given a comment written with accents, indexed
    search.index_changes(engine)
    ref = add_feedback(engine, "Pâté truffé délicieux, gelée parfumée à souhait.")
    search.index_changes(engine)

    # When searched without accents, by plurals, with accents, by a prefix
    for query in ("pate truffe", "pâtés truffés", "gelees parfumees", "PATE", "truf*"):
        # Then it is found, with the matching words highlighted in the snippet
        assert ("feedback", ref) in hits(engine, query), query
    found = search.search(engine, "pates", kind="feedback")
    assert found["results"][0]["snippet"].startswith("**Pâté**")
    assert found["facets"]["kind"] == {"feedback": 1}
    # and an excluded word or another site rules it out
    assert ("feedback", ref) not in hits(engine, "pate -gelee")
    assert hits(engine, "pate", site_code="MT") == []


def test_deleted_feedback_disappears_after_the_next_incremental_run(engine: Engine) -> None:
    # Given an indexed comment
    search.index_changes(engine)
    ref = add_feedback(engine, "Saveur noisette remarquable")
    search.index_changes(engine)
    assert ("feedback", ref) in hits(engine, "noisette remarquable")

    # When it is deleted, it is still found until the next run, then gone
    with engine.begin() as connection:
        connection.execute(delete(ConsumerFeedback).where(ConsumerFeedback.id == ref))
    assert search.status(engine)["pending_changes"] == 1
    outcome = search.index_changes(engine)
    assert outcome["deleted"] == 1
    assert hits(engine, "noisette remarquable") == []


def test_a_lot_status_change_is_searchable_after_the_next_run(engine: Engine) -> None:
    search.index_changes(engine)
    with engine.begin() as connection:
        connection.execute(
            update(Lot).where(Lot.id == 3001).values(notes="Vétérinaire passé, boiterie")
        )
    assert hits(engine, "boiterie") == []
    search.index_changes(engine)
    assert hits(engine, "veterinaire boiterie") == [("lot", 3001)]


def test_query_errors_are_clear(engine: Engine) -> None:
    for bad, words in (("", "empty"), ('"foie', "quote"), ("OR foie", "OR"), ("-foie", "nothing")):
        with pytest.raises(search.QuerySyntaxError, match=words):
            search.search(engine, bad)


def test_two_concurrent_runs_index_each_change_once(engine: Engine) -> None:
    # Given 400 new comments on top of the demo's logged rows
    for n in range(400):
        add_feedback(engine, f"commentaire concurrent numéro {n}")
    pending = search.status(engine)["pending_changes"]

    # When two runs start at once, in small batches so that they interleave
    outcomes: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            outcomes.append(search.index_changes(engine, batch=25))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then both succeed, the changes they consumed add up to those logged (none twice),
    assert not errors, errors
    assert sum(o["changes"] for o in outcomes) == pending
    # (Whether both got batches depends on the scheduler: SQLite's busy handler may let one
    # run take every batch while the other waits; the sum holds either way.)
    assert len(outcomes) == 2
    # and each comment is one document.
    assert len(hits(engine, "concurrent", kind="feedback")) == 100  # limit
    assert search.search(engine, "concurrent")["total"] == {"value": 400, "relation": "eq"}


def test_rebuild_switches_atomically_while_searches_keep_answering(engine: Engine) -> None:
    # Given an indexed database and a reader searching in a loop
    search.index_changes(engine)
    expected = search.search(engine, "foie")["total"]["value"]
    assert expected > 0
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(search.search(engine, "foie", limit=5)["total"]["value"])
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    # When the index is rebuilt in small chunks (many transactions), and a comment is added
    # and indexed half-way through by an incremental run
    try:
        outcome = search.rebuild(engine, chunk=20)
        ref = add_feedback(engine, "foie après reconstruction")
        search.index_changes(engine)
    finally:
        stop.set()
        thread.join(timeout=60)

    # Then no search failed or came back empty, and the new generation is complete
    assert not errors, errors[:3]
    assert len(seen) > 5 and min(seen) == expected
    assert outcome["generation"] == 2 and outcome["old_documents_dropped"] > 0
    assert search.status(engine)["active_generation"] == 2
    assert ("feedback", ref) in hits(engine, "reconstruction")
    with engine.connect() as connection:
        generations = connection.execute(select(schema.documents.c.generation).distinct())
        assert set(generations.scalars()) == {2}


def test_changes_during_a_rebuild_reach_the_new_generation(engine: Engine) -> None:
    # Given a rebuild that has started (building generation 2), driven by hand
    search.index_changes(engine)
    with engine.begin() as connection:
        connection.execute(schema.state.update().values(building_generation=2))
    # When a comment is written and indexed before the rebuild copies it
    ref = add_feedback(engine, "écrit pendant la reconstruction")
    index_batch(engine)
    # Then both generations have it, so the switch loses nothing
    with engine.connect() as connection:
        generations = connection.execute(
            select(schema.documents.c.generation)
            .where(schema.documents.c.ref_id == ref)
            .where(schema.documents.c.kind == "feedback")
        ).scalars()
        assert sorted(generations) == [1, 2]


def test_optimize_merges_and_purges(engine: Engine) -> None:
    search.index_changes(engine)
    search.rebuild(engine)
    outcome = search.optimize(engine)
    assert outcome["stale_documents_dropped"] == 0
    assert outcome["engine"] in ("sqlite-fts5", "postgresql-tsvector")
    assert search.status(engine)["optimized_at_unix_s"] is not None
    assert search.search(engine, "foie")["total"]["value"] > 0


def ranked_comments(engine: Engine, counts: list[int]) -> dict[int, int]:
    """One comment per count, in order, saying "hermine" that many times among as many words
    as the others: the more it says it, the better it ranks on both engines (BM25 and cover
    density grow with the term's frequency at equal length). Returns feedback id -> count."""
    longest = max(counts)
    return {
        add_feedback(engine, " ".join(["hermine"] * n + ["plume"] * (longest - n))): n
        for n in counts
    }


def test_first_page_is_the_full_ranking_and_totals_are_exact_below_the_window(
    engine: Engine,
) -> None:
    # Given 12 comments whose relevance to "hermine" is known, written in a shuffled order
    search.index_changes(engine)
    counts = ranked_comments(engine, [5, 12, 1, 9, 3, 11, 7, 2, 10, 4, 8, 6])
    search.index_changes(engine)
    by_relevance = sorted(counts, key=counts.__getitem__, reverse=True)

    # When searched with a window holding every match
    found = search.search(engine, "hermine", limit=4, window=12)
    # Then the first page is the head of the full ranking, every page follows on from it,
    # and the total and the facets are exact
    assert [hit["id"] for hit in found["results"]] == by_relevance[:4]
    pages = [search.search(engine, "hermine", limit=4, offset=o)["results"] for o in (4, 8)]
    assert [hit["id"] for page in pages for hit in page] == by_relevance[4:]
    assert found["total"] == {"value": 12, "relation": "eq"}
    assert found["facets"]["kind"] == {"feedback": 12} and found["facets_relation"] == "eq"


def test_broad_queries_rank_the_newest_window_and_say_the_total_is_a_floor(
    engine: Engine,
) -> None:
    # Given 12 known comments, the most relevant ones written first
    search.index_changes(engine)
    counts = ranked_comments(engine, list(range(12, 0, -1)))
    search.index_changes(engine)
    newest = list(counts)[-5:]

    # When searched with a window of 5 (the API's is 1,000)
    found = search.search(engine, "hermine", limit=3, window=5)
    # Then the page is the best of the 5 newest matches, best first
    assert [hit["id"] for hit in found["results"]] == sorted(
        newest, key=counts.__getitem__, reverse=True
    )[:3]
    # and the total and the facets say "at least" instead of counting every match
    assert found["total"] == {"value": 5, "relation": "gte"}
    # (facets are lower bounds counted on the window and one match more)
    assert found["facets"]["kind"] == {"feedback": 6} and found["facets_relation"] == "gte"
    # A filter counts within itself: no lot says "hermine"
    assert search.search(engine, "hermine", kind="lot", window=5)["total"] == {
        "value": 0,
        "relation": "eq",
    }

"""SQLite's ranking in Python (domain/search/ranking.py) against FTS5's own `bm25()`, and its
tiers: the best of the newest candidates first, then the rest of the window, each match once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from domain import demo, search
from domain.platform import db
from domain.search import ranking
from domain.search.engines import Fts5
from domain.search.text import parse
from tests.integration.test_search import add_feedback, ranked_comments

pytestmark = pytest.mark.slow

QUERIES = ["hermine", "foie gras", '"hermine plume"', "herm*", "hermine OR plume", "foie -gras"]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'search.db'}"
    db.migrate(url)
    built = db.make_engine(url)
    demo.load_if_empty(built, seed=7, scale=0.1, today=date(2026, 1, 8))
    yield built
    built.dispose()


def fts5_scores(engine: Engine, q: str) -> dict[int, float]:
    """Document id -> FTS5's `bm25()` of every match of `q`."""
    sql = "SELECT rowid, bm25(search_fts, 1.0, 0.0) FROM search_fts WHERE search_fts MATCH :m"
    with engine.connect() as connection:
        rows = connection.execute(text(sql), {"m": Fts5.match(parse(q))})
        return {doc_id: score for doc_id, score in rows}


def ours(engine: Engine, q: str, ids: list[int]) -> dict[int, float]:
    with engine.connect() as connection:
        return dict(zip(ids, ranking._scores(connection, parse(q), ids), strict=True))


def test_scores_are_fts5_bm25_and_follow_the_index(engine: Engine) -> None:
    # Given the demo indexed, and comments saying a word as often as they are relevant
    search.index_changes(engine)
    ranked_comments(engine, [3, 1, 4, 2])
    search.index_changes(engine)
    for _ in range(2):
        # When every match of each query is scored here
        for q in QUERIES:
            expected = fts5_scores(engine, q)
            assert expected, q
            # Then each score is the one FTS5's bm25() gives it (idf, lengths and all)
            assert ours(engine, q, list(expected)) == pytest.approx(expected, rel=1e-9), q
        # and after the index changes (new documents: new counts), still so: the statistics
        # kept under the old watermark are not used any more
        for _comment in range(5):
            add_feedback(engine, "hermine foie plume gras")
        search.index_changes(engine)


def test_tiers_rank_the_newest_first_and_page_through_every_match_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 12 comments of known relevance, the most relevant written first, and tiers of 4
    search.index_changes(engine)
    counts = ranked_comments(engine, list(range(12, 0, -1)))
    search.index_changes(engine)
    monkeypatch.setattr(ranking, "RANKED", 4)
    # When the first page is read
    found = search.search(engine, "hermine", limit=3)
    # Then it is the best of the 4 newest matches
    newest = list(counts)[-4:]
    assert [h["id"] for h in found["results"]] == sorted(newest, key=counts.__getitem__)[::-1][:3]
    assert found["total"] == {"value": 12, "relation": "eq"}
    # and the pages, read on, hold every match once: each tier best first, newest tier first
    pages = [search.search(engine, "hermine", limit=5, offset=o)["results"] for o in (0, 5, 10)]
    ids = [h["id"] for page in pages for h in page]
    tiers = [list(counts)[-4:], list(counts)[:-4]]
    assert ids == [i for tier in tiers for i in sorted(tier, key=counts.__getitem__)[::-1]]


def test_an_engine_refusal_read_through_the_driver_is_a_query_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an FTS5 expression the engine refuses (the parser never writes one: forced here)
    monkeypatch.setattr(Fts5, "match", staticmethod(lambda *_: 'terms : ("foi" AND'))
    # When searched, then the user is told it is the query, in the engine's words (a 422)
    with pytest.raises(search.QuerySyntaxError, match="fts5: syntax error"):
        search.search(engine, "foie")

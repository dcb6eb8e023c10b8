"""SQLite's reads of one search in one walk through the index, ranked by BM25 in Python.

FTS5's own `bm25()` counts every query phrase's documents once per query, a scan of each
term's whole doclist (2.5 ms for a word in a third of the comments, more for a phrase) before
its first row. Here those counts are kept per process under the index watermark (they change
only when an index commit bumps it), and the score is computed on the candidates alone from
their stored terms: the score `bm25(search_fts, 1.0, 0.0)` gives (k1 1.2, b 0.75, FTS5's idf
floor, lengths counting both columns' tokens), which tests/integration/test_search_ranking.py
checks against FTS5's own.

One walk reads the newest matches' kind and site: the facets, the total and the candidates
come from it. The candidates are ranked in tiers, newest first: the page is the best of the
`RANKED` newest, then the best of the rest of the window, so the first pages read the terms
of `RANKED` documents, not of the whole window, and every match keeps one place in the order.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import date
from operator import itemgetter
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection

from domain.search.engines import Filters, Fts5
from domain.search.text import Query

#: Candidates ranked together before the next tier: the first pages of a broad query read
#: this many documents' terms (~3 µs each: read and scored), not the window's.
RANKED = 250
#: BM25's parameters, FTS5's defaults.
K1 = 1.2
B = 0.75
#: FTS5 keeps the row count and the token totals per column in this record of its data table.
AVERAGES_ID = 1


class Hit(NamedTuple):
    """A page's row, as the engines' `page` returns them (score: lower is better)."""

    kind: str
    ref_id: int
    site_code: str | None
    doc_date: str | None
    title: str
    body: str
    score: float


_ID = itemgetter(0)
_CELL = itemgetter(1, 2)


class Group(NamedTuple):
    """A facets' cell: matches of one kind at one site."""

    kind: str
    site_code: str | None
    n: int


class Reads(NamedTuple):
    grouped: list[Group]
    rows: list[Hit]
    total: int


def newest(
    connection: Connection,
    engine: Fts5,
    query: Query,
    filters: Filters,
    *,
    limit: int,
    before: int | None = None,
) -> list[tuple[int, str, str | None]]:
    """(id, kind, site code) of the `limit` newest matches of `query` within `filters` (all
    intersected in the index), those older than document `before` if given."""
    source, params = engine.source(query, filters)
    if before is not None:
        source += " AND search_fts.rowid < :before"
        params["before"] = before
    sql = f"SELECT d.id, d.kind, d.site_code {source} ORDER BY {engine.newest} LIMIT :limit"
    values = {k: v.isoformat() if isinstance(v, date) else v for k, v in params.items()}
    return _fetch(connection, sql, {**values, "limit": limit})


def _fetch(connection: Connection, sql: str, params: Any) -> list[Any]:
    """Rows as the driver gives them: a thousand rows through SQLAlchemy's result cost more
    than finding them."""
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        return cursor.execute(sql, params).fetchall()
    finally:
        cursor.close()


def read(
    connection: Connection,
    engine: Fts5,
    query: Query,
    filters: Filters,
    *,
    window: int,
    limit: int,
    offset: int,
) -> Reads:
    """The facets' groups (over the `window` + 1 newest matches within the date filters), the
    page and the total (counted up to `window` + 1) of `query` within `filters`."""
    sample = newest(connection, engine, query, filters.dates_only(), limit=window + 1)
    cells = Counter(map(_CELL, sample))
    grouped = [Group(kind, site, n) for (kind, site), n in cells.items()]
    kind, site = filters.kind, filters.site_code
    passing = [
        doc_id
        for doc_id, doc_kind, doc_site in sample
        if kind in (None, doc_kind) and site in (None, doc_site)
    ]
    if len(sample) > window and len(passing) <= window:
        # A kind or site filter that fewer of the sample pass than the window holds: the walk
        # goes on past the sample, the filter now intersected in the index.
        more = window + 1 - len(passing)
        older = newest(connection, engine, query, filters, limit=more, before=sample[-1][0])
        passing += map(_ID, older)
    return Reads(grouped, _page(connection, query, passing[:window], limit, offset), len(passing))


def _page(
    connection: Connection, query: Query, candidates: list[int], limit: int, offset: int
) -> list[Hit]:
    """Rows `offset` to `offset + limit` of the tiered ranking of `candidates` (newest first)."""
    chosen: list[tuple[float, int]] = []
    for tier in (candidates[:RANKED], candidates[RANKED:]):
        if len(chosen) >= limit or not tier:
            break
        if offset >= len(tier):
            offset -= len(tier)
            continue
        ranked = sorted(zip(_scores(connection, query, tier), tier, strict=True))
        chosen += ranked[offset : offset + limit - len(chosen)]
        offset = 0
    if not chosen:
        return []
    rows = _fetch(
        connection,
        "SELECT id, kind, ref_id, site_code, doc_date, title, body FROM search_documents "
        "WHERE id IN (SELECT value FROM json_each(?))",
        (orjson.dumps([doc_id for _, doc_id in chosen]).decode(),),
    )
    by_id = {row[0]: row for row in rows}
    return [Hit._make((*by_id[doc_id][1:], score)) for score, doc_id in chosen if doc_id in by_id]


def _scores(connection: Connection, query: Query, ids: Sequence[int]) -> list[float]:
    """Minus each document's BM25 for `query` (lower is better, as FTS5's `bm25()`)."""
    stats = statistics(connection)
    phrases = [(_pattern(p), stats.idf(connection, p)) for p in _phrases(query)]
    # The terms column (c0) says the phrases; FTS5 counts the tags' tokens (c1) in a length.
    texts = {
        doc_id: (terms, tags.count(" ") + 1 if tags else 0)
        for doc_id, terms, tags in _fetch(
            connection,
            "SELECT id, c0, c1 FROM search_fts_content "
            "WHERE id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(list(ids)).decode(),),
        )
    }
    # BM25's length norm K1 * (1 - B + B * length / average), as a + b * length.
    fixed, per_token = K1 * (1 - B), K1 * B / stats.average_length
    weights = [(pattern, idf * (K1 + 1)) for pattern, idf in phrases]
    scores = []
    for doc_id in ids:
        text, tags = texts.get(doc_id, ("", 0))
        text = text or ""
        norm = fixed + per_token * ((text.count(" ") + 1 if text else 0) + tags)
        spaced = _spaced(text)
        score = 0.0
        for pattern, weight in weights:
            tf = spaced.count(pattern)
            if tf:
                score -= weight * tf / (tf + norm)
        scores.append(score)
    return scores


def _phrases(query: Query) -> list[tuple[tuple[str, ...], bool]]:
    """The phrases a match can say (each alternative of each wanted clause), as FTS5 sees
    them: (stems, prefix)."""
    return [
        (words, clause.prefix)
        for clause in query.clauses
        if not clause.negated
        for words in clause.stems()
        if words
    ]


def _pattern(phrase: tuple[tuple[str, ...], bool]) -> str:
    """A phrase as it appears in a document's terms spaced out (`_spaced`): each occurrence
    once, as `str.count` counts it."""
    words, prefix = phrase
    return " " + "  ".join(words) + ("" if prefix else " ")


def _spaced(terms: str) -> str:
    """Terms with every word between two spaces of its own: adjacent occurrences of a word
    share no space, so counting the pattern counts each one."""
    return " " + terms.replace(" ", "  ") + " "


class Statistics:
    """The index's row count, average length and phrase document counts at one watermark."""

    def __init__(self, mark: int, rows: int, average_length: float) -> None:
        self.mark = mark
        self.rows = rows
        self.average_length = average_length or 1.0
        self._documents: dict[tuple[tuple[str, ...], bool], int] = {}

    def idf(self, connection: Connection, phrase: tuple[tuple[str, ...], bool]) -> float:
        found = self._documents.get(phrase)
        if found is None:
            words, prefix = phrase
            match = 'terms : "' + " ".join(words) + '"' + (" *" if prefix else "")
            found = self._documents[phrase] = int(
                connection.exec_driver_sql(
                    "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?", (match,)
                ).scalar_one()
            )
        ratio = (self.rows - found + 0.5) / (found + 0.5)
        # FTS5's floor: a phrase in half the documents or more still counts, a little.
        return math.log(ratio) if ratio > 1 else 1e-6


#: Databases whose statistics a process keeps (an API process reads one).
KEPT_DATABASES = 8
_STATISTICS: dict[tuple[str, int], Statistics] = {}
_LOCK = threading.Lock()


def statistics(connection: Connection) -> Statistics:
    """The statistics of `connection`'s database, kept while its watermark stays."""
    # The engine too: two in-memory databases have the same URL.
    database = (str(connection.engine.url), id(connection.engine))
    mark = _fetch(connection, "SELECT watermark FROM search_state WHERE id = 1", ())[0][0]
    with _LOCK:
        kept = _STATISTICS.get(database)
    if kept is not None and kept.mark == mark:
        return kept
    block = connection.exec_driver_sql(
        "SELECT block FROM search_fts_data WHERE id = ?", (AVERAGES_ID,)
    ).scalar()
    counts = _varints(block or b"")
    rows = counts[0] if counts else 0
    # Both columns' tokens, as FTS5's average length (the tags weigh nothing but take room).
    fresh = Statistics(mark, rows, sum(counts[1:]) / rows if rows else 1.0)
    with _LOCK:
        _STATISTICS.pop(database, None)
        _STATISTICS[database] = fresh
        while len(_STATISTICS) > KEPT_DATABASES:
            del _STATISTICS[next(iter(_STATISTICS))]
    return fresh


def _varints(block: bytes) -> list[int]:
    """SQLite's varints (big-endian, 7 bits a byte, the ninth byte whole), one after another."""
    values, index = [], 0
    while index < len(block):
        value = 0
        for position in range(9):
            byte = block[index]
            index += 1
            if position == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        values.append(value)
    return values

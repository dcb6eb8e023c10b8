"""The two full-text engines behind one interface: SQLite FTS5 and PostgreSQL tsvector + GIN.

Both store documents in `search_documents` (one row per generation and source row); what
differs is the inverted index (an FTS5 table keyed by document id, or a `tsv` column with a
GIN index), how a parsed query is written for it, and how it is optimised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, bindparam, text

from domain.search import schema
from domain.search.documents import Document
from domain.search.text import Clause, Query, fold, terms

documents = schema.documents
ACTIVE = "(SELECT active_generation FROM search_state WHERE id = 1)"


#: A date filter spanning more months than this is not a tag intersection (not selective).
MAX_MONTH_TAGS = 24


@dataclass(frozen=True)
class Filters:
    kind: str | None = None
    site_code: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def dates_only(self) -> Filters:
        return Filters(date_from=self.date_from, date_to=self.date_to)

    def tags(self) -> list[list[str]]:
        """The index tags a match must carry: each inner list is alternatives (OR), the outer
        list all required (AND). Spelled as `tags_of` spells a document's. The months of a
        date range are tags only when the range spans both ends within MAX_MONTH_TAGS."""
        wanted = []
        if self.kind is not None:
            wanted.append([f"k{self.kind}"])
        # Only a code that is one word is a tag (as the tokenizer made it); any other is
        # left to the exact filter, and never reaches the engine's query syntax.
        if self.site_code is not None and self.site_code.isalnum():
            wanted.append([f"s{self.site_code.lower()}"])
        if self.date_from is not None and self.date_to is not None:
            months = []
            year, month = self.date_from.year, self.date_from.month
            while (year, month) <= (self.date_to.year, self.date_to.month):
                months.append(f"m{year}{month:02d}")
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
                if len(months) > MAX_MONTH_TAGS:
                    break
            if len(months) <= MAX_MONTH_TAGS:
                wanted.append(months)
        return wanted


NO_FILTERS = Filters()


def tags_of(doc: Document) -> list[str]:
    """A document's filter tags: kind, site, month (migration 0010 spells them the same)."""
    tags = [f"k{doc.kind}"]
    if doc.site_code:
        tags.append(f"s{doc.site_code.lower()}")
    if doc.doc_date is not None:
        tags.append(f"m{doc.doc_date.year}{doc.doc_date.month:02d}")
    return tags


def remove(connection: Connection, generation: int, kind: str, ids: Sequence[int]) -> list[int]:
    """Delete the `kind` documents of source `ids` in `generation`; return the ids deleted."""
    if not ids:
        return []
    wanted = documents.c.ref_id.in_(bindparam("ref_ids", expanding=True))
    return _remove(connection, generation, kind, wanted, {"ref_ids": list(ids)})


def remove_span(
    connection: Connection, generation: int, kind: str, *, after: int, upto: int
) -> list[int]:
    """Delete the `kind` documents of sources `after < id <= upto` in `generation`."""
    wanted = (documents.c.ref_id > after) & (documents.c.ref_id <= upto)
    return _remove(connection, generation, kind, wanted, {})


def _remove(
    connection: Connection,
    generation: int,
    kind: str,
    wanted: ColumnElement[bool],
    params: dict[str, Any],
) -> list[int]:
    # (generation, kind, ref_id) is the unique index: both forms are one range of it.
    statement = (
        documents.delete()
        .where(documents.c.generation == generation)
        .where(documents.c.kind == kind)
        .where(wanted)
        .returning(documents.c.id)
    )
    return list(connection.execute(statement, params).scalars())


def _filters(filters: Filters, params: dict[str, Any]) -> str:
    where = ""
    if filters.date_from is not None:
        where += " AND d.doc_date >= :date_from"
        params["date_from"] = filters.date_from
    if filters.date_to is not None:
        where += " AND d.doc_date <= :date_to"
        params["date_to"] = filters.date_to
    if filters.kind is not None:
        where += " AND d.kind = :kind"
        params["kind"] = filters.kind
    if filters.site_code is not None:
        where += " AND d.site_code = :site_code"
        params["site_code"] = filters.site_code
    return where


def _rows(docs: Sequence[Document], generation: int, now: float) -> list[dict[str, Any]]:
    return [
        {
            "generation": generation,
            "kind": doc.kind,
            "ref_id": doc.ref_id,
            "site_code": doc.site_code,
            "doc_date": doc.doc_date,
            "title": doc.title,
            "body": doc.body,
            "indexed_at_unix_s": now,
        }
        for doc in docs
    ]


class SearchEngine:
    """What an engine does: write and forget documents, match a query, optimise itself.

    The reads are shared, around the engine's `matching` clause, and each is bounded however
    many documents match: the page is ranked among the `window` newest matches (the highest
    document ids, i.e. the most recently indexed), the total is counted up to a cap, and the
    facets are counted on the `window` newest matches. Only the page's rows are read whole."""

    name = ""
    #: The order of the window: the newest matches first, read in the engine's index order.
    newest = "d.id DESC"

    def write(
        self, connection: Connection, generation: int, docs: Sequence[Document], *, now: float
    ) -> None:
        raise NotImplementedError

    def forget(self, connection: Connection, ids: Sequence[int]) -> None:
        raise NotImplementedError

    def optimize(self, engine: Engine) -> dict[str, Any]:
        raise NotImplementedError

    def matching(self, query: Query, filters: Filters, where: str) -> tuple[str, dict[str, Any]]:
        """(FROM ... WHERE clause over documents `d`, parameters) for `query` within the tags
        of `filters` (the index's own intersection) and the conditions `where` on `d`."""
        raise NotImplementedError

    def source(
        self, query: Query, filters: Filters, tagged: Filters | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The matches of `query` within `filters`, those of `tagged` (default: all of them)
        intersected in the index, the others checked on each match."""
        params: dict[str, Any] = {}
        where = f" AND d.generation = {ACTIVE}{_filters(filters, params)}"
        source, own = self.matching(query, filters if tagged is None else tagged, where)
        return source, {**params, **own}

    def ranked(self) -> tuple[str, str]:
        """(columns the window selects besides `d.id`, score over the window's row `c`, lower
        is better): an engine scores a window row where its ranking function can."""
        raise NotImplementedError

    def page(
        self,
        connection: Connection,
        query: Query,
        filters: Filters,
        *,
        limit: int,
        offset: int,
        window: int,
        tagged: Filters | None = None,
    ) -> list[Any]:
        """The page, ranked among the `window` newest matches. `tagged`: the filters to
        intersect in the index (FTS5's BM25 counts every tag's documents once per query, so
        a filter most matches pass is cheaper checked on each of them)."""
        source, params = self.source(query, filters, tagged)
        columns, score = self.ranked()
        sql = (
            "SELECT d.kind, d.ref_id, d.site_code, d.doc_date, d.title, d.body, p.score FROM ("
            f"SELECT c.id, {score} AS score FROM ("
            f"SELECT d.id, {columns} {source} "
            f"ORDER BY {self.newest} LIMIT :window) c "
            "ORDER BY score, c.id LIMIT :limit OFFSET :offset) p "
            "JOIN search_documents d ON d.id = p.id ORDER BY p.score, p.id"
        )
        values = {**params, "limit": limit, "offset": offset, "window": window}
        return list(connection.execute(text(sql), values))

    def count(self, connection: Connection, query: Query, filters: Filters, *, cap: int) -> int:
        """Matches of `query` within `filters`, counted up to `cap`."""
        source, params = self.source(query, filters)
        sql = f"SELECT count(*) FROM (SELECT 1 AS hit {source} LIMIT :cap) c"
        return int(connection.execute(text(sql), {**params, "cap": cap}).scalar_one())

    def facets(
        self, connection: Connection, query: Query, filters: Filters, *, window: int
    ) -> tuple[list[Any], bool]:
        """(kind, site_code, n) over the `window` newest matches within the date filters, and
        whether the engine matched a capped sample of candidates rather than all of them."""
        source, params = self.source(query, filters.dates_only())
        sql = (
            "SELECT c.kind, c.site_code, count(*) AS n FROM ("
            f"SELECT d.kind, d.site_code {source} "
            f"ORDER BY {self.newest} LIMIT :window) c GROUP BY c.kind, c.site_code"
        )
        return list(connection.execute(text(sql), {**params, "window": window})), False


class Fts5(SearchEngine):
    """SQLite FTS5: stemmed terms (domain.search.text) in a one-column FTS table, ranked by BM25."""

    name = "sqlite-fts5"

    def write(
        self, connection: Connection, generation: int, docs: Sequence[Document], *, now: float
    ) -> None:
        if not docs:
            return
        # The caller holds SQLite's write lock (index.locked): the next ids are ours to take,
        # which saves a RETURNING round per row and lets both inserts be plain executemany.
        first = connection.exec_driver_sql(
            "SELECT coalesce(max(id), 0) + 1 FROM search_documents"
        ).scalar_one()
        ids = range(first, first + len(docs))
        connection.exec_driver_sql(
            "INSERT INTO search_documents (id, generation, kind, ref_id, site_code, doc_date, "
            "title, body, indexed_at_unix_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    doc_id,
                    generation,
                    doc.kind,
                    doc.ref_id,
                    doc.site_code,
                    doc.doc_date.isoformat() if doc.doc_date is not None else None,
                    doc.title,
                    doc.body,
                    now,
                )
                for doc_id, doc in zip(ids, docs, strict=True)
            ],  # fmt: skip
        )
        connection.exec_driver_sql(
            "INSERT INTO search_fts (rowid, terms, tags) VALUES (?, ?, ?)",
            [
                (doc_id, terms(f"{doc.title} {doc.body}"), " ".join(tags_of(doc)))
                for doc_id, doc in zip(ids, docs, strict=True)
            ],
        )

    def forget(self, connection: Connection, ids: Sequence[int]) -> None:
        if ids:
            connection.execute(
                text("DELETE FROM search_fts WHERE rowid IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": list(ids)},
            )

    @staticmethod
    def match(query: Query, filters: Filters = NO_FILTERS) -> str:
        """The MATCH expression: the query on the terms column, each filter on the tags one."""

        def clause(c: Clause) -> str:
            options = [
                ('"' + " ".join(words) + '"') + (" *" if c.prefix else "") for words in c.stems()
            ]
            return options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")"

        wanted = " AND ".join(clause(c) for c in query.clauses if not c.negated)
        unwanted = "".join(f" NOT {clause(c)}" for c in query.clauses if c.negated)
        tagged = "".join(
            " AND tags : (" + " OR ".join(f'"{tag}"' for tag in options) + ")"
            for options in filters.tags()
        )
        return f"terms : ({wanted}{unwanted}){tagged}"

    # CROSS JOIN keeps the FTS table the outer loop (SQLite never reorders it): matches are read
    # from the index newest first and each looks its document up, never the other way round.
    newest = "search_fts.rowid DESC"

    def matching(self, query: Query, filters: Filters, where: str) -> tuple[str, dict[str, Any]]:
        return (
            "FROM search_fts CROSS JOIN search_documents d ON d.id = search_fts.rowid "
            f"WHERE search_fts MATCH :match{where}",
            {"match": self.match(query, filters)},
        )

    def ranked(self) -> tuple[str, str]:
        # bm25() is only defined in the FTS query itself: computed there, for the window's rows.
        # The tags column weighs nothing: a filter narrows the matches, it does not rank them.
        return "bm25(search_fts, 1.0, 0.0) AS rank", "c.rank"

    def optimize(self, engine: Engine) -> dict[str, Any]:
        with engine.begin() as connection:
            before = connection.exec_driver_sql("SELECT count(*) FROM search_fts_data").scalar_one()
            # FTS5 merges every b-tree segment into one and drops deleted entries.
            connection.exec_driver_sql("INSERT INTO search_fts (search_fts) VALUES ('optimize')")
            after = connection.exec_driver_sql("SELECT count(*) FROM search_fts_data").scalar_one()
            connection.exec_driver_sql("PRAGMA optimize")
        return {"engine": self.name, "index_pages_before": before, "index_pages_after": after}


class PostgresFts(SearchEngine):
    """PostgreSQL: `tsv` = to_tsvector('french', folded title (weight A) and body (B)), GIN."""

    name = "postgresql-tsvector"

    def write(
        self, connection: Connection, generation: int, docs: Sequence[Document], *, now: float
    ) -> None:
        if not docs:
            return
        rows = _rows(docs, generation, now)
        for row, doc in zip(rows, docs, strict=True):
            row["folded_title"] = fold(doc.title)
            row["folded_body"] = fold(doc.body)
            row["tags"] = [f"#{tag}" for tag in tags_of(doc)]
        connection.execute(
            text(
                "INSERT INTO search_documents (generation, kind, ref_id, site_code, doc_date, "
                "title, body, indexed_at_unix_s, tsv) VALUES (:generation, :kind, :ref_id, "
                ":site_code, :doc_date, :title, :body, :indexed_at_unix_s, "
                "setweight(to_tsvector('french', :folded_title), 'A') || "
                "setweight(to_tsvector('french', :folded_body), 'B') || "
                "array_to_tsvector(CAST(:tags AS text[])))"
            ),
            rows,
        )

    def forget(self, connection: Connection, ids: Sequence[int]) -> None:
        """Nothing: the index is a column of the deleted rows."""

    #: A phrase is checked on at most this many documents, the newest holding all its words:
    #: GIN stores no positions, so each check reads the document's whole tsvector.
    PHRASE_CANDIDATES = 2_000

    @staticmethod
    def tsquery(query: Query, *, phrases: bool = True) -> str:
        """The query as tsquery text; with `phrases=False`, only what GIN answers without
        reading a row: the required words, a phrase's words required anywhere."""

        # Words reach here as \w+ runs of folded text, so quoting them is enough.
        def clause(c: Clause) -> str:
            options = []
            for words in c.alternatives:
                quoted = [f"'{w}'" + (":*" if c.prefix else "") for w in words]
                options.append("(" + (" <-> " if phrases else " & ").join(quoted) + ")")
            return "(" + " | ".join(options) + ")"

        parts = [
            ("!" if c.negated else "") + clause(c)
            for c in query.clauses
            if phrases or not c.negated
        ]
        return " & ".join(parts)

    @staticmethod
    def _has_phrase(query: Query) -> bool:
        return any(len(words) > 1 for c in query.clauses for words in c.alternatives)

    @staticmethod
    def _tsquery_sql(name: str, filters: Filters, params: dict[str, Any]) -> str:
        wanted = filters.tags()
        if not wanted:
            return f"to_tsquery('french', :{name})"
        # Tags are lexemes as stored (no dictionary): cast, not parsed by to_tsquery.
        params["tags"] = " & ".join(
            "(" + " | ".join(f"'#{tag}'" for tag in options) + ")" for options in wanted
        )
        return f"(to_tsquery('french', :{name}) && CAST(:tags AS tsquery))"

    def matching(self, query: Query, filters: Filters, where: str) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"q": self.tsquery(query)}
        if not self._has_phrase(query):
            wanted = self._tsquery_sql("q", filters, params)
            return f"FROM search_documents d WHERE d.tsv @@ {wanted}{where}", params
        # A phrase: the newest candidates holding its words (the index alone), then the
        # positions checked on those only.
        params["words"] = self.tsquery(query, phrases=False)
        words = self._tsquery_sql("words", filters, params)
        return (
            f"FROM (SELECT d.id, d.tsv FROM search_documents d WHERE d.tsv @@ {words}{where} "
            f"ORDER BY d.id DESC LIMIT {self.PHRASE_CANDIDATES}) d "
            "WHERE d.tsv @@ to_tsquery('french', :q)",
            params,
        )

    def facets(
        self, connection: Connection, query: Query, filters: Filters, *, window: int
    ) -> tuple[list[Any], bool]:
        if not self._has_phrase(query):
            return super().facets(connection, query, filters, window=window)
        # A phrase: counted on its matches among the candidates, which are seen once to tell
        # whether they were capped (older matches then out of reach).
        dates = filters.dates_only()
        params: dict[str, Any] = {
            "q": self.tsquery(query),
            "words": self.tsquery(query, phrases=False),
        }
        where = f" AND d.generation = {ACTIVE}{_filters(dates, params)}"
        words = self._tsquery_sql("words", dates, params)
        sql = (
            "SELECT c.kind, c.site_code, count(*) FILTER (WHERE c.hit) AS n, count(*) AS seen "
            "FROM (SELECT d.kind, d.site_code, d.tsv @@ to_tsquery('french', :q) AS hit "
            f"FROM search_documents d WHERE d.tsv @@ {words}{where} "
            f"ORDER BY d.id DESC LIMIT {self.PHRASE_CANDIDATES}) c GROUP BY c.kind, c.site_code"
        )
        rows = list(connection.execute(text(sql), params))
        capped = sum(row.seen for row in rows) >= self.PHRASE_CANDIDATES
        return [row for row in rows if row.n], capped

    def ranked(self) -> tuple[str, str]:
        # Ranked above the window's sort, so only the window's rows pay ts_rank_cd.
        return "d.tsv", "-ts_rank_cd(c.tsv, to_tsquery('french', :q))"

    def optimize(self, engine: Engine) -> dict[str, Any]:
        with engine.begin() as connection:
            # GIN's fast-update pending list merged into the main index.
            merged = connection.exec_driver_sql(
                "SELECT gin_clean_pending_list('search_documents_tsv'::regclass)"
            ).scalar_one()
        # VACUUM cannot run in a transaction: it purges dead rows and refreshes statistics.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE) search_documents")
            connection.exec_driver_sql("VACUUM (ANALYZE) search_changes")
        return {"engine": self.name, "pending_pages_merged": int(merged or 0)}


#: The engines hold no state: one of each serves every caller.
_ENGINES: dict[str, SearchEngine] = {"sqlite": Fts5(), "postgresql": PostgresFts()}


def for_dialect(name: str) -> SearchEngine:
    if name in _ENGINES:
        return _ENGINES[name]
    raise ValueError(f"no search engine for the {name} dialect (SQLite or PostgreSQL)")

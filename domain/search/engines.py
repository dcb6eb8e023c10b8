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


@dataclass(frozen=True)
class Filters:
    kind: str | None = None
    site_code: str | None = None
    date_from: date | None = None
    date_to: date | None = None


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


def _date_filters(filters: Filters, params: dict[str, Any]) -> str:
    where = ""
    if filters.date_from is not None:
        where += " AND d.doc_date >= :date_from"
        params["date_from"] = filters.date_from
    if filters.date_to is not None:
        where += " AND d.doc_date <= :date_to"
        params["date_to"] = filters.date_to
    return where


def _filters(filters: Filters, params: dict[str, Any]) -> str:
    where = _date_filters(filters, params)
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
    """What an engine does: write and forget documents, match a query, optimise itself. The two
    reads (a page of hits, facet counts) are shared, around the engine's `matching` clause."""

    name = ""

    def write(
        self, connection: Connection, generation: int, docs: Sequence[Document], *, now: float
    ) -> None:
        raise NotImplementedError

    def forget(self, connection: Connection, ids: Sequence[int]) -> None:
        raise NotImplementedError

    def optimize(self, engine: Engine) -> dict[str, Any]:
        raise NotImplementedError

    def matching(self, query: Query) -> tuple[str, str, dict[str, Any]]:
        """(FROM ... WHERE clause over documents `d`, score expression (lower is better),
        parameters) for `query`."""
        raise NotImplementedError

    def page(
        self, connection: Connection, query: Query, filters: Filters, *, limit: int, offset: int
    ) -> list[Any]:
        source, score, params = self.matching(query)
        where = _filters(filters, params)
        sql = (
            f"SELECT d.kind, d.ref_id, d.site_code, d.doc_date, d.title, d.body, {score} AS score "
            f"{source} AND d.generation = {ACTIVE}{where} "
            "ORDER BY score, d.id LIMIT :limit OFFSET :offset"
        )
        return list(connection.execute(text(sql), {**params, "limit": limit, "offset": offset}))

    def facets(self, connection: Connection, query: Query, filters: Filters) -> list[Any]:
        source, _score, params = self.matching(query)
        where = _date_filters(filters, params)
        sql = (
            f"SELECT d.kind, d.site_code, count(*) AS n {source} "
            f"AND d.generation = {ACTIVE}{where} GROUP BY d.kind, d.site_code"
        )
        return list(connection.execute(text(sql), params))


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
            "INSERT INTO search_fts (rowid, terms) VALUES (?, ?)",
            [
                (doc_id, terms(f"{doc.title} {doc.body}"))
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
    def match(query: Query) -> str:
        def clause(c: Clause) -> str:
            options = [
                ('"' + " ".join(words) + '"') + (" *" if c.prefix else "") for words in c.stems()
            ]
            return options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")"

        wanted = " AND ".join(clause(c) for c in query.clauses if not c.negated)
        unwanted = "".join(f" NOT {clause(c)}" for c in query.clauses if c.negated)
        return wanted + unwanted

    def matching(self, query: Query) -> tuple[str, str, dict[str, Any]]:
        return (
            "FROM search_fts JOIN search_documents d ON d.id = search_fts.rowid "
            "WHERE search_fts MATCH :match",
            "bm25(search_fts)",
            {"match": self.match(query)},
        )

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
        connection.execute(
            text(
                "INSERT INTO search_documents (generation, kind, ref_id, site_code, doc_date, "
                "title, body, indexed_at_unix_s, tsv) VALUES (:generation, :kind, :ref_id, "
                ":site_code, :doc_date, :title, :body, :indexed_at_unix_s, "
                "setweight(to_tsvector('french', :folded_title), 'A') || "
                "setweight(to_tsvector('french', :folded_body), 'B'))"
            ),
            rows,
        )

    def forget(self, connection: Connection, ids: Sequence[int]) -> None:
        """Nothing: the index is a column of the deleted rows."""

    @staticmethod
    def tsquery(query: Query) -> str:
        # Words reach here as \w+ runs of folded text, so quoting them is enough.
        def clause(c: Clause) -> str:
            options = []
            for words in c.alternatives:
                quoted = [f"'{w}'" + (":*" if c.prefix else "") for w in words]
                options.append("(" + " <-> ".join(quoted) + ")")
            return "(" + " | ".join(options) + ")"

        parts = [("!" if c.negated else "") + clause(c) for c in query.clauses]
        return " & ".join(parts)

    def matching(self, query: Query) -> tuple[str, str, dict[str, Any]]:
        return (
            "FROM search_documents d, to_tsquery('french', :q) AS q WHERE d.tsv @@ q",
            "-ts_rank_cd(d.tsv, q)",
            {"q": self.tsquery(query)},
        )

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


def for_dialect(name: str) -> SearchEngine:
    if name == "sqlite":
        return Fts5()
    if name == "postgresql":
        return PostgresFts()
    raise ValueError(f"no search engine for the {name} dialect (SQLite or PostgreSQL)")

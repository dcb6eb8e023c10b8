"""The search tables: a change log filled by triggers, documents by generation, the state row.

They live apart from `domain.models.Base`: the engine-specific parts (the FTS5 virtual table and
its shadow tables on SQLite, the `tsv` column and its GIN index on PostgreSQL) exist only in the
database, so `Base` metadata comparisons skip every table named `search_*` (`is_search_table`).

Changes are captured by database triggers (migration 0006_search), not by application hooks: a
write from any process, the demo loader, a psql session or an ON DELETE CASCADE is seen, in the
same transaction as the write itself, so no commit can change indexed data and leave no trace.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from domain.models import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: One row per write to an indexed source row, consumed (deleted) by the run that indexes it.
changes = Table(
    "search_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("ref_id", Integer, nullable=False),
    # Unix seconds from the database clock: the one clock every writer shares.
    Column("changed_at_unix_s", Float, nullable=False),
)

#: The searchable documents of every live generation (the active one, a rebuild's new one).
documents = Table(
    "search_documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("ref_id", Integer, nullable=False),
    Column("site_code", String(8)),
    Column("doc_date", Date),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("indexed_at_unix_s", Float, nullable=False),
    UniqueConstraint("generation", "kind", "ref_id"),
)

#: A single row (id 1): which generation answers searches, which one a rebuild is filling.
state = Table(
    "search_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("active_generation", Integer, nullable=False),
    Column("building_generation", Integer),
    Column("rebuilt_at_unix_s", Float),
    Column("optimized_at_unix_s", Float),
    # Bumped by every commit that changes what a search can see (cached results key on it).
    Column("watermark", Integer, nullable=False, server_default="0"),
)

#: Source table -> (document kind, columns whose change alters the document).
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "lots": ("lot", ("code", "site_id", "gaveur_id", "status", "notes", "start_date")),
    "consumer_feedback": ("feedback", ("comment", "lot_id", "created_at", "rating")),
    "planted_anomalies": ("anomaly", ("kind", "detail", "lot_id", "day")),
    "certificates": ("certificate", ("certificate_type", "lot_id", "chain_hash")),
    "files": ("file", ("filename", "kind", "created_at")),
}
KINDS = tuple(kind for kind, _ in SOURCES.values())


def is_search_table(name: str | None) -> bool:
    """True for the search tables and the engine's own (FTS5 shadow tables included)."""
    return bool(name) and str(name).startswith("search_")

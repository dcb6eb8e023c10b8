"""Search index: change log with capture triggers, documents, state; FTS5 or tsvector + GIN.

Revision ID: 0006_search
Revises: 0005_deferred
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_search"
down_revision: str | None = "0005_deferred"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of domain.search.schema.SOURCES: a migration must not change when the code does.
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "lots": ("lot", ("code", "site_id", "gaveur_id", "status", "notes", "start_date")),
    "consumer_feedback": ("feedback", ("comment", "lot_id", "created_at", "rating")),
    "planted_anomalies": ("anomaly", ("kind", "detail", "lot_id", "day")),
    "certificates": ("certificate", ("certificate_type", "lot_id", "chain_hash")),
    "files": ("file", ("filename", "kind", "created_at")),
}
SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
PG_NOW = "extract(epoch from clock_timestamp())"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("lots") as batch:
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))
    op.create_table(
        "search_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("changed_at_unix_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_changes")),
    )
    op.create_table(
        "search_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("site_code", sa.String(length=8), nullable=True),
        sa.Column("doc_date", sa.Date(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("indexed_at_unix_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_documents")),
        sa.UniqueConstraint(
            "generation", "kind", "ref_id", name=op.f("uq_search_documents_generation_kind_ref_id")
        ),
    )
    op.create_table(
        "search_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("active_generation", sa.Integer(), nullable=False),
        sa.Column("building_generation", sa.Integer(), nullable=True),
        sa.Column("rebuilt_at_unix_s", sa.Float(), nullable=True),
        sa.Column("optimized_at_unix_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_state")),
    )
    op.execute("INSERT INTO search_state (id, active_generation) VALUES (1, 1)")
    if postgres:
        _postgres_engine()
    else:
        _sqlite_engine()
    now = PG_NOW if postgres else SQLITE_NOW
    # Rows written before this revision are changes the index has not seen yet.
    for table, (kind, _columns) in SOURCES.items():
        op.execute(
            f"INSERT INTO search_changes (kind, ref_id, changed_at_unix_s) "
            f"SELECT '{kind}', id, {now} FROM {table} ORDER BY id"
        )


def _sqlite_engine() -> None:
    # The stemmed terms only: titles and bodies are read from search_documents.
    op.execute(
        "CREATE VIRTUAL TABLE search_fts USING fts5(terms, tokenize='unicode61 remove_diacritics 2')"
    )
    for table, (kind, columns) in SOURCES.items():
        for event, ref in (("INSERT", "NEW"), ("DELETE", "OLD"), ("UPDATE", "NEW")):
            on = f"UPDATE OF {', '.join(columns)}" if event == "UPDATE" else event
            op.execute(
                f"CREATE TRIGGER search_capture_{table}_{event.lower()} AFTER {on} ON {table} "
                f"BEGIN INSERT INTO search_changes (kind, ref_id, changed_at_unix_s) "
                f"VALUES ('{kind}', {ref}.id, {SQLITE_NOW}); END"
            )


def _postgres_engine() -> None:
    op.execute("ALTER TABLE search_documents ADD COLUMN tsv tsvector NOT NULL")
    op.execute("CREATE INDEX search_documents_tsv ON search_documents USING gin (tsv)")
    op.execute(
        "CREATE FUNCTION search_capture() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO search_changes (kind, ref_id, changed_at_unix_s) VALUES (TG_ARGV[0], "
        "CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, "
        f"{PG_NOW}); RETURN NULL; END $$"
    )
    for table, (kind, columns) in SOURCES.items():
        op.execute(
            f"CREATE TRIGGER search_capture_{table} AFTER INSERT OR DELETE OR UPDATE OF "
            f"{', '.join(columns)} ON {table} FOR EACH ROW EXECUTE FUNCTION search_capture('{kind}')"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for table in SOURCES:
            op.execute(f"DROP TRIGGER search_capture_{table} ON {table}")
        op.execute("DROP FUNCTION search_capture()")
    else:
        for table in SOURCES:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER search_capture_{table}_{event}")
        op.execute("DROP TABLE search_fts")
    op.drop_table("search_state")
    op.drop_table("search_documents")
    op.drop_table("search_changes")
    with op.batch_alter_table("lots") as batch:
        batch.drop_column("notes")

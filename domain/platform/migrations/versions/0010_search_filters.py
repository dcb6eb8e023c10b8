"""Search filters in the full-text index, and the index watermark.

Kind, site and month of each document become tags of the inverted index itself (a `tags`
column of the FTS5 table; lexemes `#k...`, `#s...`, `#mYYYYMM` appended to the PostgreSQL `tsv`,
which no query word can spell), so a filtered query is one index intersection instead of a walk through every match
of its words. `search_state.watermark` counts the index's commits: a cached search result is
good while it has not moved.

Revision ID: 0010_search_filters
Revises: 0009_processing_audit
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_search_filters"
down_revision: str | None = "0009_processing_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of domain.search.engines' tag spelling: a migration must not change with the code.
SQLITE_TAGS = (
    "'k' || d.kind"
    " || coalesce(' s' || lower(d.site_code), '')"
    " || coalesce(' m' || strftime('%Y%m', d.doc_date), '')"
)
PG_TAGS = (
    "array_remove(ARRAY['#k' || d.kind, '#s' || lower(d.site_code), "
    "'#m' || to_char(d.doc_date, 'YYYYMM')], NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("search_state") as batch:
        batch.add_column(sa.Column("watermark", sa.Integer(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"UPDATE search_documents d SET tsv = d.tsv || array_to_tsvector({PG_TAGS})")
        return
    # FTS5 tables take no new column: a new table, the stemmed terms copied, the old dropped.
    op.execute(
        "CREATE VIRTUAL TABLE search_fts_tagged USING fts5(terms, tags, "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    op.execute(
        "INSERT INTO search_fts_tagged (rowid, terms, tags) "
        f"SELECT f.rowid, f.terms, {SQLITE_TAGS} "
        "FROM search_fts f JOIN search_documents d ON d.id = f.rowid"
    )
    op.execute("DROP TABLE search_fts")
    op.execute("ALTER TABLE search_fts_tagged RENAME TO search_fts")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"UPDATE search_documents d SET tsv = ts_delete(d.tsv, {PG_TAGS})")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE search_fts_untagged USING fts5(terms, "
            "tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "INSERT INTO search_fts_untagged (rowid, terms) SELECT rowid, terms FROM search_fts"
        )
        op.execute("DROP TABLE search_fts")
        op.execute("ALTER TABLE search_fts_untagged RENAME TO search_fts")
    with op.batch_alter_table("search_state") as batch:
        batch.drop_column("watermark")

"""PostgreSQL: writers of feeding records and SQAL samples hold a shared lock to their commit.

The aggregates' refresh folds rows up to the highest id it sees and moves its watermark there.
On PostgreSQL an id is taken when a row is written but seen only when its transaction commits,
so two batches stored at once may commit out of order: a refresh between the two commits
stepped over the first batch's ids and never folded them in. Every statement that inserts into
those tables now takes a shared advisory transaction lock first (a statement trigger, so every
writer does: the ingest job, the demo, an import by hand); the refresh takes it exclusively for
a moment before reading the highest id, which waits for the writers in flight to commit.
SQLite needs none of it: one writer at a time, ids taken and committed in order.

Revision ID: 0011_aggregate_write_guard
Revises: 0010_search_filters
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_aggregate_write_guard"
down_revision: str | None = "0010_search_filters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of domain.aggregates.PG_WRITERS_LOCK: a migration must not change with the code.
LOCK_KEY = 0x6761676772
TABLES = ("feeding_records", "sqal_samples")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION aggregate_writers_lock() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_advisory_xact_lock_shared({LOCK_KEY}); RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_writers_lock BEFORE INSERT ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION aggregate_writers_lock()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_writers_lock ON {table}")
    op.execute("DROP FUNCTION aggregate_writers_lock()")

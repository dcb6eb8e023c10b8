"""Store and forward: jobs accepted while Redis was down wait in the journal for the forwarder.

Revision ID: 0005_deferred
Revises: 0004_job_journal
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_deferred"
down_revision: str | None = "0004_job_journal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "deferred_at IS NOT NULL AND forwarded_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("job_journal") as batch:
        batch.add_column(sa.Column("deferred_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unique_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("idempotency", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("delay_ms", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("superseded_by", sa.String(length=64), nullable=True))
    op.create_index(
        "ux_job_journal_deferred_unique_key",
        "job_journal",
        ["unique_key"],
        unique=True,
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )
    op.create_index(
        "ix_job_journal_deferred_pending",
        "job_journal",
        ["accepted_at", "task_id"],
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_job_journal_deferred_pending", table_name="job_journal")
    op.drop_index("ux_job_journal_deferred_unique_key", table_name="job_journal")
    with op.batch_alter_table("job_journal") as batch:
        for column in (
            "superseded_by",
            "delay_ms",
            "idempotency",
            "unique_key",
            "forwarded_at",
            "deferred_at",
        ):
            batch.drop_column(column)

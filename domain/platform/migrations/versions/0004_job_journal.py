"""The job journal: every accepted job's message, to find and resend jobs Redis lost.

Revision ID: 0004_job_journal
Revises: 0003_exports
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_job_journal"
down_revision: str | None = "0003_exports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_journal",
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_job_journal")),
    )
    op.create_index(
        op.f("ix_job_journal_finished_at_accepted_at_task_id"),
        "job_journal",
        ["finished_at", "accepted_at", "task_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_job_journal_finished_at_accepted_at_task_id"), table_name="job_journal")
    op.drop_table("job_journal")

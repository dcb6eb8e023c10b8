"""The workflow journal: every submitted workflow's graph, to rebuild the ones Redis lost.

Revision ID: 0007_workflows
Revises: 0006_search
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_workflows"
down_revision: str | None = "0006_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_journal",
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("graph", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("workflow_id", name=op.f("pk_workflow_journal")),
    )
    op.create_index(
        op.f("ix_workflow_journal_finished_at_submitted_at"),
        "workflow_journal",
        ["finished_at", "submitted_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_workflow_journal_finished_at_submitted_at"), table_name="workflow_journal")
    op.drop_table("workflow_journal")

"""Weekly KPIs and the SQAL ingest batch ledger.

Revision ID: 0002_scheduler
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_scheduler"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "weekly_kpis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("lots", sa.Integer(), nullable=False),
        sa.Column("ducks", sa.Integer(), nullable=False),
        sa.Column("mean_itm", sa.Float(), nullable=True),
        sa.Column("mortality_pct", sa.Float(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("grade_mix", sa.JSON(), nullable=False),
        sa.Column("mean_rating", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('site', 'gaveur')", name=op.f("ck_weekly_kpis_scope")),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_weekly_kpis_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weekly_kpis")),
        sa.UniqueConstraint(
            "week_start", "scope", "ref_id", name=op.f("uq_weekly_kpis_week_start_scope_ref_id")
        ),
    )
    op.create_index(op.f("ix_weekly_kpis_week_start"), "weekly_kpis", ["week_start"])
    op.create_table(
        "ingest_batches",
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "batch_id", name=op.f("pk_ingest_batches")),
    )


def downgrade() -> None:
    op.drop_table("ingest_batches")
    op.drop_index(op.f("ix_weekly_kpis_week_start"), table_name="weekly_kpis")
    op.drop_table("weekly_kpis")

"""Exports: one file row per stored path, and a certificate ledger that cannot fork.

`files.path` (relative to EXPORT_DIR) is what a download URL names, so it is unique.
`certificates.prev_hash` is unique: two appends that read the same tip of the hash chain cannot
both commit; the loser retries on the new tip (domain/ledger.py).

Revision ID: 0003_exports
Revises: 0002_scheduler
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_exports"
down_revision: str | None = "0002_scheduler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite adds a constraint by copying the table; PostgreSQL alters in place.
    with op.batch_alter_table("files") as batch:
        batch.create_unique_constraint(op.f("uq_files_path"), ["path"])
    with op.batch_alter_table("certificates") as batch:
        batch.create_unique_constraint(op.f("uq_certificates_prev_hash"), ["prev_hash"])


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_constraint(op.f("uq_certificates_prev_hash"), type_="unique")
    with op.batch_alter_table("files") as batch:
        batch.drop_constraint(op.f("uq_files_path"), type_="unique")

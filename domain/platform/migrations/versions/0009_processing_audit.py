"""The processing audit trail: append-only (triggers refuse UPDATE and DELETE; on PostgreSQL
also TRUNCATE, and a role `gaveurs_audit_writer` that may only INSERT).

Revision ID: 0009_processing_audit
Revises: 0008_api_clients
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_processing_audit"
down_revision: str | None = "0008_api_clients"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The role a deployment gives to whatever may only append to the trail.
WRITER_ROLE = "gaveurs_audit_writer"
REFUSAL = "processing_audit is append-only"

POSTGRES_GUARD = f"""
CREATE FUNCTION processing_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{REFUSAL}';
END $$;
CREATE TRIGGER processing_audit_no_change BEFORE UPDATE OR DELETE ON processing_audit
  FOR EACH ROW EXECUTE FUNCTION processing_audit_append_only();
CREATE TRIGGER processing_audit_no_truncate BEFORE TRUNCATE ON processing_audit
  FOR EACH STATEMENT EXECUTE FUNCTION processing_audit_append_only();
REVOKE ALL ON processing_audit FROM PUBLIC;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{WRITER_ROLE}') THEN
    IF (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
      CREATE ROLE {WRITER_ROLE} NOLOGIN;
    ELSE
      RAISE NOTICE 'no CREATEROLE: ask the DBA for role {WRITER_ROLE} (README, GDPR)';
    END IF;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{WRITER_ROLE}') THEN
    GRANT INSERT ON processing_audit TO {WRITER_ROLE};
    GRANT USAGE ON SEQUENCE processing_audit_id_seq TO {WRITER_ROLE};
  END IF;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "processing_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("job", sa.String(length=128), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_audit")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_processing_audit_dedupe_key")),
    )
    op.create_index(op.f("ix_processing_audit_at"), "processing_audit", ["at"])
    op.create_index(op.f("ix_processing_audit_subject_at"), "processing_audit", ["subject", "at"])
    op.create_index(op.f("ix_processing_audit_client_at"), "processing_audit", ["client", "at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_GUARD)
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER processing_audit_no_{event.lower()} BEFORE {event} ON "
                f"processing_audit BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE processing_audit")
        op.execute("DROP FUNCTION processing_audit_append_only()")
        return
    op.drop_table("processing_audit")

"""Alembic migrations of the Gaveurs schema; run them with domain.db.migrate(url)."""

"""Alembic migrations of the Gaveurs schema; run them with domain.platform.db.migrate(url)."""

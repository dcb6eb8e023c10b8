"""Export fixtures: a file store in a temporary EXPORT_DIR and a context on the scale-1 demo."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from domain.platform.files import FileStore
from domain.reports.runs import ExportContext

NOW = datetime(2026, 1, 8, 13, 15, 42, tzinfo=UTC)


@pytest.fixture()
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "exports", retention_days=7)


@pytest.fixture()
def ctx(unit_demo_session: Session, store: FileStore) -> ExportContext:
    """Exports on the scale-1 demo (lots 3001..3600); rows written are rolled back."""
    return ExportContext(unit_demo_session, store, NOW, "test-task")

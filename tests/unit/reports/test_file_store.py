"""The file store under EXPORT_DIR: atomic, hashed while written, never overwrites, expires."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import IO

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain import cleanup
from domain.errors import Gone, NotFound
from domain.platform import db
from domain.platform.files import FileStore, describe
from tests.unit.reports.conftest import NOW


def _write(data: bytes) -> Callable[[IO[bytes]], None]:
    def write(out: IO[bytes]) -> None:
        for start in range(0, len(data), 7000):  # several writes, like a streamed export
            out.write(data[start : start + 7000])

    return write


def test_save_records_the_sha256_and_size_of_what_was_written(
    unit_demo_session: Session, store: FileStore
) -> None:
    data = bytes(range(256)) * 4000
    row = store.save(
        unit_demo_session, "csv", "x.csv", _write(data), kind="test", now=NOW, task_id="t1"
    )

    path = store.path_of(row)
    assert path == store.root.resolve() / "csv" / "x.csv" and path.read_bytes() == data
    assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size_bytes == len(data)
    assert row.path == "csv/x.csv" and row.content_type == "text/csv; charset=utf-8"
    assert row.expires_at == NOW + timedelta(days=7) and row.task_id == "t1"
    assert describe(row)["url"] == "/exports/csv/x.csv"
    assert [p.name for p in path.parent.iterdir()] == ["x.csv"]  # no temporary file left


def test_a_failing_writer_leaves_nothing_behind(
    unit_demo_session: Session, store: FileStore
) -> None:
    def broken(out: IO[bytes]) -> None:
        out.write(b"half a report")
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        store.save(unit_demo_session, "reports", "r.pdf", broken, kind="t", now=NOW, task_id=None)
    assert list((store.root / "reports").iterdir()) == []


def test_an_existing_name_is_never_overwritten(
    unit_demo_session: Session, store: FileStore
) -> None:
    first = store.save(
        unit_demo_session, "reports", "r.pdf", _write(b"one"), kind="t", now=NOW, task_id=None
    )
    second = store.save(
        unit_demo_session, "reports", "r.pdf", _write(b"two"), kind="t", now=NOW, task_id=None
    )
    assert (first.path, second.path) == ("reports/r.pdf", "reports/r-2.pdf")
    assert store.path_of(first).read_bytes() == b"one"


def test_find_serves_only_recorded_live_files(unit_demo_session: Session, store: FileStore) -> None:
    row = store.save(
        unit_demo_session, "reports", "r.pdf", _write(b"%PDF"), kind="t", now=NOW, task_id=None
    )
    assert store.find(unit_demo_session, "reports", "r.pdf", now=NOW) is row
    for folder, name in (("reports", "other.pdf"), ("secrets", "r.pdf"), ("reports", "..")):
        with pytest.raises(NotFound):
            store.find(unit_demo_session, folder, name, now=NOW)
    with pytest.raises(Gone, match="expired"):
        store.find(unit_demo_session, "reports", "r.pdf", now=NOW + timedelta(days=8))
    store.path_of(row).unlink()
    with pytest.raises(Gone, match="no longer on disk"):
        store.find(unit_demo_session, "reports", "r.pdf", now=NOW)


def test_cleanup_deletes_expired_exports_and_keeps_the_others(
    unit_fresh_demo: Callable[..., Engine], store: FileStore
) -> None:
    engine = unit_fresh_demo()
    with db.session_factory(engine)() as session:
        old = store.save(
            session,
            "csv",
            "old.csv",
            _write(b"a"),
            kind="t",
            now=NOW - timedelta(days=8),
            task_id=None,
        )
        new = store.save(
            session, "reports", "new.pdf", _write(b"b"), kind="t", now=NOW, task_id=None
        )
        old_path, new_path = store.path_of(old), store.path_of(new)
        session.commit()

        outcome = cleanup.delete_expired_files(session, store.root, now=NOW)

        assert outcome == {"files_deleted": 1, "files_missing_on_disk": 0, "bytes_freed": 1}
        assert not old_path.exists() and new_path.exists()
        with pytest.raises(NotFound):
            store.find(session, "csv", "old.csv", now=NOW)

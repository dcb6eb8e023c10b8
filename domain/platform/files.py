"""The export file store: files under EXPORT_DIR, each with a `files` row (sha256, size, expiry).

A file is written to a temporary name in its folder, hashed while it is written, synced, then
hard-linked to its final name: readers never see a partial file, and an existing file is never
overwritten (a second report of the same lot on the same day gets `-2`). The row's `path` is
relative to EXPORT_DIR (`reports/lot_3472_complete_20260108.pdf`) and is also the download URL
(`/exports/reports/lot_3472_complete_20260108.pdf`), so the row, not the request, decides which
file on disk is served.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.errors import Gone, NotFound
from domain.models import StoredFile
from domain.platform.settings import Settings

#: Folders under EXPORT_DIR, which are also the `{kind}` of the download URL.
FOLDERS = ("reports", "csv", "certificates")
CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv; charset=utf-8",
    ".zip": "application/zip",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_MAX_SAME_NAME = 1000
_BUFFER_BYTES = 1 << 20

Writer = Callable[[IO[bytes]], Any]


def inside(root: Path, relative: str) -> Path:
    """The file's path, refusing anything that would escape the export directory."""
    base = root.resolve()
    path = (base / relative).resolve()
    if base not in path.parents:
        raise ValueError(f"file path {relative!r} escapes {base}")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_BUFFER_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to `raw`."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.raw.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)


@dataclass(frozen=True)
class Placed:
    """A complete file at its final name, not yet recorded in `files`."""

    relative: str
    path: Path
    sha256: str
    size_bytes: int

    @property
    def filename(self) -> str:
        return self.path.name


class FileStore:
    """Files under `root`, kept `retention_days` unless recorded without expiry."""

    def __init__(self, root: Path, *, retention_days: int) -> None:
        self.root = root
        self.retention = timedelta(days=retention_days)

    def place(self, session: Session, folder: str, filename: str, write: Writer) -> Placed:
        """Run `write(stream)` into a temporary file, then give it its final, unused name."""
        if folder not in FOLDERS or not _NAME.match(filename):
            raise ValueError(f"bad export location {folder}/{filename}")
        target = self.root / folder
        target.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target, prefix=f".{filename}.", suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as raw:
                hashing = _Hashing(raw)
                stream = io.BufferedWriter(hashing, buffer_size=_BUFFER_BYTES)
                write(stream)
                if not stream.closed:  # a writer may close it (a TextIOWrapper does)
                    stream.flush()
                raw.flush()
                os.fsync(raw.fileno())
            final = self._link(session, Path(temporary), folder, filename)
        finally:
            os.unlink(temporary)
        return Placed(f"{folder}/{final.name}", final, hashing.digest.hexdigest(), hashing.size)

    def _link(self, session: Session, temporary: Path, folder: str, filename: str) -> Path:
        stem, suffix = os.path.splitext(filename)
        for n in range(1, _MAX_SAME_NAME + 1):
            name = filename if n == 1 else f"{stem}-{n}{suffix}"
            final = temporary.parent / name
            try:
                # link, unlike rename, fails when the name exists: nothing is overwritten.
                os.link(temporary, final)
            except FileExistsError:
                continue
            # A row may outlive its file (deleted by hand): that path is taken too.
            if session.scalar(select(StoredFile.id).where(StoredFile.path == f"{folder}/{name}")):
                final.unlink()
                continue
            return final
        raise RuntimeError(f"{_MAX_SAME_NAME} files named like {folder}/{filename} already")

    def record(
        self,
        session: Session,
        placed: Placed,
        *,
        kind: str,
        now: datetime,
        task_id: str | None,
        expires: bool = True,
    ) -> StoredFile:
        row = StoredFile(
            kind=kind,
            path=placed.relative,
            filename=placed.filename,
            content_type=CONTENT_TYPES.get(placed.path.suffix, "application/octet-stream"),
            sha256=placed.sha256,
            size_bytes=placed.size_bytes,
            created_at=now,
            expires_at=now + self.retention if expires else None,
            task_id=task_id,
        )
        session.add(row)
        session.flush()
        return row

    def save(
        self,
        session: Session,
        folder: str,
        filename: str,
        write: Writer,
        *,
        kind: str,
        now: datetime,
        task_id: str | None,
    ) -> StoredFile:
        """Write, name and record one file; the file is removed if recording it fails."""
        placed = self.place(session, folder, filename, write)
        try:
            return self.record(session, placed, kind=kind, now=now, task_id=task_id)
        except BaseException:
            placed.path.unlink(missing_ok=True)
            raise

    def path_of(self, row: StoredFile) -> Path:
        return inside(self.root, row.path)

    def find(self, session: Session, folder: str, filename: str, *, now: datetime) -> StoredFile:
        """The row of a download URL: NotFound if none, Gone once expired or lost on disk."""
        if folder not in FOLDERS or not _NAME.match(filename):
            raise NotFound(f"no export file /exports/{folder}/{filename}")
        row = session.scalar(select(StoredFile).where(StoredFile.path == f"{folder}/{filename}"))
        if row is None:
            raise NotFound(f"no export file /exports/{folder}/{filename}")
        if row.expires_at is not None and row.expires_at <= now:
            raise Gone(f"/exports/{row.path} expired at {row.expires_at.isoformat()}")
        if not self.path_of(row).is_file():
            raise Gone(f"/exports/{row.path} is no longer on disk")
        return row


def store_for(settings: Settings) -> FileStore:
    return FileStore(settings.export_dir, retention_days=settings.export_retention_days)


def url_of(row: StoredFile) -> str:
    return f"/exports/{row.path}"


def get_file(session: Session, file_id: int) -> StoredFile:
    row = session.get(StoredFile, file_id)
    if row is None:
        raise NotFound(f"file {file_id} does not exist (or was cleaned up after expiry)")
    return row


def describe(row: StoredFile) -> dict[str, Any]:
    """The metadata of a stored file, as the API and job results show it."""
    return {
        "id": row.id,
        "kind": row.kind,
        "filename": row.filename,
        "url": url_of(row),
        "content_type": row.content_type,
        "sha256": row.sha256,
        "size_bytes": row.size_bytes,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "task_id": row.task_id,
    }

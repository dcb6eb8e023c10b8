"""Database backups: SQLite's online backup API, or pg_dump for PostgreSQL; rotated, verified."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, text

from domain.errors import InvalidInput, ServiceUnavailable
from domain.platform.db import normalize_url
from domain.platform.files import sha256_of

PREFIX = "gaveurs-"
#: Pages copied per step of SQLite's online backup: writers are never blocked for long.
SQLITE_PAGES_PER_STEP = 4096


@dataclass(frozen=True)
class Backup:
    path: str
    size_bytes: int
    sha256: str
    engine: str
    tables: dict[str, int]
    rotated_out: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_counts(engine: Engine) -> dict[str, int]:
    names = sorted(inspect(engine).get_table_names())
    with engine.connect() as connection:
        return {
            name: int(connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
            for name in names
        }


def backup_database(engine: Engine, backup_dir: Path, *, keep: int, now: datetime) -> Backup:
    """Copy the database to `backup_dir`, check the copy opens and holds every table, rotate."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    if engine.dialect.name == "sqlite":
        target = backup_dir / f"{PREFIX}{stamp}.sqlite3"
        tables = _sqlite_backup(engine, target)
        pattern = f"{PREFIX}*.sqlite3"
    elif engine.dialect.name == "postgresql":
        target = backup_dir / f"{PREFIX}{stamp}.dump"
        tables = _pg_dump(engine, target)
        pattern = f"{PREFIX}*.dump"
    else:
        raise InvalidInput(f"no backup method for {engine.dialect.name}")
    rotated = rotate(backup_dir, pattern, keep=keep)
    return Backup(
        path=str(target),
        size_bytes=target.stat().st_size,
        sha256=sha256_of(target),
        engine=engine.dialect.name,
        tables=tables,
        rotated_out=[str(path) for path in rotated],
    )


def _sqlite_backup(engine: Engine, target: Path) -> dict[str, int]:
    partial = target.with_suffix(".partial")
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        with sqlite3.connect(partial) as copy:
            source.backup(copy, pages=SQLITE_PAGES_PER_STEP)
        copy.close()
    finally:
        raw.close()
    tables = verify_sqlite(partial)
    partial.replace(target)
    return tables


def verify_sqlite(path: Path) -> dict[str, int]:
    """Reopen a copy: integrity check, then row counts per table (raises if unreadable)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as copy:
        verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise ServiceUnavailable(f"backup {path.name} failed its integrity check: {verdict}")
        names = [
            row[0]
            for row in copy.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts = {
            name: copy.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names
        }
    copy.close()
    if "alembic_version" not in counts:
        raise ServiceUnavailable(f"backup {path.name} has no alembic_version table")
    return dict(sorted(counts.items()))


def _pg_dump(engine: Engine, target: Path) -> dict[str, int]:
    url = normalize_url(engine.url.render_as_string(hide_password=False))
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise ServiceUnavailable("pg_dump is not installed (Debian package postgresql-client)")
    env = {"PGPASSWORD": url.password or ""}
    args = [
        pg_dump,
        "--format=custom",
        f"--file={target}",
        f"--host={url.host or 'localhost'}",
        f"--port={url.port or 5432}",
        f"--username={url.username or 'postgres'}",
        url.database or "postgres",
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise ServiceUnavailable(f"pg_dump failed: {done.stderr.strip()[:500]}")
    listing = subprocess.run(
        [shutil.which("pg_restore") or "pg_restore", "--list", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0 or "TABLE DATA" not in listing.stdout:
        raise ServiceUnavailable(f"backup {target.name} does not list its table data")
    return row_counts(engine)


def rotate(backup_dir: Path, pattern: str, *, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups matching `pattern` (names sort by time)."""
    backups = sorted(backup_dir.glob(pattern))
    old = backups[:-keep] if keep else backups
    for path in old:
        path.unlink(missing_ok=True)
    return old


def restore_sqlite(backup: Path, target: Path) -> None:
    """Restore a SQLite backup into `target` (the operator's path back; used by the tests)."""
    verify_sqlite(backup)
    with (
        sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as source,
        sqlite3.connect(target) as dest,
    ):
        source.backup(dest)

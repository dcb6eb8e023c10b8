"""Engines, sessions and migrations: the one place that knows how to reach the database.

SQLite by default (a file, zero set-up), PostgreSQL through the same URL in production
(`postgresql+psycopg://user:pass@host/db`). Callers build one engine per process with
`make_engine` and pass sessions inward; nothing here reads settings or globals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from domain.errors import ServiceUnavailable
from domain.models import Site

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
#: Read-only connections map the file (up to this size) instead of copying each page they
#: read into a page cache of their own: the searcher's few connections share the OS's pages
#: (a search read through copies cost 5-8% more CPU, measured on issue 16's benchmark).
SQLITE_READ_MMAP_BYTES = 256 * 1024 * 1024
PG_CONNECT_TIMEOUT_S = 5


def normalize_url(url: str) -> URL:
    """Parse a database URL; bare `postgres://` / `postgresql://` use psycopg 3.

    PaaS add-ons hand out `postgres://...`, which SQLAlchemy rejects, and a bare `postgresql://`
    would pick psycopg2, which this project does not install (the `postgres` extra is psycopg 3).
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets the API read while a worker writes; NORMAL sync is safe with WAL (no
        # corruption, at worst the last commits are lost on power failure) and much faster.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite ignores foreign keys unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        # Wait for a concurrent writer instead of failing at once with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`, with the SQLite pragmas set on every new connection.

    For a SQLite file the parent directory is created, so `sqlite:///var/gaveurs.db` works on a
    fresh checkout.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() == "psycopg" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    # pre_ping: a worker idle for hours must not fail its next job on a dropped connection.
    return create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)


def _on_sqlite_read_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # The writers set WAL (it stays set in the file): a reader only refuses to write.
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_READ_MMAP_BYTES}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def make_read_engine(engine: Engine, *, connections: int) -> Engine:
    """A read-only engine on `engine`'s database holding at most `connections` connections,
    opened once and kept: its callers queue for one instead of opening more (bounded work),
    and no request pays a connect or its pragmas. A database only reachable through `engine`
    itself (SQLite in memory) is read through `engine`."""
    url = engine.url
    pool = {"pool_size": connections, "max_overflow": 0, "pool_timeout": 30}
    if url.get_backend_name() == "sqlite":
        if _sqlite_file(url) is None:
            return engine
        reader = create_engine(url, **pool)
        event.listen(reader, "connect", _on_sqlite_read_connect)
        return reader
    connect_args: dict[str, Any] = {"options": "-c default_transaction_read_only=on"}
    if url.get_driver_name() == "psycopg" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit (no lazy reload)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """An Alembic configuration built in code: no alembic.ini to find or keep in sync."""
    # Imported here: workers and the API never migrate, and Alembic logs its plugins at import.
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates '%'; the URL goes through `attributes` for the same reason
    # (passwords may contain '%').
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["database_url"] = url
    return config


def migrate(url: str, *, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision` (the latest by default); idempotent."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def is_empty(engine: Engine) -> bool:
    """True when there is no schema yet or no site: the demo data may be loaded."""
    if not inspect(engine).has_table(Site.__tablename__):
        return True
    with engine.connect() as connection:
        return connection.execute(select(Site.id).limit(1)).first() is None


def ping(engine: Engine) -> None:
    """Raise ServiceUnavailable unless the database answers a trivial query."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1").scalar_one()
    except (DBAPIError, PoolTimeout) as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ServiceUnavailable(f"database {where} unreachable: {reason}") from None

"""Per-process resources actors need (the database engine), built lazily from Settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.db import make_engine, session_factory
from domain.settings import get_settings


@lru_cache(maxsize=1)
def engine() -> Engine:
    return make_engine(get_settings().database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with session_factory(engine())() as session, session.begin():
        yield session


@contextmanager
def chunked_session() -> Iterator[Session]:
    """A session for work that commits in chunks itself (purges); rolled back on error."""
    with session_factory(engine())() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

"""Demo databases for the domain unit tests, generated once per session (fixed `today`).

Fixture names start with `unit_` so they never shadow the shared ones in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain import demo
from domain.platform import db

UNIT_TODAY = date(2026, 1, 8)
UNIT_SEED = 42


def build_demo_database(
    path: Path, *, seed: int = UNIT_SEED, scale: float, today: date = UNIT_TODAY
) -> tuple[Engine, demo.DemoSummary]:
    """A migrated SQLite file at `path` holding the demo data for (seed, scale, today)."""
    url = f"sqlite:///{path}"
    db.migrate(url)
    engine = db.make_engine(url)
    with db.session_factory(engine)() as session, session.begin():
        summary = demo.generate(session, seed=seed, scale=scale, today=today)
    return engine, summary


@pytest.fixture(scope="session")
def unit_demo_scale1(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Engine, demo.DemoSummary]]:
    """The default demo (scale 1, seed 42): 600 lots 3001..3600. Read-only for tests."""
    engine, summary = build_demo_database(
        tmp_path_factory.mktemp("demo-scale1") / "gaveurs.db", scale=1.0
    )
    yield engine, summary
    engine.dispose()


@pytest.fixture(scope="session")
def unit_demo_engine(unit_demo_scale1: tuple[Engine, demo.DemoSummary]) -> Engine:
    return unit_demo_scale1[0]


@pytest.fixture()
def unit_demo_session(unit_demo_engine: Engine) -> Iterator[Session]:
    """A session on the scale-1 demo; whatever a test writes is rolled back."""
    with db.session_factory(unit_demo_engine)() as session:
        yield session
        session.rollback()


@pytest.fixture(scope="session")
def unit_small_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Engine, demo.DemoSummary]]:
    """A small demo (scale 0.1, seed 42): 6 gaveurs, 60 lots. Read-only for tests."""
    engine, summary = build_demo_database(
        tmp_path_factory.mktemp("demo-small") / "gaveurs.db", scale=0.1
    )
    yield engine, summary
    engine.dispose()


@pytest.fixture()
def unit_fresh_demo(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """A factory of throw-away demo databases, for tests that write."""
    engines: list[Engine] = []

    def make(*, scale: float = 0.05, seed: int = UNIT_SEED, name: str = "fresh.db") -> Engine:
        engine, _summary = build_demo_database(tmp_path / name, seed=seed, scale=scale)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()

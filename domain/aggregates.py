"""Incremental aggregates: feeding records per site and day, SQAL samples per site, device, hour.

The portable stand-in for TimescaleDB continuous aggregates (seed 000/001: "refresh continuous
aggregates", hourly). A watermark per source table remembers the last row id folded in; a
refresh finds the groups touched by newer rows and recomputes each of them from all its source
rows (delete + insert inside the caller's transaction), so a refresh is idempotent and a group
is always exact, however its rows arrived.

Limits, by design: updates or deletes of already-folded rows are not seen incrementally, and a
row whose transaction commits after a higher id was folded is missed until its group is touched
again. `full=True` recomputes every group that still has source rows (groups whose raw rows were
purged by retention are kept); schedule it daily.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, case, delete, func, insert, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from domain.models import (
    AggregateWatermark,
    FeedingRecord,
    GavageStatsDaily,
    Grade,
    Lot,
    SqalSample,
    SqalStatsHourly,
    UTCDateTime,
    utcnow,
)

FEEDING_WATERMARK = "feeding_records"
SQAL_WATERMARK = "sqal_samples"
#: The advisory lock every writer of those two tables holds shared on PostgreSQL (0011).
PG_WRITERS_LOCK = 0x6761676772
# Groups per delete/insert statement: keeps bound parameters well under SQLite's limit.
GROUPS_PER_STATEMENT = 400

T = TypeVar("T")


class hour_floor(FunctionElement[datetime]):
    """A timestamp truncated to its UTC hour, in the storage format of UTCDateTime."""

    type = UTCDateTime()
    inherit_cache = True
    name = "hour_floor"


@compiles(hour_floor, "sqlite")
def _hour_floor_sqlite(element: hour_floor, compiler: SQLCompiler, **kw: Any) -> str:
    # Same text layout as SQLAlchemy's SQLite DATETIME, so equality with bound values holds.
    # pysqlite uses the qmark paramstyle: a literal '%' needs no escaping here.
    column = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:00:00.000000', {column})"


@compiles(hour_floor, "postgresql")
def _hour_floor_postgresql(element: hour_floor, compiler: SQLCompiler, **kw: Any) -> str:
    # date_trunc on timestamptz truncates in the session time zone: pin it to UTC.
    column = compiler.process(element.clauses, **kw)
    return f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def refresh_aggregates(session: Session, *, full: bool = False) -> dict[str, Any]:
    """Fold new feeding records and SQAL samples into the stats tables; the caller commits.

    Returns {"gavage_groups", "sqal_groups", "new_feeding_records", "new_sqal_samples", "full"}:
    groups recomputed and source rows newer than the watermarks (all rows when `full`).
    """
    feeding_after = 0 if full else _watermark(session, FEEDING_WATERMARK)
    sqal_after = 0 if full else _watermark(session, SQAL_WATERMARK)
    # Read the high-water marks first: rows inserted meanwhile are left for the next refresh.
    feeding_max, sqal_max = _high_water_marks(session)

    gavage_groups = _touched_gavage_groups(session, feeding_after, feeding_max)
    for chunk in _chunks(gavage_groups):
        _recompute_gavage(session, chunk)
    sqal_groups = _touched_sqal_groups(session, sqal_after, sqal_max)
    for sqal_chunk in _chunks(sqal_groups):
        _recompute_sqal(session, sqal_chunk)

    new_feeding = _count_between(session, FeedingRecord.id, feeding_after, feeding_max)
    new_sqal = _count_between(session, SqalSample.id, sqal_after, sqal_max)
    _set_watermark(session, FEEDING_WATERMARK, max(feeding_max, feeding_after))
    _set_watermark(session, SQAL_WATERMARK, max(sqal_max, sqal_after))
    session.flush()
    return {
        "gavage_groups": len(gavage_groups),
        "sqal_groups": len(sqal_groups),
        "new_feeding_records": new_feeding,
        "new_sqal_samples": new_sqal,
        "full": full,
    }


def _high_water_marks(session: Session) -> tuple[int, int]:
    """The highest feeding record and SQAL sample ids, with every row below them committed.

    On PostgreSQL an id is taken when a row is written and seen when its transaction commits:
    a batch may commit after one with higher ids. Writers hold PG_WRITERS_LOCK shared to their
    commit (migration 0011); the marks are read under it exclusively, on a connection of their
    own, so the writers in flight have committed and the next ones take higher ids. The lock
    goes with that connection's transaction, whatever interrupts this. (So the session's own
    transaction must not have written those tables: it would wait for itself.)"""
    statement = select(
        select(func.max(FeedingRecord.id)).scalar_subquery(),
        select(func.max(SqalSample.id)).scalar_subquery(),
    )
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        marks = session.execute(statement).one()  # SQLite: one writer, ids committed in order
    else:
        with bind.engine.connect() as connection, connection.begin():
            connection.execute(select(func.pg_advisory_xact_lock(PG_WRITERS_LOCK)))
            marks = connection.execute(statement).one()
    return int(marks[0] or 0), int(marks[1] or 0)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _watermark(session: Session, name: str) -> int:
    mark = session.get(AggregateWatermark, name)
    return mark.last_id if mark is not None else 0


def _set_watermark(session: Session, name: str, last_id: int) -> None:
    mark = session.get(AggregateWatermark, name)
    if mark is None:
        session.add(AggregateWatermark(name=name, last_id=last_id, updated_at=utcnow()))
    elif mark.last_id != last_id:
        mark.last_id, mark.updated_at = last_id, utcnow()


def _count_between(session: Session, column: Any, after: int, upto: int) -> int:
    return session.scalar(select(func.count()).where(column > after, column <= upto)) or 0


def _chunks(items: Sequence[T]) -> list[Sequence[T]]:
    return [items[i : i + GROUPS_PER_STATEMENT] for i in range(0, len(items), GROUPS_PER_STATEMENT)]


def _touched_gavage_groups(session: Session, after: int, upto: int) -> list[tuple[Any, ...]]:
    # Sorted by date so each chunk covers a narrow date range the record_date index can serve.
    rows = session.execute(
        select(Lot.site_id, FeedingRecord.record_date)
        .join(Lot, Lot.id == FeedingRecord.lot_id)
        .where(FeedingRecord.id > after, FeedingRecord.id <= upto)
        .distinct()
        .order_by(FeedingRecord.record_date, Lot.site_id)
    )
    return [tuple(row) for row in rows]


def _recompute_gavage(session: Session, groups: Sequence[tuple[Any, ...]]) -> None:
    stats = GavageStatsDaily
    first, last = groups[0][1], max(group[1] for group in groups)
    session.execute(delete(stats).where(tuple_(stats.site_id, stats.stat_date).in_(groups)))
    source = (
        select(
            Lot.site_id,
            FeedingRecord.record_date,
            func.count(FeedingRecord.lot_id.distinct()),
            func.count(),
            func.avg(FeedingRecord.dose_g),
            func.avg(FeedingRecord.mean_weight_g),
            func.avg(FeedingRecord.temperature_c),
            func.sum(FeedingRecord.mortality),
        )
        .join(Lot, Lot.id == FeedingRecord.lot_id)
        .where(
            FeedingRecord.record_date.between(first, last),
            tuple_(Lot.site_id, FeedingRecord.record_date).in_(groups),
        )
        .group_by(Lot.site_id, FeedingRecord.record_date)
    )
    columns = ["site_id", "stat_date", "lots_active", "records", "mean_dose_g", "mean_weight_g",
               "mean_temperature_c", "deaths"]  # fmt: skip
    session.execute(insert(_table(stats)).from_select(columns, source))


def _touched_sqal_groups(session: Session, after: int, upto: int) -> list[tuple[Any, ...]]:
    hour = hour_floor(SqalSample.measured_at)
    rows = session.execute(
        select(Lot.site_id, SqalSample.device_id, hour)
        .join(Lot, Lot.id == SqalSample.lot_id)
        .where(SqalSample.id > after, SqalSample.id <= upto)
        .distinct()
        .order_by(hour, Lot.site_id, SqalSample.device_id)
    )
    return [tuple(row) for row in rows]


def _grade_count(grade: Grade) -> ColumnElement[Any]:
    return func.sum(case((SqalSample.grade == grade.value, 1), else_=0))


def _recompute_sqal(session: Session, groups: Sequence[tuple[Any, ...]]) -> None:
    stats = SqalStatsHourly
    first, last = groups[0][2], max(group[2] for group in groups) + timedelta(hours=1)
    session.execute(
        delete(stats).where(tuple_(stats.site_id, stats.device_id, stats.hour).in_(groups))
    )
    hour = hour_floor(SqalSample.measured_at)
    source = (
        select(
            Lot.site_id,
            SqalSample.device_id,
            hour,
            func.count(),
            func.avg(SqalSample.liver_weight_g),
            _grade_count(Grade.A_PLUS),
            _grade_count(Grade.A),
            _grade_count(Grade.B),
            _grade_count(Grade.C),
        )
        .join(Lot, Lot.id == SqalSample.lot_id)
        .where(
            SqalSample.measured_at >= first,
            SqalSample.measured_at < last,
            tuple_(Lot.site_id, SqalSample.device_id, hour).in_(groups),
        )
        .group_by(Lot.site_id, SqalSample.device_id, hour)
    )
    columns = ["site_id", "device_id", "hour", "samples", "mean_liver_weight_g", "grade_a_plus",
               "grade_a", "grade_b", "grade_c"]  # fmt: skip
    session.execute(insert(_table(stats)).from_select(columns, source))

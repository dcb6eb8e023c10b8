"""Streamed exports: gavage, SQAL and feedback tables as CSV, and batch ZIPs of per-lot CSVs.

Rows come from the database in chunks (`yield_per`: a server-side cursor on PostgreSQL, chunked
fetches on SQLite) and go straight to the csv writer, so memory stays flat whatever the size.
Files are UTF-8, comma-separated, RFC 4180 quoting, CRLF line ends, one header row whose column
names are stable. Consumer e-mail addresses are personal data and are never exported.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Row, Select, String, func, select, type_coerce
from sqlalchemy.orm import Session

from domain.errors import InvalidInput, NotFound
from domain.models import ConsumerFeedback, FeedingRecord, Gaveur, Lot, Site, SqalSample
from domain.physiology import TOF_GRID
from domain.progress import Progress, quiet
from domain.queries import LOT_FIELDS
from domain.reports.data import period_bounds

CHUNK_ROWS = 10_000
TOF_COLUMNS = tuple(f"tof_r{r + 1}c{c + 1}_mm" for r in range(TOF_GRID) for c in range(TOF_GRID))


@dataclass(frozen=True)
class Export:
    """A table to export: its column names, its query, and how a row becomes CSV cells."""

    name: str
    columns: tuple[str, ...]
    query: Select[Any]
    #: Turns a row into cells; None writes the row as it is (the fastest path, for gavage).
    shape: Callable[[Row[Any]], Sequence[Any]] | None = None

    def count(self, session: Session) -> int:
        return session.scalar(select(func.count()).select_from(self.query.subquery())) or 0

    def chunks(self, session: Session) -> Iterator[Sequence[Sequence[Any]]]:
        result = session.execute(self.query.execution_options(yield_per=CHUNK_ROWS))
        shape = self.shape
        for partition in result.partitions():
            yield partition if shape is None else [shape(row) for row in partition]


def _as_text(column: Any) -> Any:
    """The column as the driver returns it: SQLite's ISO date text is written as it is, instead
    of being parsed into a date and formatted back (a second per million rows); PostgreSQL's
    driver returns a date, which the csv module writes in the same ISO form."""
    return type_coerce(column, String).label(column.key)


def _lot_filter(query: Select[Any], column: Any, lot_ids: Sequence[int] | None) -> Select[Any]:
    return query.where(column.in_(lot_ids)) if lot_ids is not None else query


def gavage(
    *,
    lot_ids: Sequence[int] | None = None,
    date_debut: date | None = None,
    date_fin: date | None = None,
    text_dates: bool = True,
) -> Export:
    """Feeding records (one row per meal) with the lot, site and gaveur codes; `text_dates`
    leaves `record_date` as the driver gives it (for CSV), else it is a date (for Excel)."""
    record_date = _as_text(FeedingRecord.record_date) if text_dates else FeedingRecord.record_date
    query = (
        select(
            FeedingRecord.lot_id, Lot.code, Site.code, Gaveur.code, FeedingRecord.day,
            FeedingRecord.meal, record_date, FeedingRecord.dose_g,
            FeedingRecord.mean_weight_g, FeedingRecord.temperature_c,
            FeedingRecord.humidity_pct, FeedingRecord.mortality,
        )
        .join(Lot, Lot.id == FeedingRecord.lot_id)
        .join(Site, Site.id == Lot.site_id)
        .join(Gaveur, Gaveur.id == Lot.gaveur_id)
        .order_by(FeedingRecord.lot_id, FeedingRecord.day, FeedingRecord.meal.desc())
    )  # fmt: skip
    if date_debut is not None:
        query = query.where(FeedingRecord.record_date >= date_debut)
    if date_fin is not None:
        query = query.where(FeedingRecord.record_date <= date_fin)
    columns = (
        "lot_id", "lot_code", "site_code", "gaveur_code", "day", "meal", "record_date",
        "dose_g", "mean_weight_g", "temperature_c", "humidity_pct", "mortality",
    )  # fmt: skip
    return Export("gavage", columns, _lot_filter(query, FeedingRecord.lot_id, lot_ids))


def _sqal_row(row: Row[Any]) -> Sequence[Any]:
    *head, measured_at, weight, grade, batch, zones = row
    return (*head, measured_at.isoformat(), weight, grade, batch or "", *zones)


def sqal(
    *,
    lot_ids: Sequence[int] | None = None,
    date_debut: date | None = None,
    date_fin: date | None = None,
) -> Export:
    """SQAL samples with their 64 time-of-flight zones as columns (row-major, mm)."""
    query = (
        select(
            SqalSample.id, SqalSample.lot_id, Lot.code, Site.code, SqalSample.device_id,
            SqalSample.measured_at, SqalSample.liver_weight_g, SqalSample.grade,
            SqalSample.batch_id, SqalSample.tof_zones_mm,
        )
        .join(Lot, Lot.id == SqalSample.lot_id)
        .join(Site, Site.id == Lot.site_id)
        .order_by(SqalSample.id)
    )  # fmt: skip
    query = _in_period(query, SqalSample.measured_at, date_debut, date_fin)
    columns = (
        "sample_id", "lot_id", "lot_code", "site_code", "device_id", "measured_at",
        "liver_weight_g", "grade", "batch_id", *TOF_COLUMNS,
    )  # fmt: skip
    return Export("sqal", columns, _lot_filter(query, SqalSample.lot_id, lot_ids), _sqal_row)


def _feedback_row(row: Row[Any]) -> Sequence[Any]:
    feedback_id, lot_id, lot_code, site_code, created_at, *rest = row
    return (feedback_id, lot_id, lot_code, site_code, created_at.isoformat(), *rest)


def feedbacks(
    *,
    lot_ids: Sequence[int] | None = None,
    date_debut: date | None = None,
    date_fin: date | None = None,
) -> Export:
    """Consumer feedback without the consumer's e-mail address (personal data)."""
    query = (
        select(
            ConsumerFeedback.id, ConsumerFeedback.lot_id, Lot.code, Site.code,
            ConsumerFeedback.created_at, ConsumerFeedback.rating, ConsumerFeedback.texture,
            ConsumerFeedback.taste, ConsumerFeedback.comment,
        )
        .join(Lot, Lot.id == ConsumerFeedback.lot_id)
        .join(Site, Site.id == Lot.site_id)
        .order_by(ConsumerFeedback.id)
    )  # fmt: skip
    query = _in_period(query, ConsumerFeedback.created_at, date_debut, date_fin)
    columns = (
        "feedback_id", "lot_id", "lot_code", "site_code", "created_at", "rating", "texture",
        "taste", "comment",
    )  # fmt: skip
    query = _lot_filter(query, ConsumerFeedback.lot_id, lot_ids)
    return Export("feedbacks", columns, query, _feedback_row)


def _in_period(
    query: Select[Any], column: Any, start: date | None, end: date | None
) -> Select[Any]:
    if start is not None and end is not None:
        since, until = period_bounds(start, end)
        return query.where(column >= since, column < until)
    if start is not None:
        return query.where(column >= period_bounds(start, start)[0])
    if end is not None:
        return query.where(column < period_bounds(end, end)[1])
    return query


def write_csv(
    session: Session, export: Export, out: IO[bytes], *, progress: Progress = quiet
) -> int:
    """Stream `export` into `out` as CSV; the number of data rows written."""
    total = export.count(session)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text)
    writer.writerow(export.columns)
    written = 0
    for chunk in export.chunks(session):
        writer.writerows(chunk)
        written += len(chunk)
        progress(10 + 80 * written / max(total, 1), f"{written}/{total} rows written")
    text.flush()
    text.detach()  # leave `out` open: its owner closes it
    return written


def checked_lot_ids(session: Session, lot_ids: Sequence[int], *, limit: int) -> list[int]:
    """De-duplicated ids in the given order, 1..limit of them, all existing (else NotFound)."""
    unique = list(dict.fromkeys(lot_ids))
    if not 1 <= len(unique) <= limit:
        raise InvalidInput(f"a batch export takes 1 to {limit} lot ids, got {len(unique)}")
    known = set(session.scalars(select(Lot.id).where(Lot.id.in_(unique))))
    unknown = [lot_id for lot_id in unique if lot_id not in known]
    if unknown:
        raise NotFound(f"unknown lot ids: {', '.join(map(str, unknown))}")
    return unique


def write_lots_zip(
    session: Session,
    lot_ids: Sequence[int],
    out: IO[bytes],
    *,
    progress: Progress = quiet,
    sources: Mapping[int, tuple[Path, int]] | None = None,
) -> dict[str, Any]:
    """A ZIP with `lots.csv` (one summary row per lot) and `lot_<id>_<code>.csv` per lot.

    With `sources` (lot id -> (its CSV already written, its row count), as a batch workflow's
    per-lot steps made them) the members are copied from those files instead of queried."""
    lots = {lot.id: lot for lot in session.scalars(select(Lot).where(Lot.id.in_(lot_ids)))}
    members, rows = ["lots.csv"], 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("lots.csv", "w") as member:
            text = io.TextIOWrapper(member, encoding="utf-8", newline="")
            writer = csv.writer(text)
            writer.writerow(LOT_FIELDS)
            writer.writerows([getattr(lots[i], name) for name in LOT_FIELDS] for i in lot_ids)
            text.flush()
            text.detach()
        for done, lot_id in enumerate(lot_ids, start=1):
            name = f"lot_{lot_id}_{lots[lot_id].code}.csv"
            with archive.open(name, "w") as member:
                if sources is None:
                    rows += write_csv(session, gavage(lot_ids=[lot_id]), member)
                else:
                    path, count = sources[lot_id]
                    with path.open("rb") as written:
                        shutil.copyfileobj(written, member)
                    rows += count
            members.append(name)
            progress(10 + 80 * done / len(lot_ids), f"{done}/{len(lot_ids)} lots written")
    return {"lots": len(lot_ids), "rows": rows, "members": members}

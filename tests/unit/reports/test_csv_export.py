"""CSV exports and batch ZIPs, read back with the csv and zipfile modules: row counts match the
database, columns are stable, no consumer e-mail address leaves the database."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.errors import InvalidInput, NotFound
from domain.models import ConsumerFeedback, FeedingRecord, Lot, SqalSample, StoredFile
from domain.reports import csv_export, runs
from domain.reports.runs import ExportContext


def _rows(ctx: ExportContext, result: dict[str, Any]) -> list[list[str]]:
    row = ctx.session.get(StoredFile, result["file_id"])
    assert row is not None and row.content_type == "text/csv; charset=utf-8"
    path: Path = ctx.store.path_of(row)
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_gavage_csv_of_every_lot_matches_the_database(ctx: ExportContext) -> None:
    result = runs.table_csv(ctx, "gavage")

    rows = _rows(ctx, result)
    total = ctx.session.scalar(select(func.count()).select_from(FeedingRecord))
    assert result["rows"] == len(rows) - 1 == total
    assert rows[0] == list(csv_export.gavage().columns)
    assert rows[0][:4] == ["lot_id", "lot_code", "site_code", "gaveur_code"]
    dose = ctx.session.scalar(select(func.sum(FeedingRecord.dose_g)))
    assert sum(float(r[7]) for r in rows[1:]) == pytest.approx(dose)
    assert result["file_url"] == "/exports/csv/gavage_all_20260108.csv"


def test_gavage_csv_of_one_lot_over_a_period(ctx: ExportContext) -> None:
    start, end = date(2025, 11, 8), date(2025, 11, 12)
    result = runs.table_csv(ctx, "gavage", lot_id=3472, date_debut=start, date_fin=end)

    rows = _rows(ctx, result)
    expected = ctx.session.scalar(
        select(func.count()).where(
            FeedingRecord.lot_id == 3472, FeedingRecord.record_date.between(start, end)
        )
    )
    assert len(rows) - 1 == expected == 10  # five days, two meals a day
    assert {r[0] for r in rows[1:]} == {"3472"} and {r[6] for r in rows[1:]} <= {
        f"2025-11-{day:02d}" for day in range(8, 13)
    }
    assert result["file_url"] == "/exports/csv/gavage_lot3472_20251108-20251112_20260108.csv"


def test_large_exports_are_read_in_chunks(ctx: ExportContext) -> None:
    # The demo has ~14,000 feeding records: more than one chunk of CSV rows.
    chunks = list(csv_export.gavage().chunks(ctx.session))
    assert len(chunks) >= 2 and max(len(c) for c in chunks) == csv_export.CHUNK_ROWS


def test_sqal_csv_has_the_64_zones_of_each_sample(ctx: ExportContext) -> None:
    result = runs.table_csv(ctx, "sqal", lot_id=3472)

    rows = _rows(ctx, result)
    samples = ctx.session.scalars(
        select(SqalSample).where(SqalSample.lot_id == 3472).order_by(SqalSample.id)
    ).all()
    assert len(rows) - 1 == len(samples) > 0
    header = rows[0]
    assert len(header) == 9 + 64 and header[9] == "tof_r1c1_mm" and header[-1] == "tof_r8c8_mm"
    first = rows[1]
    assert [float(v) for v in first[9:]] == samples[0].tof_zones_mm
    assert first[7] == samples[0].grade
    assert datetime.fromisoformat(first[5]) == samples[0].measured_at


def test_feedback_csv_never_contains_consumer_emails(ctx: ExportContext) -> None:
    start, end = date(2025, 6, 1), date(2025, 8, 31)
    result = runs.table_csv(ctx, "feedbacks", date_debut=start, date_fin=end)

    row = ctx.session.get(StoredFile, result["file_id"])
    assert row is not None
    content = ctx.store.path_of(row).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(content)))
    since, until = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 9, 1, tzinfo=UTC)
    in_period = (ConsumerFeedback.created_at >= since, ConsumerFeedback.created_at < until)
    expected = ctx.session.scalar(select(func.count()).where(*in_period))
    with_email = ctx.session.scalar(
        select(func.count()).where(*in_period, ConsumerFeedback.consumer_email.is_not(None))
    )
    assert len(rows) - 1 == expected and with_email  # some of those consumers left an address
    assert "email" not in ",".join(rows[0]) and "@" not in content
    assert rows[0] == [
        "feedback_id", "lot_id", "lot_code", "site_code", "created_at", "rating", "texture",
        "taste", "comment",
    ]  # fmt: skip


def test_batch_zip_holds_one_csv_per_lot(ctx: ExportContext) -> None:
    result = runs.lots_zip(ctx, lot_ids=[3472, 3001, 3472, 3100], limit=10)

    assert result["lot_ids"] == [3472, 3001, 3100]  # de-duplicated, in the given order
    row = ctx.session.get(StoredFile, result["file_id"])
    assert row is not None and row.content_type == "application/zip"
    codes = dict(
        ctx.session.execute(select(Lot.id, Lot.code).where(Lot.id.in_([3472, 3001, 3100])))
        .tuples()
        .all()
    )
    with zipfile.ZipFile(ctx.store.path_of(row)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names == ["lots.csv"] + [f"lot_{i}_{codes[i]}.csv" for i in (3472, 3001, 3100)]
        index = list(csv.reader(io.TextIOWrapper(archive.open("lots.csv"), encoding="utf-8")))
        assert [r[0] for r in index[1:]] == ["3472", "3001", "3100"]
        for lot_id in (3472, 3001, 3100):
            member = archive.open(f"lot_{lot_id}_{codes[lot_id]}.csv")
            lines = list(csv.reader(io.TextIOWrapper(member, encoding="utf-8")))
            expected = ctx.session.scalar(
                select(func.count()).where(FeedingRecord.lot_id == lot_id)
            )
            assert len(lines) - 1 == expected
    assert result["rows"] == sum(
        ctx.session.scalar(select(func.count()).where(FeedingRecord.lot_id == i)) or 0
        for i in (3472, 3001, 3100)
    )


def test_batch_refuses_unknown_lots_naming_them_and_too_many(ctx: ExportContext) -> None:
    with pytest.raises(NotFound, match="unknown lot ids: 1, 99999"):
        runs.lots_zip(ctx, lot_ids=[3472, 1, 99999], limit=10)
    with pytest.raises(InvalidInput, match="1 to 2 lot ids"):
        runs.lots_zip(ctx, lot_ids=[3001, 3002, 3003], limit=2)

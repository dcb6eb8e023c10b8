"""Excel workbooks read back with openpyxl: sheets, native charts, frozen headers, filters."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from domain.models import ConsumerFeedback, FeedingRecord, Lot, SqalSample, StoredFile
from domain.reports import runs
from domain.reports.runs import ExportContext


def _workbook(ctx: ExportContext, result: dict[str, Any]) -> Workbook:
    row = ctx.session.get(StoredFile, result["file_id"])
    assert row is not None and row.content_type.endswith("spreadsheetml.sheet")
    return load_workbook(ctx.store.path_of(row))


def test_lot_workbook_has_a_sheet_per_topic_with_charts(ctx: ExportContext) -> None:
    result = runs.lot_xlsx(ctx, lot_id=3472)

    assert result["file_url"] == "/exports/reports/lot_3472_20260108.xlsx"
    book = _workbook(ctx, result)
    assert book.sheetnames == ["Lot", "Jours", "Repas", "SQAL", "Carte ToF", "Avis"]
    assert {name: len(book[name]._charts) for name in book.sheetnames} == {
        "Lot": 0, "Jours": 1, "Repas": 0, "SQAL": 1, "Carte ToF": 0, "Avis": 0,
    }  # fmt: skip
    for name in ("Jours", "Repas", "SQAL", "Avis"):
        assert book[name].freeze_panes == "A2", name
        assert book[name].auto_filter.ref, name
    session = ctx.session
    lot = session.get(Lot, 3472)
    assert lot is not None
    assert book["Lot"]["A1"].value == f"Lot {lot.code} (n° 3472)"
    # every meal of the lot, one row each, with the database's values
    meals = session.scalars(
        select(FeedingRecord)
        .where(FeedingRecord.lot_id == 3472)
        .order_by(FeedingRecord.day, FeedingRecord.meal.desc())
    ).all()
    sheet = book["Repas"]
    assert sheet.max_row - 1 == len(meals) == result["rows"]["meals"]
    assert [cell.value for cell in sheet[1]][:6] == [
        "lot_id", "lot_code", "site_code", "gaveur_code", "day", "meal",
    ]  # fmt: skip
    assert sheet["H2"].value == meals[0].dose_g and sheet["F3"].value == meals[1].meal
    assert sheet["H2"].number_format == "#,##0.0"
    assert sheet["G2"].value.date() == meals[0].record_date  # a real Excel date
    days = book["Jours"]
    assert days.max_row - 1 == lot.duration_days
    samples = session.scalar(select(func.count()).where(SqalSample.lot_id == 3472))
    assert book["SQAL"].max_row - 1 == max(samples or 0, 4)
    feedback = session.scalar(select(func.count()).where(ConsumerFeedback.lot_id == 3472))
    assert book["Avis"].max_row - 1 == feedback
    # the ToF map is the 8x8 mean of the lot's samples, under its title
    zones = session.scalars(select(SqalSample.tof_zones_mm).where(SqalSample.lot_id == 3472))
    mean = np.round(np.mean(np.array(list(zones)), axis=0), 1).reshape(8, 8)
    tof = book["Carte ToF"]
    grid = [[tof.cell(row=r, column=c).value for c in range(1, 9)] for r in range(3, 11)]
    assert np.allclose(grid, mean)
    assert tof.conditional_formatting  # the colour scale


def test_site_workbook_has_lots_trends_and_ranking(ctx: ExportContext) -> None:
    result = runs.site_xlsx(
        ctx, site_code="MT", date_debut=date(2025, 9, 1), date_fin=date(2025, 11, 30)
    )

    book = _workbook(ctx, result)
    assert book.sheetnames == ["Site", "Lots", "Tendances", "Gaveurs", "SQAL"]
    assert [len(book[name]._charts) for name in book.sheetnames] == [0, 0, 1, 1, 1]
    assert book["Lots"].max_row - 1 == result["rows"]["lots"] > 0
    # the trend has one row per day with a feeding record on the site
    assert book["Tendances"].max_row - 1 == result["rows"]["days"] > 60
    assert book["Tendances"]["A2"].value.date() == date(2025, 9, 1)
    assert book["Gaveurs"]["A2"].value == 1 and book["Gaveurs"].auto_filter.ref

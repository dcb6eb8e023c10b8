"""Lot and site PDFs, read back with pypdf: the lot code and the database's figures are there."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from domain.errors import InvalidInput, NotFound
from domain.models import ConsumerFeedback, FeedingRecord, Gaveur, Lot, Site, SqalSample, StoredFile
from domain.platform import db
from domain.platform.files import FileStore
from domain.reports import runs
from domain.reports.fmt import num
from domain.reports.runs import ExportContext
from tests.support.exports import pdf_text, sha256
from tests.unit.reports.conftest import NOW

LOT_ID = 3472  # the seed's example lot, slaughtered in the scale-1 demo


def test_complete_lot_report_shows_the_lot_and_its_figures(ctx: ExportContext) -> None:
    # Given lot 3472 of the demo, when its complete report is made
    result = runs.lot_pdf(ctx, lot_id=LOT_ID, report_type="complete")

    # Then the result follows seed 001 and points at the recorded file
    assert result["pdf_url"] == "/exports/reports/lot_3472_complete_20260108.pdf"
    assert result["status"] == "success" and result["report_type"] == "complete"
    row = ctx.session.get(StoredFile, result["file_id"])
    assert row is not None and row.kind == "lot_pdf"
    data = ctx.store.path_of(row).read_bytes()
    assert result["file_size"] == row.size_bytes == len(data)
    assert result["sha256"] == row.sha256 == sha256(data)
    assert row.expires_at == NOW + timedelta(days=7)

    # and the PDF parses, holding the lot's identity and figures from the database
    pages, text = pdf_text(data)
    session = ctx.session
    lot = session.get(Lot, LOT_ID)
    assert lot is not None
    gaveur = session.get(Gaveur, lot.gaveur_id)
    assert gaveur is not None
    deaths = session.scalar(
        select(func.sum(FeedingRecord.mortality)).where(FeedingRecord.lot_id == LOT_ID)
    )
    assert pages >= 2
    for expected in (
        f"Rapport de lot {lot.code}",
        f"{gaveur.first_name} {gaveur.last_name}",
        gaveur.phone,
        num(lot.itm, 2),
        num(lot.mortality_pct, 2),
        num(lot.mean_liver_weight_g),
        f"{deaths} canards morts",
        f"J{lot.duration_days}",
    ):
        assert expected in text, expected
    # the ITM of the site's finished lots, computed here independently
    site_itms = session.scalars(
        select(Lot.itm).where(Lot.site_id == lot.site_id, Lot.itm.is_not(None))
    ).all()
    assert num(sum(site_itms) / len(site_itms), 2) in text
    # the ToF heat map holds the mean of the lot's samples, cell by cell
    zones = session.scalars(select(SqalSample.tof_zones_mm).where(SqalSample.lot_id == LOT_ID))
    mean = np.mean(np.array(list(zones)), axis=0)
    assert "Carte ToF" in text
    assert num(float(mean[0])) in text and num(float(mean[27])) in text
    # and the consumers' comments
    comment = session.scalar(
        select(ConsumerFeedback.comment).where(ConsumerFeedback.lot_id == LOT_ID).limit(1)
    )
    assert comment is not None and comment in text.replace("\n", " ")


def test_summary_report_leaves_out_the_details(ctx: ExportContext) -> None:
    complete = runs.lot_pdf(ctx, lot_id=LOT_ID, report_type="complete")
    summary = runs.lot_pdf(ctx, lot_id=LOT_ID, report_type="summary")

    def text_of(result: dict[str, object]) -> str:
        row = ctx.session.get(StoredFile, result["file_id"])
        assert row is not None
        return pdf_text(ctx.store.path_of(row))[1]

    short, full = text_of(summary), text_of(complete)
    assert "LS2511002" in short and "Courbes de gavage" in short
    assert "Carte ToF" not in short and "Relevés journaliers" not in short
    assert "Carte ToF" in full and "Relevés journaliers" in full


def test_a_second_report_of_the_day_gets_its_own_name(ctx: ExportContext) -> None:
    first = runs.lot_pdf(ctx, lot_id=LOT_ID, report_type="summary")
    second = runs.lot_pdf(ctx, lot_id=LOT_ID, report_type="summary")
    assert first["pdf_url"] == "/exports/reports/lot_3472_summary_20260108.pdf"
    assert second["pdf_url"] == "/exports/reports/lot_3472_summary_20260108-2.pdf"
    # the first file is untouched: its bytes still match its recorded sha256
    row = ctx.session.get(StoredFile, first["file_id"])
    assert row is not None and sha256(ctx.store.path_of(row).read_bytes()) == first["sha256"]


def test_site_report_shows_kpis_ranking_and_every_lot(ctx: ExportContext) -> None:
    start, end = date(2025, 10, 1), date(2025, 12, 31)
    result = runs.site_pdf(ctx, site_code="ll", date_debut=start, date_fin=end)

    assert result["pdf_url"] == "/exports/reports/site_LL_20251001_20251231_20260108.pdf"
    row = ctx.session.get(StoredFile, result["file_id"])
    assert row is not None
    pages, text = pdf_text(ctx.store.path_of(row))
    session = ctx.session
    site = session.scalar(select(Site).where(Site.code == "LL"))
    assert site is not None
    # the lots feeding at any time of the period, found here from their own dates
    lots = [
        lot
        for lot in session.scalars(select(Lot).where(Lot.site_id == site.id))
        if lot.start_date <= end and lot.start_date + timedelta(days=lot.duration_days - 1) >= start
    ]
    assert result["lots"] == len(lots) > 10
    assert f"Rapport de site LL – {site.name}" in text and site.manager_phone in text
    assert all(lot.code in text for lot in lots)
    finished = [lot.itm for lot in lots if lot.itm is not None]
    assert num(sum(finished) / len(finished), 2) in text
    # the ranking starts with the gaveur of the lowest mean ITM
    per_gaveur: dict[int, list[float]] = {}
    for lot in lots:
        if lot.itm is not None:
            per_gaveur.setdefault(lot.gaveur_id, []).append(lot.itm)
    best = min(per_gaveur, key=lambda g: sum(per_gaveur[g]) / len(per_gaveur[g]))
    best_gaveur = session.get(Gaveur, best)
    assert best_gaveur is not None
    ranking = text[text.index("Classement des gaveurs") :]
    first_row = ranking.split("\n")[:20]
    assert best_gaveur.code in first_row, first_row
    assert pages >= 2


def test_weekly_reports_make_one_site_pdf_per_site(
    unit_fresh_demo: Callable[..., Engine], store: FileStore
) -> None:
    # Weekly reports commit site by site: a throw-away database, not the shared demo.
    engine = unit_fresh_demo()
    with db.session_factory(engine)() as session:
        ctx = ExportContext(session, store, NOW, None)
        result = runs.weekly_reports(ctx, week_start=date(2025, 12, 29))
        _check_weekly(ctx, result)


def _check_weekly(ctx: ExportContext, result: dict[str, Any]) -> None:
    assert result["week_start"] == "2025-12-29" and result["week_end"] == "2026-01-04"
    assert [r["site_code"] for r in result["reports"]] == ["LL", "LS", "MT"]
    for report in result["reports"]:
        row = ctx.session.get(StoredFile, report["file_id"])
        assert row is not None and report["file_size"] == row.size_bytes
        _, text = pdf_text(ctx.store.path_of(row))
        assert f"Rapport de site {report['site_code']}" in text
        assert "du 29/12/2025 au 04/01/2026" in text


def test_unknown_lot_or_site_and_inverted_periods_fail_for_good(ctx: ExportContext) -> None:
    with pytest.raises(NotFound, match="lot 99999"):
        runs.lot_pdf(ctx, lot_id=99999, report_type="summary")
    with pytest.raises(NotFound, match="known codes"):
        runs.site_pdf(ctx, site_code="ZZ", date_debut=date(2025, 1, 1), date_fin=date(2025, 2, 1))
    with pytest.raises(InvalidInput, match="before date_debut"):
        runs.site_pdf(ctx, site_code="LL", date_debut=date(2025, 2, 1), date_fin=date(2025, 1, 1))

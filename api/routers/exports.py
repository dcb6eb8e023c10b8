"""Enqueue routes of the exports family (queue `exports`), seed 001 paths under
/api/tasks/export. Unknown lots and sites are a 404 here, before anything is queued."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import pendulum
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from actors.exports import (
    LOTS_ZIP,
    WEEKLY_REPORTS,
    CertificateRequest,
    FeedbackExport,
    LotPdf,
    LotsBatch,
    LotWorkbook,
    SiteReport,
    TableExport,
    WeeklyReports,
    batch_export_lots_csv,
    export_consumer_feedbacks_csv,
    export_gavage_data_csv,
    export_sqal_data_csv,
    generate_blockchain_certificate,
    generate_lot_excel_report,
    generate_lot_pdf_report,
    generate_site_excel_report,
    generate_site_pdf_report,
    started_workflow,
    weekly_reports_generation,
)
from api.deps import SessionDep, SettingsDep, WriterDep
from api.enqueue import submit
from api.params import LotId, OptionalLotId, SiteCode
from api.schemas import ACCEPTED, Accepted
from domain import ledger
from domain.bounds import RowId
from domain.kpis import week_of
from domain.queries import lot_by_id, site_by_code
from domain.reports.csv_export import checked_lot_ids
from domain.reports.data import period_bounds

router = APIRouter(
    responses=ACCEPTED, prefix="/api/tasks/export", tags=["exports"], dependencies=[WriterDep]
)
#: A site report without dates covers the last 30 days, today included.
DEFAULT_PERIOD_DAYS = 30
CertificateType = Literal["traceability", "quality", "origin"]


def site_report(
    session: SessionDep,
    settings: SettingsDep,
    site_code: SiteCode,
    date_debut: date | None = None,
    date_fin: date | None = None,
) -> SiteReport:
    """The payload of a site report: a known site, and a period (default the last 30 days)."""
    site = site_by_code(session, site_code)
    end = date_fin or pendulum.now(settings.tz).date()
    # (from ordinals: 30 days before the first dates Python knows would not exist)
    start = date_debut or date.fromordinal(max(1, end.toordinal() - DEFAULT_PERIOD_DAYS + 1))
    period_bounds(start, end)
    return SiteReport(site_code=site.code, date_debut=start, date_fin=end)


def table_export(
    session: SessionDep,
    lot_id: OptionalLotId = None,
    date_debut: date | None = None,
    date_fin: date | None = None,
) -> TableExport:
    """The payload of a gavage or SQAL export: a known lot if any, an ordered period if any."""
    if lot_id is not None:
        lot_by_id(session, lot_id)
    if date_debut is not None and date_fin is not None:
        period_bounds(date_debut, date_fin)
    return TableExport(lot_id=lot_id, date_debut=date_debut, date_fin=date_fin)


# The query parameters are parsed and checked once, by these dependencies.
SiteReportDep = Annotated[SiteReport, Depends(site_report)]
TableExportDep = Annotated[TableExport, Depends(table_export)]


@router.post("/pdf/lot", status_code=202)
def enqueue_lot_pdf(
    session: SessionDep,
    lot_id: LotId,
    report_type: Literal["summary", "complete"] = "summary",
) -> Accepted:
    lot_by_id(session, lot_id)
    return submit(
        generate_lot_pdf_report,
        LotPdf(lot_id=lot_id, report_type=report_type),
        message="PDF generation started",
        lot_id=lot_id,
        report_type=report_type,
    )


@router.post("/pdf/site", status_code=202)
def enqueue_site_pdf(payload: SiteReportDep) -> Accepted:
    return submit(
        generate_site_pdf_report,
        payload,
        message="PDF generation started",
        **payload.model_dump(),
    )


@router.post("/xlsx/lot", status_code=202)
def enqueue_lot_xlsx(session: SessionDep, lot_id: LotId) -> Accepted:
    lot_by_id(session, lot_id)
    return submit(
        generate_lot_excel_report,
        LotWorkbook(lot_id=lot_id),
        message="Excel generation started",
        lot_id=lot_id,
    )


@router.post("/xlsx/site", status_code=202)
def enqueue_site_xlsx(payload: SiteReportDep) -> Accepted:
    return submit(
        generate_site_excel_report,
        payload,
        message="Excel generation started",
        **payload.model_dump(),
    )


@router.post("/csv/gavage", status_code=202)
def enqueue_gavage_csv(payload: TableExportDep) -> Accepted:
    return submit(
        export_gavage_data_csv,
        payload,
        message="Gavage CSV export started",
        **payload.model_dump(),
    )


@router.post("/csv/sqal", status_code=202)
def enqueue_sqal_csv(payload: TableExportDep) -> Accepted:
    return submit(
        export_sqal_data_csv,
        payload,
        message="SQAL CSV export started",
        **payload.model_dump(),
    )


@router.post("/csv/feedbacks", status_code=202)
def enqueue_feedbacks_csv(
    date_debut: date | None = None,
    date_fin: date | None = None,
) -> Accepted:
    if date_debut is not None and date_fin is not None:
        period_bounds(date_debut, date_fin)
    payload = FeedbackExport(date_debut=date_debut, date_fin=date_fin)
    return submit(
        export_consumer_feedbacks_csv,
        payload,
        message="Consumer feedbacks CSV export started",
        **payload.model_dump(),
    )


class LotsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lot_ids: list[RowId] = Field(min_length=1, max_length=100_000, examples=[[3471, 3472]])


@router.post("/csv/lots", status_code=202)
def enqueue_lots_csv(request: LotsRequest, session: SessionDep, settings: SettingsDep) -> Accepted:
    """One ZIP of per-lot CSVs; ids de-duplicated, at most EXPORT_MAX_BATCH_LOTS, all known."""
    ids = checked_lot_ids(session, request.lot_ids, limit=settings.export_max_batch_lots)
    return submit(
        batch_export_lots_csv,
        LotsBatch(lot_ids=ids),
        message="Batch lots CSV export started: a workflow of one CSV per lot, then the ZIP",
        echo_task=started_workflow(LOTS_ZIP),
        lots=len(ids),
    )


@router.post("/certificate", status_code=202)
def enqueue_certificate(
    session: SessionDep,
    lot_id: LotId,
    certificate_type: CertificateType = "traceability",
) -> Accepted:
    ledger.check_certifiable(lot_by_id(session, lot_id))
    return submit(
        generate_blockchain_certificate,
        CertificateRequest(lot_id=lot_id, certificate_type=certificate_type),
        message="Certificate generation started",
        lot_id=lot_id,
        certificate_type=certificate_type,
    )


@router.post("/weekly-reports", status_code=202)
def enqueue_weekly_reports(week_start: date | None = None) -> Accepted:
    """The Monday job on demand; any day of a week means that week (default: the last one)."""
    week = week_of(week_start) if week_start else None
    return submit(
        weekly_reports_generation,
        WeeklyReports(week_start=week),
        message="Weekly reports generation started: a workflow of site PDFs, then one e-mail",
        echo_task=started_workflow(WEEKLY_REPORTS),
        week_start=week,
    )

"""Export jobs on queue `exports`: lot and site PDFs, Excel workbooks, CSV exports, batch ZIPs,
certificates and the weekly site reports. Logic lives in domain/reports; these are thin
wrappers. Files go under EXPORT_DIR (domain/platform/files.py); results carry their URL and
sha256."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

import pendulum
from pydantic import Field

from actors.maintenance import request_index_update
from domain.bounds import SITE_CODE_MAX, RowId
from domain.kpis import previous_week, week_of
from domain.platform import audit
from domain.platform.audit import Processing
from domain.platform.db import session_factory
from domain.platform.files import FileStore, store_for
from runtime import (
    Payload,
    RetryPolicy,
    audit_processing,
    chunked_session,
    current_settings,
    current_task_id,
    engine,
    job,
    progress,
    session_scope,
)

if TYPE_CHECKING:
    from domain.reports.runs import ExportContext

#: DESIGN.md: reports retry transient errors 3 times, 60 s -> 120 s -> 240 s.
EXPORT_RETRY = RetryPolicy(max_retries=3, min_backoff_ms=60_000)
MINUTE_MS = 60_000
#: Why reports and certificates naming gaveurs process their data (the audit trail's purpose).
REPORT_PURPOSE = "report"
SITE_CODE = r"^[A-Za-z]{1,8}$"


class _Period(Payload):
    """A period of whole days (domain/reports refuses one that ends before it starts)."""

    date_debut: date | None = None
    date_fin: date | None = None


class LotPdf(Payload):
    lot_id: RowId
    report_type: Literal["summary", "complete"] = "summary"


class LotWorkbook(Payload):
    lot_id: RowId


class SiteReport(_Period):
    site_code: str = Field(pattern=SITE_CODE, max_length=SITE_CODE_MAX)
    date_debut: date
    date_fin: date


class TableExport(_Period):
    lot_id: RowId | None = None


class FeedbackExport(_Period):
    """All consumer feedback of the period (or of all time)."""


class LotsBatch(Payload):
    # The configured limit (EXPORT_MAX_BATCH_LOTS) is checked by the job and the API.
    lot_ids: list[RowId] = Field(min_length=1, max_length=100_000)


class CertificateRequest(Payload):
    lot_id: RowId
    certificate_type: Literal["traceability", "quality", "origin"] = "traceability"


class WeeklyReports(Payload):
    week_start: date | None = None


def _store() -> FileStore:
    return store_for(current_settings())


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _processing() -> Processing:
    """Reports that name gaveurs record whose data they hold (runs.ExportContext.audited)."""
    return audit_processing(purpose=REPORT_PURPOSE)


def _export(make: Callable[[ExportContext], dict[str, Any]]) -> dict[str, Any]:
    """Run one export in a committed session, reporting progress on the job record."""
    from domain.reports.runs import ExportContext

    with session_scope() as session:
        context = ExportContext(
            session, _store(), _now(), current_task_id(), progress, audit=_processing()
        )
        result = make(context)
    request_index_update()
    progress(100, "done")
    return result


def _period(payload: SiteReport) -> dict[str, Any]:
    return {
        "site_code": payload.site_code,
        "date_debut": payload.date_debut,
        "date_fin": payload.date_fin,
    }


def _table_csv(kind: str, payload: TableExport | FeedbackExport) -> dict[str, Any]:
    from domain.reports import runs

    lot_id = payload.lot_id if isinstance(payload, TableExport) else None
    return _export(
        lambda ctx: runs.table_csv(
            ctx, kind, lot_id=lot_id, date_debut=payload.date_debut, date_fin=payload.date_fin
        )
    )


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=LotPdf,
    retry=EXPORT_RETRY,
    time_limit_ms=5 * MINUTE_MS,
    unique="lot-pdf-{lot_id}-{report_type}",
)
def generate_lot_pdf_report(payload: LotPdf) -> dict[str, Any]:
    """Lot PDF: identity, dose and weight curves, mortality, ITM vs site, SQAL, feedback."""
    from domain.reports import runs

    return _export(
        lambda ctx: runs.lot_pdf(ctx, lot_id=payload.lot_id, report_type=payload.report_type)
    )


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=SiteReport,
    retry=EXPORT_RETRY,
    time_limit_ms=10 * MINUTE_MS,
    unique="site-pdf-{site_code}-{date_debut}-{date_fin}",
)
def generate_site_pdf_report(payload: SiteReport) -> dict[str, Any]:
    """Site PDF over a period: KPIs, trends, gaveur ranking, lots table."""
    from domain.reports import runs

    return _export(lambda ctx: runs.site_pdf(ctx, **_period(payload)))


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=LotWorkbook,
    retry=EXPORT_RETRY,
    time_limit_ms=10 * MINUTE_MS,
    unique="lot-xlsx-{lot_id}",
)
def generate_lot_excel_report(payload: LotWorkbook) -> dict[str, Any]:
    """Lot workbook: identity, days (chart), meals, SQAL (chart), ToF map, feedback."""
    from domain.reports import runs

    return _export(lambda ctx: runs.lot_xlsx(ctx, lot_id=payload.lot_id))


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=SiteReport,
    retry=EXPORT_RETRY,
    time_limit_ms=10 * MINUTE_MS,
    unique="site-xlsx-{site_code}-{date_debut}-{date_fin}",
)
def generate_site_excel_report(payload: SiteReport) -> dict[str, Any]:
    """Site workbook: KPIs, lots, trends (chart), gaveurs (chart), SQAL grades (chart)."""
    from domain.reports import runs

    return _export(lambda ctx: runs.site_xlsx(ctx, **_period(payload)))


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=TableExport,
    retry=EXPORT_RETRY,
    time_limit_ms=30 * MINUTE_MS,
    unique="gavage-csv-{lot_id}-{date_debut}-{date_fin}",
)
def export_gavage_data_csv(payload: TableExport) -> dict[str, Any]:
    """Feeding records as CSV, streamed from the database (one lot, or all lots)."""
    return _table_csv("gavage", payload)


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=TableExport,
    retry=EXPORT_RETRY,
    time_limit_ms=30 * MINUTE_MS,
    unique="sqal-csv-{lot_id}-{date_debut}-{date_fin}",
)
def export_sqal_data_csv(payload: TableExport) -> dict[str, Any]:
    """SQAL samples with their 64 ToF zones as CSV, streamed."""
    return _table_csv("sqal", payload)


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=FeedbackExport,
    retry=EXPORT_RETRY,
    time_limit_ms=30 * MINUTE_MS,
    unique="feedbacks-csv-{date_debut}-{date_fin}",
)
def export_consumer_feedbacks_csv(payload: FeedbackExport) -> dict[str, Any]:
    """Consumer feedback as CSV, without the consumers' e-mail addresses."""
    return _table_csv("feedbacks", payload)


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=LotsBatch,
    retry=EXPORT_RETRY,
    time_limit_ms=30 * MINUTE_MS,
)
def batch_export_lots_csv(payload: LotsBatch) -> dict[str, Any]:
    """One ZIP: lots.csv (a row per lot) and each lot's feeding records as its own CSV."""
    from domain.reports import runs

    limit = current_settings().export_max_batch_lots
    return _export(lambda ctx: runs.lots_zip(ctx, lot_ids=payload.lot_ids, limit=limit))


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=CertificateRequest,
    retry=EXPORT_RETRY,
    time_limit_ms=5 * MINUTE_MS,
    unique="certificate-{lot_id}-{certificate_type}",
)
def generate_blockchain_certificate(payload: CertificateRequest) -> dict[str, Any]:
    """Certificate PDF of a finished lot, its sha256 appended to the hash-chain ledger."""
    from domain.reports import certificate

    result = certificate.issue(
        session_factory(engine()),
        _store(),
        lot_id=payload.lot_id,
        certificate_type=payload.certificate_type,
        now=_now(),
        task_id=current_task_id(),
        progress=progress,
    )
    with session_scope() as session:  # under the task's exactly-once key: a retry adds nothing
        audit.record(session, _processing(), audit.gaveurs_of_lots(session, [payload.lot_id]))
    request_index_update()
    progress(100, "done")
    return result


def default_week(tz: str) -> date:
    """The previous full week (Monday) in the schedule's time zone."""
    return previous_week(pendulum.now(tz).date())


@job(
    queue="exports",
    payload=WeeklyReports,
    retry=EXPORT_RETRY,
    time_limit_ms=30 * MINUTE_MS,
    unique="weekly-reports-{week_start}",
)
def weekly_reports_generation(payload: WeeklyReports) -> dict[str, Any]:
    """Monday 06:00: one site PDF per site for the past week (or the week of `week_start`)."""
    week_start = week_of(payload.week_start or default_week(current_settings().tz))
    # Committed site by site, so the reports made before a failure stay downloadable.
    from domain.reports import runs

    with chunked_session() as session:
        ctx = runs.ExportContext(
            session, _store(), _now(), current_task_id(), progress, audit=_processing()
        )
        result = runs.weekly_reports(ctx, week_start=week_start)
    request_index_update()
    progress(100, "done")
    return result

"""Export jobs on queue `exports`: lot and site PDFs, Excel workbooks, CSV exports, batch ZIPs,
certificates and the weekly site reports. Logic lives in domain/reports; these are thin
wrappers. Files go under EXPORT_DIR (domain/platform/files.py); results carry their URL and
sha256."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
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
    Cache,
    Payload,
    RetryPolicy,
    State,
    StepResults,
    audit_processing,
    chord,
    current_settings,
    current_task_id,
    engine,
    group,
    job,
    progress,
    session_scope,
    submit_workflow,
)

if TYPE_CHECKING:
    from domain.reports.runs import ExportContext

#: DESIGN.md: reports retry transient errors 3 times, 60 s -> 120 s -> 240 s.
EXPORT_RETRY = RetryPolicy(max_retries=3, min_backoff_ms=60_000)
MINUTE_MS = 60_000
#: Why reports and certificates naming gaveurs process their data (the audit trail's purpose).
REPORT_PURPOSE = "report"
SITE_CODE = r"^[A-Za-z]{1,8}$"
#: The kinds of workflow the starter jobs submit (their ids derive from the kind and task id).
LOTS_ZIP = "lots-zip"
WEEKLY_REPORTS = "weekly-reports"


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


class WeeklyReportsMail(Payload):
    """The weekly workflow's callback: the site PDFs' outcomes arrive in `results`."""

    week_start: date
    results: StepResults = Field(default_factory=list)


class LotsZip(Payload):
    """The batch workflow's callback: each lot's CSV step outcome arrives in `results`."""

    lot_ids: list[RowId] = Field(min_length=1, max_length=100_000)
    results: StepResults = Field(default_factory=list)


def lot_data_version(payload: LotPdf | LotWorkbook) -> str:
    """The version of what a lot report reads: a new one (new gavage or SQAL data for the lot)
    makes the next request run the report again instead of answering from the cache."""
    from domain.reports.versions import lot_data_version as version_of

    with session_scope() as session:
        return version_of(session, payload.lot_id)


#: Cached lot reports answer while their files are kept, a day at most.
def _report_cache_ttl_ms(settings: Any) -> int:
    return min(86_400_000, settings.export_retention_days * 86_400_000 // 2)


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
    cache=Cache[LotPdf](
        key="{lot_id}-{report_type}", version=lot_data_version, ttl_ms=_report_cache_ttl_ms
    ),
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
    cache=Cache[LotWorkbook](key="{lot_id}", version=lot_data_version, ttl_ms=_report_cache_ttl_ms),
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


def started_workflow(kind: str) -> Callable[[str], dict[str, str]]:
    """What a starter job's 202 adds: the workflow it will submit and where to follow it."""

    def echo(task_id: str) -> dict[str, str]:
        workflow_id = workflow_of(kind, task_id)
        return {"workflow_id": workflow_id, "workflow_url": f"/api/workflows/{workflow_id}"}

    return echo


def workflow_of(kind: str, task_id: str) -> str:
    """The workflow a starter job submits: derived from its task id, so the API can name it in
    its 202 and a redelivered starter finds the workflow its first run made."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{task_id}"))


def _start(flow: Any, *, kind: str, policy: Literal["fail_fast", "continue"]) -> dict[str, Any]:
    """Submit a starter job's workflow and return at once: the steps run on their own, the
    callback's record (`result_task_id`) holds the final result."""
    workflow_id = workflow_of(kind, current_task_id() or uuid.uuid4().hex)
    submitted = submit_workflow(flow, name=kind, policy=policy, workflow_id=workflow_id)
    progress(100, "workflow started")
    return {
        "status": "started",
        "workflow_id": workflow_id,
        "status_url": f"/api/workflows/{workflow_id}",
        "result_task_id": list(submitted.steps.values())[-1],
        "steps": len(submitted.steps),
    }


def lots_zip_flow(lot_ids: list[int]) -> Any:
    """One gavage CSV per lot side by side, then the ZIP of them (the callback is last)."""
    return chord(
        group(
            export_gavage_data_csv.step(TableExport(lot_id=lot_id), name=f"lot-{lot_id}")
            for lot_id in lot_ids
        ),
        zip_lots_csv.step(LotsZip(lot_ids=lot_ids), receives="results", name="zip"),
    )


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=LotsBatch,
    retry=EXPORT_RETRY,
    time_limit_ms=5 * MINUTE_MS,
)
def batch_export_lots_csv(payload: LotsBatch) -> dict[str, Any]:
    """Start the batch workflow (fail fast: a lot's CSV failing means no ZIP) and return."""
    from domain.reports.csv_export import checked_lot_ids

    limit = current_settings().export_max_batch_lots
    with session_scope() as session:
        ids = checked_lot_ids(session, payload.lot_ids, limit=limit)
    return _start(lots_zip_flow(ids), kind=LOTS_ZIP, policy="fail_fast") | {"lots": len(ids)}


@job(
    priority_class="high",
    priority_range=("normal", "high"),
    queue="exports",
    payload=LotsZip,
    retry=EXPORT_RETRY,
    time_limit_ms=30 * MINUTE_MS,
)
def zip_lots_csv(payload: LotsZip) -> dict[str, Any]:
    """One ZIP: lots.csv (a row per lot) and each lot's CSV, copied from its step's file."""
    from domain.reports import runs

    members = {
        r.result["lot_id"]: (r.result["file_id"], r.result["rows"])
        for r in _succeeded(payload.results)
    }
    limit = current_settings().export_max_batch_lots
    return _export(
        lambda ctx: runs.lots_zip(ctx, lot_ids=payload.lot_ids, limit=limit, members=members)
    )


def _succeeded(results: Iterable[Any]) -> list[Any]:
    return [r for r in results if r.state == State.SUCCESS and isinstance(r.result, dict)]


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


def weekly_flow(week_start: date, site_codes: Iterable[str]) -> Any:
    """One site PDF per site side by side, then the one e-mail listing them."""
    week_end = week_start + timedelta(days=6)
    return chord(
        group(
            generate_site_pdf_report.step(
                SiteReport(site_code=code, date_debut=week_start, date_fin=week_end),
                name=f"site-{code}",
            )
            for code in site_codes
        ),
        send_weekly_reports.step(
            WeeklyReportsMail(week_start=week_start), receives="results", name="email"
        ),
    )


@job(
    queue="exports",
    payload=WeeklyReports,
    retry=EXPORT_RETRY,
    time_limit_ms=5 * MINUTE_MS,
    unique="weekly-reports-{week_start}",
)
def weekly_reports_generation(payload: WeeklyReports) -> dict[str, Any]:
    """Monday 06:00: start the weekly workflow for the past week (or the week of `week_start`);
    policy continue, so one site failing still leaves the others' PDFs and the e-mail."""
    from domain.reports import runs

    week_start = week_of(payload.week_start or default_week(current_settings().tz))
    with session_scope() as session:
        codes = runs.site_codes(session)
    started = _start(weekly_flow(week_start, codes), kind=WEEKLY_REPORTS, policy="continue")
    return started | {"week_start": week_start.isoformat()}


@job(queue="exports", payload=WeeklyReportsMail, retry=EXPORT_RETRY, time_limit_ms=2 * MINUTE_MS)
def send_weekly_reports(payload: WeeklyReportsMail) -> dict[str, Any]:
    """The weekly workflow's end: one e-mail with every site PDF made, naming those that failed
    (sent once, whatever the retries: its idempotency key is this step's task id)."""
    from actors.notifications import deliver_email
    from domain.notify import idempotency_key, messages

    reports = [
        {key: r.result[key] for key in ("site_code", "pdf_url", "file_size", "file_id")}
        for r in _succeeded(payload.results)
    ]
    failed = [
        {"step": r.step, "state": r.state, "reason": (r.error or {}).get("message", "")}
        for r in payload.results
        if r.state != State.SUCCESS
    ]
    email = messages.weekly_reports(
        to=current_settings().weekly_reports_email_to,
        week_start=payload.week_start,
        reports=reports,
        failed=failed,
    )
    sent = deliver_email(email, key=idempotency_key("weekly-reports", current_task_id() or ""))
    progress(100, "done")
    return {
        "status": "success" if not failed else "partial",
        "week_start": payload.week_start.isoformat(),
        "week_end": (payload.week_start + timedelta(days=6)).isoformat(),
        "reports": reports,
        "failed": failed,
        "email": sent,
    }

"""The export jobs' work: read, render, store, and return a small JSON-able result.

Each function takes an `ExportContext` (session, file store, clock, task id, progress callback)
so the actors stay thin and the functions are tested without a broker. Progress follows the same
steps everywhere: 10 data loaded, 60 rendered, 90 file written (the actor reports 100).
Results follow seed 001: `pdf_url` for PDFs, `file_url` for the other kinds, `file_size`,
`generated_at`, plus `file_id` and `sha256` so a client can check what it downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.errors import InvalidInput
from domain.models import Site, StoredFile
from domain.platform import audit
from domain.platform.audit import Processing, Subject
from domain.platform.files import FileStore, get_file, url_of
from domain.progress import Progress, quiet
from domain.queries import lot_by_id
from domain.reports import csv_export, data, pdf, xlsx


@dataclass(frozen=True)
class ExportContext:
    session: Session
    store: FileStore
    now: datetime
    task_id: str | None
    progress: Progress = quiet
    #: The processing this export is, for the audit trail of the people it names.
    audit: Processing | None = None

    def audited(self, subjects: Sequence[Subject]) -> None:
        """Record whose data the file holds, in the transaction that stores the file."""
        if self.audit is not None:
            audit.record(self.session, self.audit, subjects)

    def save(
        self, folder: str, filename: str, kind: str, write: Callable[[IO[bytes]], Any]
    ) -> StoredFile:
        return self.store.save(
            self.session, folder, filename, write, kind=kind, now=self.now, task_id=self.task_id
        )

    def result(
        self, row: StoredFile, *, url_key: str = "file_url", **fields: Any
    ) -> dict[str, Any]:
        self.progress(90, "file written")
        return {
            "status": "success",
            **fields,
            url_key: url_of(row),
            "file_id": row.id,
            "file_size": row.size_bytes,
            "sha256": row.sha256,
            "generated_at": self.now.isoformat(timespec="seconds"),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        }


def _stamp(ctx: ExportContext) -> str:
    return f"{ctx.now:%Y%m%d}"


def _span(start: date | None, end: date | None) -> str:
    """The period part of a file name: `_20251101-20251130`, `_20251101-`, or nothing."""
    if start is None and end is None:
        return ""
    since = f"{start:%Y%m%d}" if start else ""
    until = f"{end:%Y%m%d}" if end else ""
    return f"_{since}-{until}"


def lot_pdf(ctx: ExportContext, *, lot_id: int, report_type: str) -> dict[str, Any]:
    report = data.load_lot(ctx.session, lot_id)
    ctx.audited([audit.gaveur(report.gaveur.id)])
    ctx.progress(10, "data loaded")
    story = pdf.lot_story(report, complete=report_type == "complete")
    ctx.progress(60, "charts drawn")
    title = f"Rapport de lot {report.lot.code}"
    row = ctx.save(
        "reports",
        f"lot_{lot_id}_{report_type}_{_stamp(ctx)}.pdf",
        "lot_pdf",
        lambda out: pdf.build(out, story, title=title, generated_at=ctx.now),
    )
    return ctx.result(
        row, url_key="pdf_url", lot_id=lot_id, lot_code=report.lot.code, report_type=report_type
    )


def site_pdf(
    ctx: ExportContext, *, site_code: str, date_debut: date, date_fin: date
) -> dict[str, Any]:
    report = data.load_site(ctx.session, site_code, date_debut, date_fin)
    ctx.audited(audit.gaveurs_by_code(ctx.session, (lot.gaveur_code for lot in report.lots)))
    ctx.progress(10, "data loaded")
    story = pdf.site_story(report)
    ctx.progress(60, "charts drawn")
    code = report.site.code
    row = ctx.save(
        "reports",
        f"site_{code}_{date_debut:%Y%m%d}_{date_fin:%Y%m%d}_{_stamp(ctx)}.pdf",
        "site_pdf",
        lambda out: pdf.build(out, story, title=f"Rapport de site {code}", generated_at=ctx.now),
    )
    return ctx.result(
        row,
        url_key="pdf_url",
        site_code=code,
        date_debut=date_debut.isoformat(),
        date_fin=date_fin.isoformat(),
        lots=len(report.lots),
    )


def lot_xlsx(ctx: ExportContext, *, lot_id: int) -> dict[str, Any]:
    report = data.load_lot(ctx.session, lot_id)
    ctx.audited([audit.gaveur(report.gaveur.id)])
    ctx.progress(10, "data loaded")
    counts: dict[str, int] = {}
    row = ctx.save(
        "reports",
        f"lot_{lot_id}_{_stamp(ctx)}.xlsx",
        "lot_xlsx",
        lambda out: counts.update(xlsx.lot_workbook(ctx.session, report, out)),
    )
    return ctx.result(row, lot_id=lot_id, lot_code=report.lot.code, rows=counts)


def site_xlsx(
    ctx: ExportContext, *, site_code: str, date_debut: date, date_fin: date
) -> dict[str, Any]:
    report = data.load_site(ctx.session, site_code, date_debut, date_fin)
    ctx.audited(audit.gaveurs_by_code(ctx.session, (lot.gaveur_code for lot in report.lots)))
    ctx.progress(10, "data loaded")
    counts: dict[str, int] = {}
    code = report.site.code
    row = ctx.save(
        "reports",
        f"site_{code}_{date_debut:%Y%m%d}_{date_fin:%Y%m%d}_{_stamp(ctx)}.xlsx",
        "site_xlsx",
        lambda out: counts.update(xlsx.site_workbook(report, out)),
    )
    return ctx.result(
        row,
        site_code=code,
        date_debut=date_debut.isoformat(),
        date_fin=date_fin.isoformat(),
        rows=counts,
    )


def table_csv(
    ctx: ExportContext,
    kind: str,
    *,
    lot_id: int | None = None,
    date_debut: date | None = None,
    date_fin: date | None = None,
) -> dict[str, Any]:
    """One of the CSV exports (`gavage`, `sqal`, `feedbacks`), optionally one lot's rows."""
    if date_debut and date_fin:
        data.period_bounds(date_debut, date_fin)  # refuses an inverted period
    if lot_id is not None:
        lot_by_id(ctx.session, lot_id)
    builders = {
        "gavage": csv_export.gavage,
        "sqal": csv_export.sqal,
        "feedbacks": csv_export.feedbacks,
    }
    export = builders[kind](
        lot_ids=[lot_id] if lot_id is not None else None, date_debut=date_debut, date_fin=date_fin
    )
    ctx.progress(5, "counting rows")
    written = [0]

    def write(out: IO[bytes]) -> None:
        written[0] = csv_export.write_csv(ctx.session, export, out, progress=ctx.progress)

    scope = f"lot{lot_id}" if lot_id is not None else "all"
    row = ctx.save(
        "csv",
        f"{kind}_{scope}{_span(date_debut, date_fin)}_{_stamp(ctx)}.csv",
        f"{kind}_csv",
        write,
    )
    return ctx.result(
        row,
        export=kind,
        lot_id=lot_id,
        date_debut=date_debut.isoformat() if date_debut else None,
        date_fin=date_fin.isoformat() if date_fin else None,
        rows=written[0],
    )


def lots_zip(
    ctx: ExportContext,
    *,
    lot_ids: Sequence[int],
    limit: int,
    members: Mapping[int, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """The batch ZIP. `members` (lot id -> (file id, rows) of its CSV, made by a batch
    workflow's per-lot steps) are copied in; without them each lot's rows are queried."""
    ids = csv_export.checked_lot_ids(ctx.session, lot_ids, limit=limit)
    ctx.progress(10, f"{len(ids)} lots checked")
    sources = None
    if members is not None:
        missing = [lot_id for lot_id in ids if lot_id not in members]
        if missing:
            raise InvalidInput(f"no CSV was made for lots {', '.join(map(str, missing[:20]))}")
        sources = {
            lot_id: (ctx.store.path_of(get_file(ctx.session, file_id)), rows)
            for lot_id, (file_id, rows) in members.items()
        }
    outcome: dict[str, Any] = {}
    row = ctx.save(
        "csv",
        f"lots_batch_{len(ids)}_{_stamp(ctx)}.zip",
        "lots_zip",
        lambda out: outcome.update(
            csv_export.write_lots_zip(ctx.session, ids, out, progress=ctx.progress, sources=sources)
        ),
    )
    return ctx.result(
        row, lot_ids=ids, lots=outcome["lots"], rows=outcome["rows"], members=outcome["members"]
    )


def site_codes(session: Session) -> list[str]:
    """Every site's code, in order: the weekly reports make one PDF each."""
    return list(session.scalars(select(Site.code).order_by(Site.code)))


def weekly_reports(ctx: ExportContext, *, week_start: date) -> dict[str, Any]:
    """One site PDF per site for the week starting `week_start`; committed site by site."""
    week_end = week_start + timedelta(days=6)
    codes = site_codes(ctx.session)
    reports = []
    for done, code in enumerate(codes):
        quiet_ctx = ExportContext(ctx.session, ctx.store, ctx.now, ctx.task_id, audit=ctx.audit)
        made = site_pdf(quiet_ctx, site_code=code, date_debut=week_start, date_fin=week_end)
        ctx.session.commit()
        reports.append({key: made[key] for key in ("site_code", "pdf_url", "file_size", "file_id")})
        ctx.progress(100 * (done + 1) / max(len(codes), 1) - 1, f"{done + 1}/{len(codes)} sites")
    return {
        "status": "success",
        "week_start": week_start.isoformat(),
        "week_end": week_end.isoformat(),
        "reports": reports,
        "generated_at": ctx.now.isoformat(timespec="seconds"),
    }

"""Downloads of export files, their metadata, and the certificate ledger.

Files need the bearer token like any write (API or admin token): reports hold personal data
(gaveur names and phone numbers). A certificate's ledger entry and its verification show only
hashes and the lot id, so they are open like the other reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.deps import ExportsReaderDep, SessionDep, SettingsDep
from api.params import FileNamePath, IdPath
from domain import ledger
from domain.models import StoredFile
from domain.platform import files

router = APIRouter(tags=["files"])


@router.get("/exports/{folder}/{filename}", dependencies=[ExportsReaderDep])
def download(
    folder: FileNamePath, filename: FileNamePath, session: SessionDep, settings: SettingsDep
) -> FileResponse:
    """The file a job result's `pdf_url`/`file_url` names: 404 unknown, 410 once expired."""
    store = files.store_for(settings)
    row = store.find(session, folder, filename, now=datetime.now(UTC))
    return FileResponse(
        store.path_of(row),
        media_type=row.content_type,
        filename=row.filename,
        headers={
            "ETag": f'"{row.sha256}"',
            "X-Content-SHA256": row.sha256,
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/api/files/{file_id}", dependencies=[ExportsReaderDep])
def file_metadata(file_id: IdPath, session: SessionDep) -> dict[str, Any]:
    return files.describe(files.get_file(session, file_id))


@router.get("/api/certificates/{certificate_id}")
def get_certificate(certificate_id: IdPath, session: SessionDep) -> dict[str, Any]:
    link = ledger.get_certificate(session, certificate_id)
    stored = session.get(StoredFile, link.file_id) if link.file_id else None
    return {**ledger.describe(link), "pdf_url": files.url_of(stored) if stored else None}


@router.get("/api/certificates/{certificate_id}/verify")
def verify_certificate(
    certificate_id: IdPath, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Recomputes the file's sha256 and the chain: `{"valid": false, "reason": ...}` if not."""
    return ledger.verify(session, certificate_id, export_dir=settings.export_dir)

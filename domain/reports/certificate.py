"""Traceability certificates: a PDF about a finished lot, whose sha256 becomes a ledger link.

The PDF is written first (its hash must be known before the link), then the file row and the
link are committed together by `ledger.append`, which retries on a contended chain tip.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from reportlab.platypus import Flowable, Paragraph, Spacer
from sqlalchemy.orm import Session, sessionmaker

from domain import ledger
from domain.errors import InvalidInput
from domain.models import Certificate
from domain.platform.files import FileStore
from domain.progress import Progress, quiet
from domain.reports import data
from domain.reports.fmt import day_fr, num
from domain.reports.pdf import BODY, H2, SMALL, TITLE, build, facts, table

#: Certificate types and their titles.
TYPES = {
    "traceability": "Certificat de traçabilité",
    "quality": "Certificat de qualité SQAL",
    "origin": "Certificat d'origine – Sud-Ouest",
}


def certificate_story(
    report: data.LotReport, *, certificate_type: str, reference: str, issued_at: datetime
) -> list[Flowable]:
    lot, site, gaveur = report.lot, report.site, report.gaveur
    samples = sum(report.grades.values())
    story: list[Flowable] = [
        Paragraph(TYPES[certificate_type], TITLE),
        Paragraph(f"Lot {lot.code} – référence {reference}", BODY),
        Paragraph(f"Délivré le {issued_at:%d/%m/%Y à %H:%M} UTC", BODY),
        Spacer(1, 8),
        facts(
            [
                ("Lot", f"{lot.code} (n° {lot.id})"),
                ("Site", f"{site.code} – {site.name}, {site.region}"),
                ("Gaveur", f"{gaveur.first_name} {gaveur.last_name} ({gaveur.code})"),
                ("Génétique", lot.genetics),
                ("Début du gavage", day_fr(lot.start_date)),
                ("Durée", f"{lot.duration_days} jours"),
                ("Abattage", day_fr(lot.slaughter_date)),
                ("Canards", f"{lot.ducks_start} / {lot.ducks_end or '–'}"),
                ("Repas enregistrés", str(2 * len(report.days))),
                ("Maïs total", f"{num(lot.total_maize_kg_per_duck, 2)} kg/canard"),
                ("ITM", num(lot.itm, 2)),
                ("Mortalité", f"{num(lot.mortality_pct, 2)} %"),
            ]
        ),
        Paragraph("Contrôle qualité SQAL", H2),
        table(
            ["Foies mesurés", *report.grades],
            [[samples, *report.grades.values()]],
        ),
        Paragraph("Intégrité", H2),
        Paragraph(
            "L'empreinte SHA-256 de ce document est inscrite au registre des certificats de la "
            "coopérative et chaînée aux certificats précédents : toute modification du document, "
            "même d'un octet, est détectée par la vérification du registre.",
            BODY,
        ),
        Spacer(1, 6),
        Paragraph(f"Référence du certificat : {reference}", SMALL),
    ]
    return story


def issue(
    factory: sessionmaker[Session],
    store: FileStore,
    *,
    lot_id: int,
    certificate_type: str,
    now: datetime,
    task_id: str | None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Write the certificate PDF, then append it to the ledger; the job's result."""
    if certificate_type not in TYPES:
        raise InvalidInput(f"certificate_type must be one of {', '.join(TYPES)}")
    reference = uuid.uuid4().hex
    with factory() as session:
        lot_report = data.load_lot(session, lot_id)
        ledger.check_certifiable(lot_report.lot)
        progress(10, "data loaded")
        story = certificate_story(
            lot_report, certificate_type=certificate_type, reference=reference, issued_at=now
        )
        placed = store.place(
            session,
            "certificates",
            f"certificate_{lot_id}_{certificate_type}_{now:%Y%m%d}.pdf",
            lambda out: build(out, story, title=TYPES[certificate_type], generated_at=now),
        )
    progress(70, "certificate written")

    def make_link(session: Session) -> Certificate:
        # Certificates do not expire: verification reads the file.
        row = store.record(
            session, placed, kind="certificate", now=now, task_id=task_id, expires=False
        )
        return Certificate(
            lot_id=lot_id, certificate_type=certificate_type, file_id=row.id, created_at=now
        )

    try:
        link = ledger.append(factory, content_hash=placed.sha256, make_link=make_link)
    except BaseException:
        placed.path.unlink(missing_ok=True)
        raise
    progress(90, "appended to the ledger")
    return {
        "status": "success",
        "lot_id": lot_id,
        "lot_code": lot_report.lot.code,
        "certificate_type": certificate_type,
        "certificate_id": link.id,
        "reference": reference,
        "pdf_url": f"/exports/{placed.relative}",
        "file_id": link.file_id,
        "file_size": placed.size_bytes,
        "content_hash": link.content_hash,
        "prev_hash": link.prev_hash,
        "chain_hash": link.chain_hash,
        "verify_url": f"/api/certificates/{link.id}/verify",
        "generated_at": now.isoformat(timespec="seconds"),
    }

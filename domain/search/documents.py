"""Source rows to search documents: what each kind says, its site and its date.

Every loader takes a condition on its source ids (a list, or a rebuild's range) and returns the
documents of the rows that still exist: an id with no document is a deleted row, and the
indexer removes it from the index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, select

from domain.models import (
    Certificate,
    ConsumerFeedback,
    Gaveur,
    Lot,
    PlantedAnomaly,
    Site,
    StoredFile,
)

#: French words for the lot statuses, so "terminé" finds finished lots.
STATUS_WORDS = {
    "planned": "planifié",
    "feeding": "en gavage",
    "finished": "terminé",
    "slaughtered": "abattu",
}
ANOMALY_WORDS = {
    "mortality_spike": "pic de mortalité",
    "dose_entry_error": "erreur de saisie de dose",
    "weight_drop": "chute de poids",
    "temperature_sensor_fault": "panne du capteur de température",
}


@dataclass(frozen=True)
class Document:
    kind: str
    ref_id: int
    site_code: str | None
    doc_date: date | None
    title: str
    body: str


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _lots(connection: Connection, rows_wanted: ColumnElement[bool]) -> list[Document]:
    rows = connection.execute(
        select(Lot, Site.code.label("site"), Site.name, Gaveur.first_name, Gaveur.last_name)
        .join(Site, Site.id == Lot.site_id)
        .join(Gaveur, Gaveur.id == Lot.gaveur_id)
        .where(rows_wanted)
    ).all()
    documents = []
    for row in rows:
        status = STATUS_WORDS.get(row.status, row.status)
        body = (
            f"Lot {row.code} ({row.id}), site {row.name} ({row.site}), gaveur {row.first_name} "
            f"{row.last_name}, statut {status} ({row.status}), génétique {row.genetics}, "
            f"début {row.start_date:%d/%m/%Y}. {row.notes or ''}"
        )
        documents.append(
            Document("lot", row.id, row.site, row.start_date, f"Lot {row.code}", body.strip())
        )
    return documents


def _feedback(connection: Connection, rows_wanted: ColumnElement[bool]) -> list[Document]:
    rows = connection.execute(
        select(ConsumerFeedback, Lot.code.label("lot_code"), Site.code.label("site"))
        .join(Lot, Lot.id == ConsumerFeedback.lot_id)
        .join(Site, Site.id == Lot.site_id)
        .where(rows_wanted)
    ).all()
    return [
        Document(
            "feedback",
            row.id,
            row.site,
            _day(row.created_at),
            f"Avis consommateur {row.rating}/5, lot {row.lot_code}",
            row.comment,
        )
        for row in rows
    ]


def _anomalies(connection: Connection, rows_wanted: ColumnElement[bool]) -> list[Document]:
    rows = connection.execute(
        select(PlantedAnomaly, Lot.code.label("lot_code"), Lot.start_date, Site.code.label("site"))
        .join(Lot, Lot.id == PlantedAnomaly.lot_id)
        .join(Site, Site.id == Lot.site_id)
        .where(rows_wanted)
    ).all()
    return [
        Document(
            "anomaly",
            row.id,
            row.site,
            row.start_date + timedelta(days=(row.day or 1) - 1),
            f"Anomalie {ANOMALY_WORDS.get(row.kind, row.kind)}, lot {row.lot_code}",
            row.detail,
        )
        for row in rows
    ]


def _certificates(connection: Connection, rows_wanted: ColumnElement[bool]) -> list[Document]:
    rows = connection.execute(
        select(Certificate, Lot.code.label("lot_code"), Site.code.label("site"))
        .join(Lot, Lot.id == Certificate.lot_id)
        .join(Site, Site.id == Lot.site_id)
        .where(rows_wanted)
    ).all()
    return [
        Document(
            "certificate",
            row.id,
            row.site,
            _day(row.created_at),
            f"Certificat {row.certificate_type}, lot {row.lot_code}",
            f"Certificat de {row.certificate_type} du lot {row.lot_code}, "
            f"empreinte {row.chain_hash}",
        )
        for row in rows
    ]


def _files(connection: Connection, rows_wanted: ColumnElement[bool]) -> list[Document]:
    rows = connection.execute(select(StoredFile).where(rows_wanted)).all()
    return [
        Document(
            "file",
            row.id,
            None,
            _day(row.created_at),
            row.filename,
            # "lot_3472_complete" reads as words: lot 3472 complete.
            f"{row.kind} {row.filename.replace('_', ' ')}",
        )
        for row in rows
    ]


LOADERS: dict[str, Callable[[Connection, ColumnElement[bool]], list[Document]]] = {
    "lot": _lots,
    "feedback": _feedback,
    "anomaly": _anomalies,
    "certificate": _certificates,
    "file": _files,
}
SOURCE_IDS = {
    "lot": Lot.id,
    "feedback": ConsumerFeedback.id,
    "anomaly": PlantedAnomaly.id,
    "certificate": Certificate.id,
    "file": StoredFile.id,
}


def load(connection: Connection, kind: str, ids: Iterable[int]) -> list[Document]:
    """The documents of the `kind` rows among `ids` that exist (deleted ones are absent)."""
    wanted = sorted(set(ids))
    return _by_source_id(LOADERS[kind](connection, SOURCE_IDS[kind].in_(wanted))) if wanted else []


def load_span(connection: Connection, kind: str, *, after: int, upto: int) -> list[Document]:
    """The documents of the `kind` rows with `after < id <= upto` (a rebuild's keyset page: a
    range reads faster than a list of ids)."""
    column = SOURCE_IDS[kind]
    return _by_source_id(LOADERS[kind](connection, (column > after) & (column <= upto)))


def _by_source_id(documents: list[Document]) -> list[Document]:
    # Written in source order, a newer row gets a newer document id: searches rank the newest.
    return sorted(documents, key=lambda document: document.ref_id)


def next_ids(connection: Connection, kind: str, *, after: int, size: int) -> list[int]:
    """Up to `size` source ids of `kind` above `after`, ascending (keyset paging)."""
    column = SOURCE_IDS[kind]
    query = select(column).where(column > after).order_by(column).limit(size)
    return list(connection.execute(query).scalars())

"""Certificates and their ledger: the PDF parses, links chain, a changed byte is detected, and
concurrent appends never fork the chain."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from domain import ledger
from domain.errors import InvalidInput
from domain.models import Certificate, Lot, LotStatus
from domain.platform import db
from domain.platform.files import FileStore
from domain.reports import certificate
from tests.support.exports import pdf_text
from tests.unit.reports.conftest import NOW


@pytest.fixture()
def factory(unit_fresh_demo: Callable[..., Engine]) -> sessionmaker[Session]:
    """Sessions on a throw-away demo database: certificates are committed."""
    return db.session_factory(unit_fresh_demo())


def _lot(factory: sessionmaker[Session], status: LotStatus) -> Lot:
    with factory() as session:
        lot = session.scalar(select(Lot).where(Lot.status == status.value).order_by(Lot.id))
        assert lot is not None
        return lot


def _issue(
    factory: sessionmaker[Session], store: FileStore, lot_id: int, kind: str = "traceability"
) -> dict[str, Any]:
    return certificate.issue(
        factory, store, lot_id=lot_id, certificate_type=kind, now=NOW, task_id=None
    )


def _verify(
    factory: sessionmaker[Session], store: FileStore, certificate_id: int
) -> dict[str, Any]:
    with factory() as session:
        return ledger.verify(session, certificate_id, export_dir=store.root)


def test_certificates_chain_from_the_genesis_and_verify(
    factory: sessionmaker[Session], store: FileStore
) -> None:
    lot = _lot(factory, LotStatus.SLAUGHTERED)

    first = _issue(factory, store, lot.id)
    second = _issue(factory, store, lot.id, "quality")

    assert first["prev_hash"] == ledger.GENESIS
    assert second["prev_hash"] == first["chain_hash"]
    assert second["chain_hash"] == ledger.link_hash(first["chain_hash"], second["content_hash"])
    path = store.root / first["pdf_url"].removeprefix("/exports/")
    pages, text = pdf_text(path)
    assert pages == 1 and "Certificat de traçabilité" in text and lot.code in text
    assert first["reference"] in text
    verdict = _verify(factory, store, second["certificate_id"])
    assert verdict["valid"] is True and verdict["reason"] is None
    assert verdict["links_checked"] == 2 and verdict["file_sha256"] == second["content_hash"]


def test_one_changed_byte_makes_the_certificate_invalid(
    factory: sessionmaker[Session], store: FileStore
) -> None:
    issued = _issue(factory, store, _lot(factory, LotStatus.SLAUGHTERED).id)
    path = store.root / issued["pdf_url"].removeprefix("/exports/")
    original = path.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    path.write_bytes(bytes(tampered))

    verdict = _verify(factory, store, issued["certificate_id"])

    assert verdict["valid"] is False and "the file was changed" in verdict["reason"]
    path.write_bytes(original)
    assert _verify(factory, store, issued["certificate_id"])["valid"] is True


def test_an_edited_ledger_row_breaks_the_chain(
    factory: sessionmaker[Session], store: FileStore
) -> None:
    lot_id = _lot(factory, LotStatus.SLAUGHTERED).id
    first, second = _issue(factory, store, lot_id), _issue(factory, store, lot_id, "origin")
    # Someone rewrites the first link's hashes to match another file...
    forged = "f" * 64
    with factory() as session, session.begin():
        session.execute(
            update(Certificate)
            .where(Certificate.id == first["certificate_id"])
            .values(content_hash=forged, chain_hash=ledger.link_hash(ledger.GENESIS, forged))
        )
    # ...then the second link no longer follows from anything in the ledger.
    verdict = _verify(factory, store, second["certificate_id"])
    assert verdict["valid"] is False and "no earlier link" in verdict["reason"]


def test_only_finished_lots_are_certified(factory: sessionmaker[Session], store: FileStore) -> None:
    lot = _lot(factory, LotStatus.FEEDING)
    with pytest.raises(InvalidInput, match="only finished or slaughtered"):
        _issue(factory, store, lot.id)
    assert not (store.root / "certificates").exists()


def test_concurrent_appends_never_fork_the_chain(
    factory: sessionmaker[Session], store: FileStore, tmp_path: Path
) -> None:
    # Given eight threads each appending four links at once, on their own connections
    lot_id = _lot(factory, LotStatus.SLAUGHTERED).id
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def appender(worker: int) -> None:
        try:
            start.wait()
            for n in range(4):
                content = ledger.link_hash(str(worker), str(n))  # any distinct 64-hex value
                ledger.append(
                    factory,
                    content_hash=content,
                    make_link=lambda s: Certificate(lot_id=lot_id, certificate_type="traceability"),
                )
        except BaseException as error:  # reported below, a thread cannot raise into the test
            errors.append(error)

    threads = [threading.Thread(target=appender, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then all 32 links form one chain: each extends the one before it, none is shared
    assert errors == []
    with factory() as session:
        links = session.scalars(select(Certificate).order_by(Certificate.id)).all()
    assert len(links) == 32
    previous = ledger.GENESIS
    for link in links:
        assert link.prev_hash == previous
        assert link.chain_hash == ledger.link_hash(link.prev_hash, link.content_hash)
        previous = link.chain_hash

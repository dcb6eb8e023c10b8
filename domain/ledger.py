"""The certificate ledger: a tamper-evident hash chain kept in `certificates`.

Each link holds the sha256 of its certificate PDF (`content_hash`), the previous link's
`chain_hash` (`prev_hash`; the first link's is GENESIS) and
`chain_hash = sha256(prev_hash + content_hash)` over the two hex strings. Changing one byte of a
certificate file changes its sha256; changing a row breaks its own chain hash or its successor's
`prev_hash`. Verification recomputes all of that from the bytes on disk.

Appends never fork the chain: `prev_hash` is unique, so of two appends that read the same tip
one commits and the other fails with an IntegrityError and retries on the new tip.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from domain.errors import InvalidInput, NotFound, TransientError
from domain.models import Certificate, Lot, LotStatus, StoredFile
from domain.platform.files import inside, sha256_of

GENESIS = "0" * 64
MAX_ATTEMPTS = 50
#: A certificate describes a whole feeding: only lots whose feeding is over are certified.
CERTIFIABLE = (LotStatus.FINISHED.value, LotStatus.SLAUGHTERED.value)


class LedgerBusy(TransientError):
    """Other appends kept winning the race for the tip of the chain."""


def check_certifiable(lot: Lot) -> None:
    if lot.status not in CERTIFIABLE:
        raise InvalidInput(
            f"lot {lot.id} is {lot.status}: only finished or slaughtered lots can be certified"
        )


def link_hash(prev_hash: str, content_hash: str) -> str:
    return hashlib.sha256((prev_hash + content_hash).encode("ascii")).hexdigest()


def tip(session: Session) -> str:
    """The chain hash of the last link (GENESIS for an empty ledger).

    Ids grow along the chain: a link is inserted only after the link it extends was committed.
    """
    last = session.scalar(select(Certificate.chain_hash).order_by(Certificate.id.desc()).limit(1))
    return last or GENESIS


def append(
    factory: sessionmaker[Session],
    *,
    content_hash: str,
    make_link: Callable[[Session], Certificate],
) -> Certificate:
    """Append a link for `content_hash`, in its own transaction, retried while others win.

    `make_link(session)` builds the link's other fields (lot, type, file row) inside the same
    transaction, so a link and its file row are committed together or not at all.
    """
    for attempt in range(MAX_ATTEMPTS):
        with factory() as session:
            try:
                with session.begin():
                    link = make_link(session)
                    link.content_hash = content_hash
                    link.prev_hash = tip(session)
                    link.chain_hash = link_hash(link.prev_hash, content_hash)
                    session.add(link)
                return link
            except IntegrityError as error:
                if "prev_hash" not in str(error.orig):
                    raise
        # Back off a little, more each time, so a crowd of appends spreads out.
        time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
    raise LedgerBusy(f"could not append to the certificate ledger in {MAX_ATTEMPTS} attempts")


def get_certificate(session: Session, certificate_id: int) -> Certificate:
    link = session.get(Certificate, certificate_id)
    if link is None:
        raise NotFound(f"certificate {certificate_id} does not exist")
    return link


def verify(session: Session, certificate_id: int, *, export_dir: Path) -> dict[str, Any]:
    """Recompute the certificate file's sha256 from disk, its link, and the chain back to
    GENESIS. `valid` is false with the first `reason` found."""
    link = get_certificate(session, certificate_id)
    verdict: dict[str, Any] = {
        "certificate_id": link.id,
        "lot_id": link.lot_id,
        "certificate_type": link.certificate_type,
        "content_hash": link.content_hash,
        "chain_hash": link.chain_hash,
        "file_sha256": None,
        "links_checked": 0,
    }
    reason = _check_file(session, link, export_dir, verdict)
    if reason is None:
        reason = _check_chain(session, link, verdict)
    return {"valid": reason is None, "reason": reason, **verdict}


def _check_file(
    session: Session, link: Certificate, export_dir: Path, verdict: dict[str, Any]
) -> str | None:
    row = session.get(StoredFile, link.file_id) if link.file_id is not None else None
    if row is None:
        return "the certificate file is no longer stored"
    path = inside(export_dir, row.path)
    if not path.is_file():
        return f"the certificate file {row.path} is missing on disk"
    verdict["file_sha256"] = actual = sha256_of(path)
    if actual != link.content_hash:
        return (
            f"the file's sha256 {actual} differs from the ledger's content hash "
            f"{link.content_hash}: the file was changed"
        )
    if row.sha256 != link.content_hash:
        return "the file record's sha256 differs from the ledger's content hash"
    return None


def _check_chain(session: Session, link: Certificate, verdict: dict[str, Any]) -> str | None:
    # Only hashes are loaded (four short strings a link), once, then walked in memory.
    rows = session.execute(
        select(Certificate.id, Certificate.prev_hash, Certificate.content_hash,
               Certificate.chain_hash).where(Certificate.id <= link.id)
    ).all()  # fmt: skip
    by_chain = {row.chain_hash: row for row in rows}
    current = by_chain.get(link.chain_hash)
    checked = 0
    while current is not None and checked < len(rows):
        checked += 1
        verdict["links_checked"] = checked
        if link_hash(current.prev_hash, current.content_hash) != current.chain_hash:
            return f"link {current.id}: chain_hash is not sha256(prev_hash + content_hash)"
        if current.prev_hash == GENESIS:
            return None
        previous = by_chain.get(current.prev_hash)
        if previous is None:
            return f"link {current.id}: no earlier link has chain_hash {current.prev_hash}"
        current = previous
    return f"link {link.id}: the chain back from it does not reach the genesis"


def describe(link: Certificate) -> dict[str, Any]:
    return {
        "id": link.id,
        "lot_id": link.lot_id,
        "certificate_type": link.certificate_type,
        "file_id": link.file_id,
        "content_hash": link.content_hash,
        "prev_hash": link.prev_hash,
        "chain_hash": link.chain_hash,
        "created_at": link.created_at.isoformat(),
        "verify_url": f"/api/certificates/{link.id}/verify",
    }

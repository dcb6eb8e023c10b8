"""Read helpers for the API: sites and lots as plain dicts, so clients can find ids.

Values keep their Python types (date, datetime, float); the API's response models serialise
them. Unknown ids and codes raise NotFound, bad paging InvalidInput (domain/errors.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from domain.errors import InvalidInput, NotFound
from domain.models import (
    ConsumerFeedback,
    FeedingRecord,
    Gaveur,
    Lot,
    LotStatus,
    Site,
    SqalSample,
)

MAX_PAGE_SIZE = 500

LOT_FIELDS = (
    "id", "code", "site_id", "gaveur_id", "start_date", "duration_days", "ducks_start",
    "ducks_end", "initial_weight_g", "genetics", "status", "ideal_slaughter_date",
    "slaughter_date", "total_maize_kg_per_duck", "final_weight_g", "mean_liver_weight_g", "itm",
    "mortality_pct", "mean_temperature_c",
)  # fmt: skip


def _site_dict(site: Site, lots: int) -> dict[str, Any]:
    return {
        "id": site.id,
        "code": site.code,
        "name": site.name,
        "region": site.region,
        "lots_count": lots,
    }


def _lots_per_site() -> Select[tuple[int, int]]:
    return select(Lot.site_id, func.count(Lot.id)).group_by(Lot.site_id)


def list_sites(session: Session) -> list[dict[str, Any]]:
    """Every site, by code: id, code, name, region and lots_count."""
    counts = dict(session.execute(_lots_per_site()).tuples().all())
    sites = session.scalars(select(Site).order_by(Site.code))
    return [_site_dict(site, counts.get(site.id, 0)) for site in sites]


def site_by_code(session: Session, code: str) -> Site:
    """The site with this code (case-insensitive), or NotFound naming the known codes."""
    site = session.scalar(select(Site).where(Site.code == code.upper()))
    if site is None:
        raise NotFound(f"site {code!r} does not exist (known codes: {_known_codes(session)})")
    return site


def lot_by_id(session: Session, lot_id: int) -> Lot:
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound(f"lot {lot_id} does not exist")
    return lot


def get_site(session: Session, code: str) -> dict[str, Any]:
    """One site by code (case-insensitive), with its manager's contact and counts."""
    site = site_by_code(session, code)
    lots = session.scalar(select(func.count(Lot.id)).where(Lot.site_id == site.id)) or 0
    gaveurs = session.scalar(select(func.count(Gaveur.id)).where(Gaveur.site_id == site.id)) or 0
    per_status = (
        select(Lot.status, func.count(Lot.id)).where(Lot.site_id == site.id).group_by(Lot.status)
    )
    by_status = dict(session.execute(per_status).tuples().all())
    return {
        **_site_dict(site, lots),
        "manager_name": site.manager_name,
        "manager_email": site.manager_email,
        "manager_phone": site.manager_phone,
        "gaveurs_count": gaveurs,
        "lots_by_status": {status.value: by_status.get(status.value, 0) for status in LotStatus},
    }


def _known_codes(session: Session) -> str:
    codes = session.scalars(select(Site.code).order_by(Site.code)).all()
    return ", ".join(codes) or "none, load the demo data"


def _lot_dict(lot: Lot, site_code: str) -> dict[str, Any]:
    return {**{name: getattr(lot, name) for name in LOT_FIELDS}, "site_code": site_code}


def list_lots(
    session: Session,
    *,
    site_code: str | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, list[dict[str, Any]]]:
    """One page of lots ordered by id, and the total matching the filters."""
    if offset < 0:
        raise InvalidInput(f"offset must be >= 0, got {offset}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    query = select(Lot, Site.code).join(Site, Site.id == Lot.site_id)
    if site_code is not None:
        site_id = session.scalar(select(Site.id).where(Site.code == site_code.upper()))
        if site_id is None:
            raise NotFound(
                f"site {site_code!r} does not exist (known codes: {_known_codes(session)})"
            )
        query = query.where(Lot.site_id == site_id)
    if status is not None:
        if status not in {s.value for s in LotStatus}:
            allowed = ", ".join(s.value for s in LotStatus)
            raise InvalidInput(f"status must be one of {allowed}, got {status!r}")
        query = query.where(Lot.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.execute(query.order_by(Lot.id).offset(offset).limit(limit)).tuples()
    return total, [_lot_dict(lot, code) for lot, code in page]


def get_lot(session: Session, lot_id: int) -> dict[str, Any]:
    """One lot with its site code, gaveur name and how many records, samples, feedbacks it has."""
    row = session.execute(
        select(Lot, Site.code, Gaveur.first_name, Gaveur.last_name)
        .join(Site, Site.id == Lot.site_id)
        .join(Gaveur, Gaveur.id == Lot.gaveur_id)
        .where(Lot.id == lot_id)
    ).first()
    if row is None:
        raise NotFound(f"lot {lot_id} does not exist")
    lot, site_code, first_name, last_name = row

    def count(model: type[FeedingRecord | SqalSample | ConsumerFeedback]) -> int:
        return session.scalar(select(func.count(model.id)).where(model.lot_id == lot_id)) or 0

    return {
        **_lot_dict(lot, site_code),
        "gaveur_name": f"{first_name} {last_name}",
        "feeding_records": count(FeedingRecord),
        "sqal_samples": count(SqalSample),
        "consumer_feedback": count(ConsumerFeedback),
    }

"""Read-only reference data so clients can find ids: sites and lots (paged)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from api.deps import SessionDep
from api.params import IdPath, Limit, Offset, OptionalSiteCode
from domain import queries

router = APIRouter(prefix="/api", tags=["data"])
LotStatus = Literal["planned", "feeding", "finished", "slaughtered"]


@router.get("/sites")
def list_sites(session: SessionDep) -> dict[str, Any]:
    sites = queries.list_sites(session)
    return {"total": len(sites), "sites": sites}


@router.get("/lots")
def list_lots(
    session: SessionDep,
    site_code: OptionalSiteCode = None,
    status: LotStatus | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    total, lots = queries.list_lots(
        session, site_code=site_code, status=status, offset=offset, limit=limit
    )
    return {"total": total, "offset": offset, "limit": limit, "lots": lots}


@router.get("/lots/{lot_id}")
def get_lot(lot_id: IdPath, session: SessionDep) -> dict[str, Any]:
    return queries.get_lot(session, lot_id)

"""Reading the training data of the ML jobs: finished lots and their scope (lot, site, all)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.errors import InsufficientData
from domain.models import Lot, Site
from domain.queries import lot_by_id, site_by_code

#: Forecast horizons (days) the API and the forecast accept.
HORIZONS = (7, 30, 90)

#: The lot features symbolic regression sees, named as in the hidden ITM law.
ITM_FEATURES = ("dose_totale_kg", "poids_initial_kg", "temperature_moyenne_c")


@dataclass(frozen=True)
class Scope:
    """Which lots a model learns from: one lot's site, one site, or every site."""

    site_id: int | None
    label: str

    def window(self, lots: list[Lot]) -> dict[str, Any]:
        starts = [lot.start_date for lot in lots]
        return {
            "scope": self.label,
            "lots": len(lots),
            "from": min(starts).isoformat() if starts else None,
            "to": max(starts).isoformat() if starts else None,
        }


def resolve_scope(session: Session, *, lot_id: int | None, site_code: str | None) -> Scope:
    """A lot id means "the lots of that lot's site"; a site code its lots; neither, all lots."""
    if lot_id is not None:
        lot = lot_by_id(session, lot_id)
        site = session.get(Site, lot.site_id)
        assert site is not None
        return Scope(site.id, f"site {site.code} (lot {lot_id})")
    if site_code is not None:
        site = site_by_code(session, site_code)
        return Scope(site.id, f"site {site.code}")
    return Scope(None, "all sites")


def finished_lots(session: Session, scope: Scope) -> list[Lot]:
    """Lots with an outcome (ITM measured), oldest first."""
    query = select(Lot).where(Lot.itm.is_not(None)).order_by(Lot.start_date, Lot.id)
    if scope.site_id is not None:
        query = query.where(Lot.site_id == scope.site_id)
    return list(session.scalars(query))


def itm_table(lots: list[Lot], *, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (ITM_FEATURES order) and ITM of finished lots, or InsufficientData."""
    rows = [
        (
            lot.total_maize_kg_per_duck,
            lot.initial_weight_g / 1000.0,
            lot.mean_temperature_c,
            lot.itm,
        )
        for lot in lots
        if None not in (lot.total_maize_kg_per_duck, lot.mean_temperature_c, lot.itm)
    ]
    if len(rows) < minimum:
        raise InsufficientData(
            f"{len(rows)} finished lots with an ITM in this scope; at least {minimum} are needed"
        )
    table = np.asarray(rows, dtype=float)
    return table[:, :3], table[:, 3]

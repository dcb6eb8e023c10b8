"""domain/queries.py: the read helpers behind GET /api/sites and GET /api/lots."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import queries
from domain.errors import InvalidInput, NotFound
from domain.models import Lot


def test_list_sites_counts_lots(unit_demo_session: Session) -> None:
    sites = queries.list_sites(unit_demo_session)
    assert [s["code"] for s in sites] == ["LL", "LS", "MT"]
    assert set(sites[0]) == {"id", "code", "name", "region", "lots_count"}
    assert sum(s["lots_count"] for s in sites) == 600


def test_get_site_is_case_insensitive_and_detailed(unit_demo_session: Session) -> None:
    site = queries.get_site(unit_demo_session, "ll")
    assert site["code"] == "LL" and site["manager_email"].endswith("@example.org")
    assert site["gaveurs_count"] == 20
    assert sum(site["lots_by_status"].values()) == site["lots_count"]


def test_get_site_unknown_code(unit_demo_session: Session) -> None:
    with pytest.raises(NotFound, match="site 'XX' does not exist.*LL, LS, MT"):
        queries.get_site(unit_demo_session, "XX")


def test_list_lots_pages_in_id_order(unit_demo_session: Session) -> None:
    total, first = queries.list_lots(unit_demo_session, limit=50)
    assert total == 600 and [lot["id"] for lot in first] == list(range(3001, 3051))
    total, page = queries.list_lots(unit_demo_session, offset=590, limit=50)
    assert total == 600 and [lot["id"] for lot in page] == list(range(3591, 3601))
    assert {"id", "code", "site_code", "status", "itm", "start_date"} <= set(page[0])


def test_list_lots_filters_by_site_and_status(unit_demo_session: Session) -> None:
    total, page = queries.list_lots(unit_demo_session, site_code="mt", status="feeding", limit=500)
    expected = unit_demo_session.scalar(
        select(func.count()).where(Lot.site_id == 3, Lot.status == "feeding")
    )
    assert total == expected == len(page) > 0
    assert all(lot["site_code"] == "MT" and lot["status"] == "feeding" for lot in page)
    ids = [lot["id"] for lot in page]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"status": "cooking"}, InvalidInput),
        ({"limit": 0}, InvalidInput),
        ({"limit": 501}, InvalidInput),
        ({"offset": -1}, InvalidInput),
        ({"site_code": "ZZ"}, NotFound),
    ],
)
def test_list_lots_rejects_bad_filters(
    unit_demo_session: Session, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        queries.list_lots(unit_demo_session, **kwargs)  # type: ignore[arg-type]


def test_get_lot_3472(unit_demo_session: Session) -> None:
    lot = queries.get_lot(unit_demo_session, 3472)
    assert lot["id"] == 3472 and lot["site_code"] in {"LL", "LS", "MT"}
    assert lot["gaveur_name"].strip() and lot["feeding_records"] > 0
    if lot["status"] == "slaughtered":
        assert lot["sqal_samples"] >= 8 and lot["itm"] is not None


def test_get_lot_unknown_id(unit_demo_session: Session) -> None:
    with pytest.raises(NotFound, match="lot 99999 does not exist"):
        queries.get_lot(unit_demo_session, 99999)

"""Where personal data is kept, how long, and which job deletes it (this deployment's settings)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import SettingsDep
from domain.platform.retention import personal_data_stores
from scheduler.schedule import SCHEDULE

router = APIRouter(prefix="/api/retention", tags=["gdpr"])


@router.get("")
def retention(settings: SettingsDep) -> dict[str, Any]:
    """Every store of personal data: what it holds, how long (seconds and days; null: until
    deleted by hand), the setting, and the job that deletes it with its schedule."""
    crons = {entry.actor: entry.cron for entry in SCHEDULE if entry.enabled}
    return {
        "timezone": settings.tz,
        "stores": [
            {
                **vars(store),
                "kept_days": None if store.kept_s is None else round(store.kept_s / 86_400, 2),
                "schedule": crons.get(store.deleted_by or ""),
            }
            for store in personal_data_stores(settings)
        ],
    }

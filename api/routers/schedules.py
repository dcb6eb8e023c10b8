"""The schedule: each entry with its next run, its last run (tick, task_id, outcome) and skips."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ControlDep, SettingsDep
from runtime import records
from scheduler.state import ScheduleState
from scheduler.status import schedule_status

router = APIRouter(prefix="/api/schedules", tags=["schedules"])


@router.get("")
def list_schedules(settings: SettingsDep, control: ControlDep) -> dict[str, Any]:
    state = ScheduleState(control.client)
    entries = schedule_status(state, records(), tz=settings.tz)
    alive = state.alive()
    return {
        "timezone": settings.tz,
        "schedulers_alive": len(alive),
        "schedulers": [
            {"scheduler": sid, "last_beat_age_seconds": round(age, 1)} for sid, age in alive.items()
        ],
        "entries": [entry.as_dict() for entry in entries],
    }

"""SQAL device batches as a device would send them (JSON-ready dicts)."""

from __future__ import annotations

from typing import Any


def sqal_batch(
    lot_id: int, grades: list[str], *, batch_id: str = "b1", device_id: str = "SQAL-TEST-1"
) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "batch_id": batch_id,
        "lot_id": lot_id,
        "samples": [
            {
                "measured_at": "2026-01-08T09:00:00Z",
                "tof_zones_mm": [42.5] * 64,
                "liver_weight_g": 580.0,
                "grade": grade,
            }
            for grade in grades
        ],
    }

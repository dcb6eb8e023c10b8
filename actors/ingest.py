"""Ingest of SQAL device batches on queue `default` (seed 004's fast-acknowledge pattern).

The API validated the batch and answered 202; this job stores it once per (device, batch) and
raises a quality alert when the batch's grades drop below the site's recent baseline.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from actors.notifications import send_anomaly_alert
from domain.ingest import SqalBatch, quality_verdict, store_batch
from domain.models import Site
from runtime import (
    RetryPolicy,
    current_settings,
    current_task_id,
    job,
    progress,
    session_scope,
)


@job(
    priority_class="high",
    queue="default",
    payload=SqalBatch,
    retry=RetryPolicy(max_retries=5, min_backoff_ms=1_000, max_backoff_ms=60_000),
    time_limit_ms=120_000,
    unique="{device_id}:{batch_id}",
    redact=("samples",),
)
def ingest_sqal_batch(payload: SqalBatch) -> dict[str, Any]:
    """Store a SQAL batch once; alert when its grades drop."""
    progress(10, f"storing {len(payload.samples)} samples")
    with session_scope() as session:
        stored = store_batch(session, payload, task_id=current_task_id())
        site_code = _site_code(session, stored.site_id)
    result: dict[str, Any] = {
        "status": "duplicate" if stored.duplicate else "success",
        "device_id": payload.device_id,
        "batch_id": payload.batch_id,
        "lot_id": payload.lot_id,
        **stored.as_dict(),
    }
    severity = quality_verdict(stored, bad_share_limit=current_settings().ingest_alert_bad_share)
    result["quality_alert"] = severity
    if severity:
        result["alert"] = _send_alert(payload, site_code, severity, stored.as_dict())
    return result


def _site_code(session: Session, site_id: int | None) -> str | None:
    site = session.get(Site, site_id) if site_id is not None else None
    return site.code if site else None


def _send_alert(
    payload: SqalBatch, site_code: str | None, severity: str, figures: dict[str, Any]
) -> Any:
    data = {
        "site_code": site_code or "",
        "severity": severity,
        "title": f"Qualité SQAL en baisse (lot {payload.lot_id}, {payload.device_id})",
        "anomalies": [
            {
                "kind": "sqal_grade_drop",
                "ref": f"{payload.device_id}/{payload.batch_id}",
                "score": float(figures["batch_mean_points"] or 0.0),
                "description": (
                    f"grade points {figures['batch_mean_points']} vs baseline "
                    f"{figures['baseline_mean_points']}, grade C share {figures['grade_c_share']}"
                ),
            }
        ],
    }
    submitted = send_anomaly_alert.submit(send_anomaly_alert.validate(data))
    return {"sent": True, "task_id": submitted.task_id}

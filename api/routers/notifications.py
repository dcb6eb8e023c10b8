"""Enqueue routes of the notifications family (queues notifications and notifications_urgent)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from actors.notifications import (
    AnomalyAlert,
    BulkEmail,
    DailySummary,
    FeedbackAck,
    LotCompletion,
    SendEmail,
    SendSms,
    send_anomaly_alert,
    send_bulk_email,
    send_daily_summary_reports,
    send_email,
    send_feedback_ack,
    send_lot_completion,
    sms_job_for,
)
from api.deps import WriterDep
from api.enqueue import submit_async
from api.params import LotId
from api.schemas import ACCEPTED, Accepted
from domain.bounds import ID_MAX
from domain.notify import to_e164
from domain.platform.redact import mask_email, mask_phone
from domain.platform.settings import get_settings

router = APIRouter(
    responses=ACCEPTED,
    prefix="/api/tasks/notifications",
    tags=["notifications"],
    dependencies=[WriterDep],
)
# The routes are `async def` and await the enqueue (api/enqueue.py, submit_async): none touches
# the database, so none needs FastAPI's thread pool.


class SmsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(min_length=4, max_length=32, examples=["+33612345678"])
    message: str = Field(min_length=1, max_length=1600)
    priority: Literal["low", "normal", "high", "critical"] = "normal"


class EmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=255)
    subject: str = Field(min_length=1, max_length=200)
    body_html: str = Field(min_length=1, max_length=200_000)


@router.post("/sms", status_code=202)
async def enqueue_sms(request: SmsRequest) -> Accepted:
    """high/critical go to `notifications_urgent`; the number is checked here (422 if invalid)."""
    phone = to_e164(request.phone, region=get_settings().sms_default_region)
    job = sms_job_for(request.priority)
    payload = SendSms(phone=phone, message=request.message, priority=request.priority)
    return await submit_async(
        job,
        payload,
        message="SMS sending started",
        phone=mask_phone(phone),
        priority=request.priority,
    )


@router.post("/email", status_code=202)
async def enqueue_email(request: EmailRequest) -> Accepted:
    payload = SendEmail(**request.model_dump())
    return await submit_async(
        send_email,
        payload,
        message="Email sending started",
        to_email=mask_email(request.to_email),
    )


@router.post("/anomaly-alert", status_code=202)
async def enqueue_anomaly_alert(request: AnomalyAlert) -> Accepted:
    return await submit_async(
        send_anomaly_alert,
        request,
        message="Anomaly alert started",
        site_code=request.site_code,
        severity=request.severity,
    )


@router.post("/lot-completion", status_code=202)
async def enqueue_lot_completion(lot_id: LotId) -> Accepted:
    return await submit_async(
        send_lot_completion,
        LotCompletion(lot_id=lot_id),
        message="Lot completion notification started",
        lot_id=lot_id,
    )


@router.post("/daily-summary", status_code=202)
async def enqueue_daily_summary(day: date | None = None) -> Accepted:
    return await submit_async(
        send_daily_summary_reports,
        DailySummary(day=day),
        message="Daily summary reports started",
        day=day,
    )


@router.post("/feedback-ack", status_code=202)
async def enqueue_feedback_ack(feedback_id: int = Query(ge=1, le=ID_MAX)) -> Accepted:
    return await submit_async(
        send_feedback_ack,
        FeedbackAck(feedback_id=feedback_id),
        message="Feedback acknowledgement started",
        feedback_id=feedback_id,
    )


@router.post("/bulk-email", status_code=202)
async def enqueue_bulk_email(request: BulkEmail) -> Accepted:
    return await submit_async(
        send_bulk_email,
        request,
        message="Bulk email started",
        recipients=len(request.recipients),
    )

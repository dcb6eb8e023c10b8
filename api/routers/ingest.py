"""Ingest of SQAL device batches: validate, enqueue, 202 (the job stores them)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from actors.ingest import ingest_sqal_batch
from api.deps import SettingsDep, WriterDep
from api.enqueue import submit
from api.schemas import Submitted
from domain.errors import InvalidInput
from domain.ingest import SqalBatch

router = APIRouter(prefix="/api/ingest", tags=["ingest"], dependencies=[WriterDep])


@router.post("/sqal", status_code=202)
def ingest_sqal(batch: SqalBatch, response: Response, settings: SettingsDep) -> Submitted:
    if len(batch.samples) > settings.ingest_max_samples:
        raise InvalidInput(
            f"a batch holds at most {settings.ingest_max_samples} samples, got {len(batch.samples)}"
            "; split it"
        )
    return submit(
        ingest_sqal_batch,
        batch,
        response,
        message="SQAL batch accepted",
        device_id=batch.device_id,
        batch_id=batch.batch_id,
        samples=len(batch.samples),
    )

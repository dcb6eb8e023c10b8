"""Ingest of SQAL device batches: validate, enqueue, 202 (the job stores them).

The body is validated straight from its bytes (pydantic's JSON parser, no intermediate dicts)
and the enqueue runs in the thread pool: a 100-sample batch is acknowledged in a few ms.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from actors.ingest import ingest_sqal_batch
from api.deps import SettingsDep, WriterDep
from api.enqueue import submit
from api.schemas import ACCEPTED, Accepted
from domain.errors import InvalidInput
from domain.ingest import SqalBatch

router = APIRouter(
    responses=ACCEPTED, prefix="/api/ingest", tags=["ingest"], dependencies=[WriterDep]
)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema without `$defs`: inside the OpenAPI document a `#/$defs/...`
    reference would resolve against the document's root, where nothing is defined."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    inlined: dict[str, Any] = resolve(schema)
    return inlined


_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": _inlined(SqalBatch.model_json_schema(ref_template="#/$defs/{model}"))
            }
        },
    }
}


@router.post("/sqal", status_code=202, openapi_extra=_BODY)
async def ingest_sqal(request: Request, settings: SettingsDep) -> Accepted:
    """A batch of SQAL samples from one device: 202 at once; a job stores it once."""
    try:
        batch = SqalBatch.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from None
    if len(batch.samples) > settings.ingest_max_samples:
        raise InvalidInput(
            f"a batch holds at most {settings.ingest_max_samples} samples, got {len(batch.samples)}"
            "; split it"
        )
    return await run_in_threadpool(
        submit,
        ingest_sqal_batch,
        batch,
        message="SQAL batch accepted",
        device_id=batch.device_id,
        batch_id=batch.batch_id,
        samples=len(batch.samples),
    )

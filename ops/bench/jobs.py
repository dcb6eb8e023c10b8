"""The benchmark's job: a no-op through the full middleware stack."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

import actors  # noqa: F401  (broker and production middleware)
from actors.jobs import job


class Noop(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = 0


@job(queue="default", payload=Noop)
def noop(payload: Noop) -> dict[str, int]:
    return {"n": payload.n}

"""SQAL device batches: validation models, idempotent storage, and the quality verdict.

The API validates a batch and answers 202 at once; a job stores it. The (device, batch) key in
`ingest_batches` makes storage idempotent: a batch sent twice (device retry, API retry, job
redelivery) is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.bounds import RowId
from domain.errors import NotFound
from domain.models import Grade, IngestBatch, Lot, SqalSample

#: Grade points: the quality verdict compares mean points of a batch with the recent baseline.
GRADE_POINTS = {Grade.A_PLUS.value: 4.0, Grade.A.value: 3.0, Grade.B.value: 2.0, Grade.C.value: 1.0}
BASELINE_DAYS = 14
BASELINE_MIN_SAMPLES = 20

DeviceId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.:-]+$")]


class SqalSampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measured_at: datetime
    tof_zones_mm: list[Annotated[float, Field(ge=0, le=500)]] = Field(min_length=64, max_length=64)
    liver_weight_g: float = Field(gt=100, lt=2000)
    grade: Grade

    @field_validator("measured_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("measured_at needs a time zone (e.g. 2026-01-08T10:15:00Z)")
        return value.astimezone(UTC)


class SqalBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: DeviceId
    batch_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    lot_id: RowId
    samples: list[SqalSampleIn] = Field(min_length=1, max_length=10_000)


@dataclass(frozen=True)
class Stored:
    stored: int
    duplicate: bool
    site_id: int | None
    batch_points: float | None
    baseline_points: float | None
    bad_share: float
    grade_counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "duplicate": self.duplicate,
            "batch_mean_points": self.batch_points,
            "baseline_mean_points": self.baseline_points,
            "grade_c_share": self.bad_share,
            "grades": self.grade_counts,
        }


def store_batch(session: Session, batch: SqalBatch, *, task_id: str | None = None) -> Stored:
    """Store the batch's samples once; a batch already stored is reported as a duplicate."""
    lot = session.get(Lot, batch.lot_id)
    if lot is None:
        raise NotFound(f"lot {batch.lot_id} does not exist")
    if session.get(IngestBatch, (batch.device_id, batch.batch_id)) is not None:
        return Stored(0, True, lot.site_id, None, None, 0.0, {})
    baseline = _baseline_points(
        session, lot.site_id, before=min(s.measured_at for s in batch.samples)
    )
    session.add(
        IngestBatch(
            device_id=batch.device_id,
            batch_id=batch.batch_id,
            samples=len(batch.samples),
            task_id=task_id,
        )
    )
    session.add_all(
        SqalSample(
            lot_id=batch.lot_id,
            device_id=batch.device_id,
            measured_at=sample.measured_at,
            tof_zones_mm=sample.tof_zones_mm,
            liver_weight_g=sample.liver_weight_g,
            grade=sample.grade.value,
            batch_id=batch.batch_id,
        )
        for sample in batch.samples
    )
    try:
        session.flush()
    except IntegrityError:  # the same batch stored concurrently by another job: keep theirs
        session.rollback()
        return Stored(0, True, lot.site_id, None, None, 0.0, {})
    counts = {grade.value: 0 for grade in Grade}
    for sample in batch.samples:
        counts[sample.grade.value] += 1
    points = sum(GRADE_POINTS[g] * n for g, n in counts.items()) / len(batch.samples)
    return Stored(
        stored=len(batch.samples),
        duplicate=False,
        site_id=lot.site_id,
        batch_points=round(points, 3),
        baseline_points=baseline,
        bad_share=round(counts[Grade.C.value] / len(batch.samples), 3),
        grade_counts=counts,
    )


def _baseline_points(session: Session, site_id: int, *, before: datetime) -> float | None:
    """Mean grade points of the site's samples over the previous two weeks, if enough."""
    rows = session.execute(
        select(SqalSample.grade, func.count())
        .join(Lot, Lot.id == SqalSample.lot_id)
        .where(
            Lot.site_id == site_id,
            SqalSample.measured_at < before,
            SqalSample.measured_at >= before - timedelta(days=BASELINE_DAYS),
        )
        .group_by(SqalSample.grade)
    ).all()
    total = sum(count for _, count in rows)
    if total < BASELINE_MIN_SAMPLES:
        return None
    return round(sum(GRADE_POINTS[grade] * count for grade, count in rows) / total, 3)


def quality_verdict(
    stored: Stored, *, bad_share_limit: float, drop_limit: float = 0.5
) -> str | None:
    """None when the batch is fine, else "warning" or "critical" (grades dropped)."""
    if stored.duplicate or stored.batch_points is None:
        return None
    drop = (stored.baseline_points - stored.batch_points) if stored.baseline_points else 0.0
    if stored.bad_share >= min(1.0, bad_share_limit * 1.5) or drop >= 2 * drop_limit:
        return "critical"
    if stored.bad_share >= bad_share_limit or drop >= drop_limit:
        return "warning"
    return None

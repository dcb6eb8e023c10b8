"""The database schema: SQLAlchemy 2 typed models, portable to SQLite and PostgreSQL.

The initial Alembic revision (domain/platform/migrations/versions/0001_initial.py) is written by
hand and must stay equal to this metadata; tests/unit/test_db.py compares them with autogenerate.

Closed vocabularies (lot status, meal, grade...) are `StrEnum`s stored as short strings with a
CHECK constraint, so they read the same in SQLite, PostgreSQL and JSON payloads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints let Alembic (batch mode on SQLite) alter and drop them later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class LotStatus(StrEnum):
    PLANNED = "planned"
    FEEDING = "feeding"
    FINISHED = "finished"
    SLAUGHTERED = "slaughtered"


class Meal(StrEnum):
    MORNING = "morning"
    EVENING = "evening"


class Grade(StrEnum):
    A_PLUS = "A+"
    A = "A"
    B = "B"
    C = "C"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class AnomalyKind(StrEnum):
    MORTALITY_SPIKE = "mortality_spike"
    DOSE_ENTRY_ERROR = "dose_entry_error"
    WEIGHT_DROP = "weight_drop"
    TEMPERATURE_SENSOR_FAULT = "temperature_sensor_fault"


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC (the only kind of datetime stored)."""
    return datetime.now(UTC)


def _in(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


class UTCDateTime(TypeDecorator[datetime]):
    """An instant stored as UTC and always read back timezone-aware.

    SQLite has no timezone type: SQLAlchemy would drop the offset on write and return naive
    values. Converting to UTC on the way in and tagging UTC on the way out gives the same
    Python values on SQLite and PostgreSQL (TIMESTAMP WITH TIME ZONE).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[float]: JSON()}


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    region: Mapped[str] = mapped_column(String(120))
    manager_name: Mapped[str] = mapped_column(String(120))
    manager_email: Mapped[str] = mapped_column(String(255))
    manager_phone: Mapped[str] = mapped_column(String(32))


class Gaveur(Base):
    __tablename__ = "gaveurs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    phone: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())


class Lot(Base):
    """A batch of ducks force-fed together; ids start at 3001 so lot 3472 exists in the demo."""

    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint(_in("status", LotStatus), name="status"),
        CheckConstraint("duration_days BETWEEN 1 AND 31", name="duration_days"),
        Index(None, "status", "start_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    gaveur_id: Mapped[int] = mapped_column(ForeignKey("gaveurs.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    duration_days: Mapped[int] = mapped_column(Integer)
    ducks_start: Mapped[int] = mapped_column(Integer)
    ducks_end: Mapped[int | None] = mapped_column(Integer)
    initial_weight_g: Mapped[float] = mapped_column(Float)
    genetics: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    ideal_slaughter_date: Mapped[date] = mapped_column(Date)
    slaughter_date: Mapped[date | None] = mapped_column(Date)
    # Outcomes, denormalised once the feeding is over (NULL while planned or feeding).
    total_maize_kg_per_duck: Mapped[float | None] = mapped_column(Float)
    final_weight_g: Mapped[float | None] = mapped_column(Float)
    mean_liver_weight_g: Mapped[float | None] = mapped_column(Float)
    itm: Mapped[float | None] = mapped_column(Float)
    mortality_pct: Mapped[float | None] = mapped_column(Float)
    # True mean barn temperature over the feeding: sensor faults in the records do not move it.
    mean_temperature_c: Mapped[float | None] = mapped_column(Float)
    # Free text from the site (what happened, what to watch): indexed for search.
    notes: Mapped[str | None] = mapped_column(Text)


class FeedingRecord(Base):
    """One meal of one lot: the per-duck maize dose and the barn readings at that meal."""

    __tablename__ = "feeding_records"
    # The unique constraint leads with lot_id, so it also serves lookups by lot.
    __table_args__ = (
        UniqueConstraint("lot_id", "day", "meal"),
        CheckConstraint(_in("meal", Meal), name="meal"),
        CheckConstraint("day BETWEEN 1 AND 31", name="day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    day: Mapped[int] = mapped_column(Integer)
    meal: Mapped[str] = mapped_column(String(8))
    record_date: Mapped[date] = mapped_column(Date, index=True)
    dose_g: Mapped[float] = mapped_column(Float)
    mean_weight_g: Mapped[float] = mapped_column(Float)
    temperature_c: Mapped[float] = mapped_column(Float)
    humidity_pct: Mapped[float] = mapped_column(Float)
    mortality: Mapped[int] = mapped_column(Integer)


class SqalSample(Base):
    """A liver measured by a SQAL station at slaughter: 8x8 time-of-flight map and grade."""

    __tablename__ = "sqal_samples"
    __table_args__ = (CheckConstraint(_in("grade", Grade), name="grade"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str] = mapped_column(String(32), index=True)
    measured_at: Mapped[datetime] = mapped_column(index=True)
    tof_zones_mm: Mapped[list[float]] = mapped_column()
    liver_weight_g: Mapped[float] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(2))
    batch_id: Mapped[str | None] = mapped_column(String(64))


class ConsumerFeedback(Base):
    __tablename__ = "consumer_feedback"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint("texture BETWEEN 1 AND 5", name="texture"),
        CheckConstraint("taste BETWEEN 1 AND 5", name="taste"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    rating: Mapped[int] = mapped_column(Integer)
    texture: Mapped[int] = mapped_column(Integer)
    taste: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text)
    consumer_email: Mapped[str | None] = mapped_column(String(255))


class SlaughterCapacity(Base):
    __tablename__ = "slaughter_capacity"
    __table_args__ = (UniqueConstraint("site_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    day: Mapped[date] = mapped_column(Date)
    capacity_ducks: Mapped[int] = mapped_column(Integer)


class StoredFile(Base):
    """A file produced by a job (report, export, certificate, backup), downloaded by id."""

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Relative to EXPORT_DIR, e.g. reports/lot_3472_complete_20260108.pdf: also its URL path.
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    task_id: Mapped[str | None] = mapped_column(String(64), index=True)


class MlModel(Base):
    """A trained model version: parameters, metrics and the data window it was fitted on."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column()
    metrics: Mapped[dict[str, Any]] = mapped_column()
    data_window: Mapped[dict[str, Any]] = mapped_column()
    artefact_path: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    task_id: Mapped[str | None] = mapped_column(String(64))


class Certificate(Base):
    """A link of the traceability hash chain: chain_hash = sha256(prev_hash + content_hash)."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    certificate_type: Mapped[str] = mapped_column(String(32))
    file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id", ondelete="SET NULL"))
    content_hash: Mapped[str] = mapped_column(String(64))
    # Unique: two appends that read the same tip cannot both commit, so the chain never forks.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    chain_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationOutbox(Base):
    """Every SMS or e-mail to send, keyed so a retried job never sends the same message twice."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        CheckConstraint(_in("channel", Channel), name="channel"),
        CheckConstraint(_in("status", OutboxStatus), name="status"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default=OutboxStatus.PENDING.value)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class GavageStatsDaily(Base):
    """Feeding records aggregated per site and day (kept by domain/aggregates.py)."""

    __tablename__ = "gavage_stats_daily"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    stat_date: Mapped[date] = mapped_column(Date, primary_key=True)
    lots_active: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)
    mean_dose_g: Mapped[float] = mapped_column(Float)
    mean_weight_g: Mapped[float] = mapped_column(Float)
    mean_temperature_c: Mapped[float] = mapped_column(Float)
    deaths: Mapped[int] = mapped_column(Integer)


class SqalStatsHourly(Base):
    """SQAL samples aggregated per site, device and UTC hour (kept by domain/aggregates.py)."""

    __tablename__ = "sqal_stats_hourly"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    samples: Mapped[int] = mapped_column(Integer)
    mean_liver_weight_g: Mapped[float] = mapped_column(Float)
    grade_a_plus: Mapped[int] = mapped_column(Integer)
    grade_a: Mapped[int] = mapped_column(Integer)
    grade_b: Mapped[int] = mapped_column(Integer)
    grade_c: Mapped[int] = mapped_column(Integer)


class AggregateWatermark(Base):
    """The last source row id folded into the aggregates, per source table."""

    __tablename__ = "aggregate_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlantedAnomaly(Base):
    """Ground truth of the anomalies the demo generator planted, to score anomaly detection."""

    __tablename__ = "planted_anomalies"
    __table_args__ = (CheckConstraint(_in("kind", AnomalyKind), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    feeding_record_id: Mapped[int | None] = mapped_column(
        ForeignKey("feeding_records.id", ondelete="SET NULL")
    )
    day: Mapped[int | None] = mapped_column(Integer)
    meal: Mapped[str | None] = mapped_column(String(8))
    detail: Mapped[str] = mapped_column(Text)


class KpiScope(StrEnum):
    SITE = "site"
    GAVEUR = "gaveur"


class WeeklyKpi(Base):
    """Per site and per gaveur figures of one week (Monday start), kept by domain/kpis.py."""

    __tablename__ = "weekly_kpis"
    __table_args__ = (
        UniqueConstraint("week_start", "scope", "ref_id"),
        CheckConstraint(_in("scope", KpiScope), name="scope"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week_start: Mapped[date] = mapped_column(Date, index=True)
    scope: Mapped[str] = mapped_column(String(8))
    ref_id: Mapped[int] = mapped_column(Integer)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    lots: Mapped[int] = mapped_column(Integer)
    ducks: Mapped[int] = mapped_column(Integer)
    mean_itm: Mapped[float | None] = mapped_column(Float)
    mortality_pct: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    grade_mix: Mapped[dict[str, Any]] = mapped_column()
    mean_rating: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class IngestBatch(Base):
    """A SQAL device batch already stored: the (device, batch) key makes ingest idempotent."""

    __tablename__ = "ingest_batches"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    samples: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    task_id: Mapped[str | None] = mapped_column(String(64))


#: A deferred job not yet sent to Redis (the partial indexes' predicate).
DEFERRED_PENDING = "deferred_at IS NOT NULL AND forwarded_at IS NULL"


class JournalEntry(Base):
    """A job accepted by the broker: its message, kept until it has finished and aged out.

    Redis holds queues and job records; if it loses them (restarted without persistence, the
    last second before a crash with appendfsync everysec) this is what tells which accepted
    jobs vanished, and carries the message to send them again (domain/platform/journal.py)."""

    __tablename__ = "job_journal"
    __table_args__ = (
        Index(None, "finished_at", "accepted_at", "task_id"),
        # Deferred jobs (accepted while Redis was down) waiting for the forwarder: one with a
        # given uniqueness key at a time, and read in acceptance order.
        Index(
            "ux_job_journal_deferred_unique_key",
            "unique_key",
            unique=True,
            sqlite_where=text(DEFERRED_PENDING),
            postgresql_where=text(DEFERRED_PENDING),
        ),
        Index(
            "ix_job_journal_deferred_pending",
            "accepted_at",
            "task_id",
            sqlite_where=text(DEFERRED_PENDING),
            postgresql_where=text(DEFERRED_PENDING),
        ),
    )

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(String(128))
    queue: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(16))
    # Set when the job was accepted while Redis was unreachable (store and forward).
    deferred_at: Mapped[datetime | None] = mapped_column()
    forwarded_at: Mapped[datetime | None] = mapped_column()
    unique_key: Mapped[str | None] = mapped_column(String(255))
    idempotency: Mapped[str | None] = mapped_column(String(200))
    delay_ms: Mapped[int | None] = mapped_column()
    superseded_by: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(64))


class WorkflowJournalEntry(Base):
    """A workflow as submitted: its graph and every step's message, kept JOB_RETENTION_S.

    Redis holds a workflow's state; if it loses it (restarted without persistence) the
    reconciler rebuilds the workflow from this entry and the job journal's finished steps, and
    enqueues the steps that had not finished (runtime/lost_jobs.py)."""

    __tablename__ = "workflow_journal"
    __table_args__ = (Index(None, "finished_at", "submitted_at"),)

    workflow_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    #: The submit script's arguments after the clock (policy, name, then 4 per step), as JSON.
    graph: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class ApiClient(Base):
    """A named API client: its token is stored as a SHA-256 hash, shown once at creation."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Space-separated scopes: jobs:write, exports:read, audit:read, admin.
    scopes: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class ProcessingAudit(Base):
    """One processing of a person's data (domain/platform/audit.py): append-only, no update or
    delete path; the database refuses both (migration 0009_processing_audit)."""

    __tablename__ = "processing_audit"
    __table_args__ = (Index(None, "subject", "at"), Index(None, "client", "at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    client: Mapped[str | None] = mapped_column(String(64))
    #: The job's actor name, or the API route, that processed the data.
    job: Mapped[str] = mapped_column(String(128))
    task_id: Mapped[str | None] = mapped_column(String(64))
    #: kind:ref, e.g. gaveur:12, feedback:7, email:<hmac>, phone:<hmac>.
    subject: Mapped[str] = mapped_column(String(80))
    purpose: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    #: From the exactly-once key of the effect: a retry's insert is ignored.
    dedupe_key: Mapped[str] = mapped_column(String(40), unique=True)

"""The one settings object, read from the environment and `.env` at the edges and passed inward."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SECOND_MS = 1000
DAY_S = 86400


class Settings(BaseSettings):
    """Every setting of the platform; names are the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("environment", "app_env")
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite:///var/gaveurs.db"
    export_dir: Path = Path("var/exports")
    backup_dir: Path = Path("var/backups")
    tz: str = "Europe/Paris"

    api_token: SecretStr = SecretStr("")
    admin_token: SecretStr = SecretStr("")
    # Keys the hashes of phone numbers and e-mail addresses in the processing audit trail.
    audit_subject_key: SecretStr = SecretStr("")
    # Fernet keys (comma-separated; the first seals, all open) of the payload fields that carry
    # personal data through Redis (domain/platform/sealing.py); empty: a development key.
    payload_keys: SecretStr = SecretStr("")
    # The format sealing writes: v2 (AES-GCM); v1 (Fernet) while processes of a version that
    # opens only v1 still run. Both are always opened.
    payload_seal_format: Literal["v1", "v2"] = "v2"
    dashboard_user: str = "admin"

    # Job records and results.
    job_retention_s: int = Field(default=7 * DAY_S, ge=60)
    result_ttl_ms: int = Field(default=7 * DAY_S * SECOND_MS, ge=1000)
    dead_letter_ttl_ms: int = Field(default=14 * DAY_S * SECOND_MS, ge=1000)
    # A worker whose broker heartbeat is older than this is dead and its messages come back
    # (workers beat every 5 s; broker maintenance runs every minute, so recovery < 2 min).
    worker_heartbeat_timeout_ms: int = Field(default=30_000, ge=1000)
    # Out of a million broker calls; Dramatiq's default is 1000 (0.1%).
    broker_maintenance_chance: int = Field(default=1000, ge=0, le=1_000_000)
    # A worker keeps retrying record writes and retry enqueues this long while Redis is away.
    redis_outage_patience_s: float = Field(default=300.0, gt=0)
    # Encoded messages larger than this are refused at enqueue and dead-lettered at fetch.
    max_message_bytes: int = Field(default=4_000_000, ge=10_000)
    # A job whose worker died under it this many times is dead-lettered, not redelivered.
    max_worker_deaths: int = Field(default=3, ge=1, le=100)
    # Worker recycling (0 = off): a worker process past this many jobs or this resident memory
    # finishes its jobs, hands back what it fetched and is replaced (ops.worker sets them).
    worker_max_jobs_per_process: int = Field(default=0, ge=0)
    worker_max_memory_mb: int = Field(default=0, ge=0)
    # A worker process with several threads keeps them on one CPU (runtime/middleware/cpu_pin.py
    # says when and why); "off" leaves them to the scheduler (ops.worker --cpu-pin sets it).
    worker_cpu_pin: Literal["auto", "off"] = "auto"
    # The database journal of accepted jobs, to find and resend the ones Redis loses.
    journal_enabled: bool = True
    journal_flush_ms: int = Field(default=200, ge=10, le=10_000)
    # Store and forward: jobs accepted while Redis is unreachable wait in the database journal;
    # past this many waiting, enqueues answer 503 (0: no deferral, a 503 at once).
    deferred_max_jobs: int = Field(default=100_000, ge=0)
    # API side: fail fast when Redis is down instead of hanging the request.
    redis_connect_timeout_s: float = Field(default=0.5, gt=0)
    redis_socket_timeout_s: float = Field(default=5.0, gt=0)
    # High availability: the master these Sentinels (host:port,...) name, instead of REDIS_URL's
    # host (its user, password, database and TLS options still apply to the master).
    redis_sentinels: str = ""
    redis_sentinel_master: str = "gaveurs"
    redis_sentinel_username: str = ""
    redis_sentinel_password: SecretStr = SecretStr("")
    redis_sentinel_tls: bool = False
    # The async enqueue of the API waits this long for Redis, then answers as Redis down
    # (deferred, or 503 with Retry-After) without having held the event loop.
    api_enqueue_timeout_s: float = Field(default=1.0, gt=0, le=30)

    # Default execution policy, overridable per actor on its decorator.
    default_max_retries: int = Field(default=3, ge=0)
    default_min_backoff_ms: int = Field(default=60_000, ge=0)
    default_max_backoff_ms: int = Field(default=3_600_000, ge=0)
    default_time_limit_ms: int = Field(default=30 * 60_000, ge=1000)

    # Metrics: each process exposes its own port.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # How long a web process keeps an idle keep-alive connection (uvicorn's default is 5 s). A
    # PaaS router or load balancer reuses idle connections for up to its own idle timeout (AWS
    # ALB 60 s): a server that closes first can close one as the router sends a request on it,
    # which the client then gets as a 502 or a reset. Longer than the router's, it closes first.
    api_keepalive_s: int = Field(default=75, ge=1, le=3600)
    metrics_host: str = "127.0.0.1"
    # Where each worker's Prometheus port listens (no auth on it: loopback unless a scraper on
    # another host needs it; Dramatiq's own name dramatiq_prom_host is read too).
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("worker_metrics_host", "dramatiq_prom_host"),
    )
    exporter_port: int = 9200
    # The exporter's gaveurs_queue_desired_workers: processes that clear a queue's waiting work
    # within AUTOSCALE_TARGET_DRAIN_S, between the min and max (ops/autoscale.py).
    autoscale_target_drain_s: float = Field(default=60.0, gt=0)
    autoscale_min_workers: int = Field(default=0, ge=0)
    autoscale_max_workers: int = Field(default=10, ge=1)
    autoscale_default_job_ms: float = Field(default=1000.0, gt=0)
    max_request_body_bytes: int = Field(default=1_000_000, ge=1024)
    # Enqueues per second one web process accepts before answering 429 (0: no limit).
    enqueue_rate_per_s: int = Field(default=2000, ge=0)
    # How long an Idempotency-Key keeps returning the job it first created.
    idempotency_ttl_s: int = Field(default=86_400, ge=60)
    # GET /api/search: read-only connections per web process (searches beyond wait for one),
    # and how long a result is reused while the index has not changed (0: no cache).
    search_connections: int = Field(default=4, ge=1, le=64)
    search_cache_s: float = Field(default=30.0, ge=0, le=3600)

    # --- scheduler and maintenance ---
    scheduler_poll_s: float = Field(default=5.0, gt=0, le=30)
    backup_keep: int = Field(default=7, ge=1)
    sensor_retention_days: int = Field(default=730, ge=1)
    # Sent/failed outbox rows and the file backend's written messages (OUTBOX_DIR).
    outbox_retention_days: int = Field(default=90, ge=1)
    # Consumer feedback (e-mail address, comment) is deleted this long after it was received.
    feedback_retention_days: int = Field(default=3 * 365, ge=1)
    ingest_max_samples: int = Field(default=500, ge=1, le=10_000)
    # A batch whose share of grade C/D/rejected samples reaches this raises a quality alert.
    ingest_alert_bad_share: float = Field(default=0.3, gt=0, le=1)
    # --- notifications ---
    # `file` writes each message under outbox_dir (demo, tests); `live` uses SMTP and the SMS API.
    # The environment setting (ENVIRONMENT, also read as APP_ENV) `production` refuses `file`.
    notify_backend: Literal["file", "live"] = "file"
    outbox_dir: Path = Path("var/outbox")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_sender: str = "Gaveurs <notifications@gaveurs.example>"
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    sms_base_url: str = "https://api.twilio.com"
    sms_account_sid: str = ""
    sms_auth_token: SecretStr = SecretStr("")
    sms_sender: str = "+33700000000"
    sms_timeout_s: float = Field(default=10.0, gt=0)
    sms_default_region: str = "FR"
    # Per provider, shared by every worker through Redis.
    sms_rate_per_second: int = Field(default=10, ge=1)
    email_rate_per_second: int = Field(default=50, ge=1)
    # Routine e-mails (fan-outs, bulk) requested within this window share one SMTP session.
    email_batch_window_ms: int = Field(default=1_000, ge=1)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)
    notify_retry_min_backoff_ms: int = Field(default=5_000, ge=0)
    notify_max_retries: int = Field(default=8, ge=0)
    # --- alerting (Alertmanager, see ops/alerting.py) ---
    # Who hears of Prometheus alerts: e-mail through the SMTP_* server above, and a webhook.
    alert_email_to: str = ""
    alert_webhook_url: str = ""
    # Prefix of the runbook links in alert e-mails (runbook_url annotations are repo paths).
    alert_runbook_base_url: str = ""
    alertmanager_port: int = Field(default=9093, ge=1, le=65535)
    # The Prometheus whose firing alerts the console's overview lists ("" = none configured).
    prometheus_url: str = ""
    # Result callbacks (`callback_url` on a POST): signed with this secret (HMAC-SHA256); no
    # callback is accepted without it. Loopback/private targets only when allowed.
    callback_secret: SecretStr = SecretStr("")
    callback_allow_private: bool = False
    callback_timeout_s: float = Field(default=10.0, gt=0)
    callback_max_retries: int = Field(default=8, ge=0)
    callback_min_backoff_ms: int = Field(default=5_000, ge=0)
    # --- ml ---
    # Trained model artefacts (joblib/JSON), one folder per kind, next to their `models` rows.
    model_dir: Path = Path("var/models")
    # Symbolic regression engine: auto (PySR when a Julia runtime is installed, else Operon).
    sr_engine: Literal["auto", "operon", "pysr"] = "auto"
    sr_generations: int = Field(default=60, ge=1)
    sr_population_size: int = Field(default=500, ge=10)
    # --- exports ---
    # Reports and exports under EXPORT_DIR are deleted this many days after they were made
    # (certificates are kept: the ledger's verification reads them).
    export_retention_days: int = Field(default=7, ge=1)
    # Lots one batch CSV export may name.
    export_max_batch_lots: int = Field(default=1000, ge=1, le=100_000)
    # Requests for the aggregates refresh within this window run once, at its end (debounce).
    aggregates_debounce_ms: int = Field(default=60_000, ge=1)
    # Who gets the one e-mail listing the weekly site reports (the cooperative's direction).
    weekly_reports_email_to: str = Field(
        default="direction@gaveurs.example", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()

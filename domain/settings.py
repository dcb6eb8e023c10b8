"""The one settings object, read from the environment and `.env` at the edges and passed inward."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SECOND_MS = 1000
DAY_S = 86400


class Settings(BaseSettings):
    """Every setting of the platform; names are the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite:///var/gaveurs.db"
    export_dir: Path = Path("var/exports")
    backup_dir: Path = Path("var/backups")
    tz: str = "Europe/Paris"

    api_token: SecretStr = SecretStr("")
    admin_token: SecretStr = SecretStr("")
    dashboard_user: str = "admin"

    # Job records and results.
    job_retention_s: int = Field(default=7 * DAY_S, ge=60)
    result_ttl_ms: int = Field(default=7 * DAY_S * SECOND_MS, ge=1000)
    dead_letter_ttl_ms: int = Field(default=14 * DAY_S * SECOND_MS, ge=1000)
    # A worker whose broker heartbeat is older than this is dead and its messages come back.
    worker_heartbeat_timeout_ms: int = Field(default=60_000, ge=1000)
    # Out of a million broker calls; Dramatiq's default is 1000 (0.1%).
    broker_maintenance_chance: int = Field(default=1000, ge=0, le=1_000_000)
    # API side: fail fast when Redis is down instead of hanging the request.
    redis_connect_timeout_s: float = Field(default=0.5, gt=0)
    redis_socket_timeout_s: float = Field(default=5.0, gt=0)

    # Default execution policy, overridable per actor on its decorator.
    default_max_retries: int = Field(default=3, ge=0)
    default_min_backoff_ms: int = Field(default=60_000, ge=0)
    default_max_backoff_ms: int = Field(default=3_600_000, ge=0)
    default_time_limit_ms: int = Field(default=30 * 60_000, ge=1000)

    # Metrics: each process exposes its own port.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    metrics_host: str = "127.0.0.1"
    exporter_port: int = 9200
    max_request_body_bytes: int = Field(default=1_000_000, ge=1024)

    # --- ml ---
    # Trained model artefacts (joblib/JSON), one folder per kind, next to their `models` rows.
    model_dir: Path = Path("var/models")
    # Symbolic regression engine: auto (PySR when a Julia runtime is installed, else Operon).
    sr_engine: Literal["auto", "operon", "pysr"] = "auto"
    sr_generations: int = Field(default=60, ge=1)
    sr_population_size: int = Field(default=500, ge=10)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()

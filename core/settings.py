"""Settings shared by the app, API, CLI and workers (read from the environment at call time)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One object for every entry point; `get_settings()` re-reads the environment each call
    so tests and long-running processes never see stale values."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    workbench_home: Path = Field(default=Path("./.workbench"))
    database_url: str | None = None
    workbench_api_token: str | None = None
    max_upload_mb: float = Field(
        default=200.0, gt=0,
        validation_alias=AliasChoices("WORKBENCH_MAX_UPLOAD_MB", "max_upload_mb"))
    sqlite_busy_timeout_s: float = Field(
        default=30.0, gt=0,
        validation_alias=AliasChoices("WORKBENCH_SQLITE_BUSY_TIMEOUT_S", "sqlite_busy_timeout_s"))

    max_concurrent_jobs: int = Field(
        default=1, ge=1, validation_alias=AliasChoices("WORKBENCH_MAX_CONCURRENT_JOBS",
                                                      "max_concurrent_jobs"))
    requeue_lost_jobs: bool = Field(
        default=False, validation_alias=AliasChoices("WORKBENCH_REQUEUE_LOST_JOBS",
                                                    "requeue_lost_jobs"))
    heartbeat_s: float = Field(
        default=5.0, gt=0, validation_alias=AliasChoices("WORKBENCH_HEARTBEAT_S", "heartbeat_s"))
    worker_lost_after_s: float = Field(
        default=30.0, gt=0, validation_alias=AliasChoices("WORKBENCH_WORKER_LOST_AFTER_S",
                                                         "worker_lost_after_s"))
    daily_cpu_hours: float | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("WORKBENCH_DAILY_CPU_HOURS",
                                                         "daily_cpu_hours"))

    # Serving (core/deploy, app/api.py)
    serve_max_body_mb: float = Field(
        default=20.0, gt=0, validation_alias=AliasChoices("WORKBENCH_SERVE_MAX_BODY_MB",
                                                         "serve_max_body_mb"))
    state_refresh_s: float = Field(
        default=0.5, gt=0, le=1.0, validation_alias=AliasChoices("WORKBENCH_STATE_REFRESH_S",
                                                                "state_refresh_s"))
    telemetry_flush_s: float = Field(
        default=1.0, gt=0, validation_alias=AliasChoices("WORKBENCH_TELEMETRY_FLUSH_S",
                                                        "telemetry_flush_s"))
    model_cache_size: int = Field(
        default=8, ge=1, validation_alias=AliasChoices("WORKBENCH_MODEL_CACHE_SIZE",
                                                      "model_cache_size"))
    batch_window_ms: float = Field(
        default=0.0, ge=0, le=50, validation_alias=AliasChoices("WORKBENCH_BATCH_WINDOW_MS",
                                                               "batch_window_ms"))
    batch_max_rows: int = Field(
        default=2048, ge=1, validation_alias=AliasChoices("WORKBENCH_BATCH_MAX_ROWS",
                                                         "batch_max_rows"))
    log_predictions: bool = Field(
        default=True, validation_alias=AliasChoices("WORKBENCH_LOG_PREDICTIONS",
                                                   "log_predictions"))
    # The rows each logged request scored, so fed-back labels can become training data
    # (core.jobs.fresh_data); off saves the extra insert per request in the telemetry flush.
    log_inputs: bool = Field(
        default=True, validation_alias=AliasChoices("WORKBENCH_LOG_INPUTS", "log_inputs"))
    default_model: str | None = Field(
        default=None, validation_alias=AliasChoices("WORKBENCH_DEFAULT_MODEL", "default_model"))

    worker_mode: str = Field(
        default="process", pattern="^(process|thread)$",
        validation_alias=AliasChoices("WORKBENCH_WORKER_MODE", "worker_mode"))
    demo: bool = Field(default=False, validation_alias=AliasChoices("WORKBENCH_DEMO", "demo"))

    @property
    def home(self) -> Path:
        return self.workbench_home.expanduser().resolve()

    @property
    def artifact_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'workbench.db'}"

    @property
    def serve_max_body_bytes(self) -> int:
        return int(self.serve_max_body_mb * 1024 * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def get_settings() -> Settings:
    return Settings()

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
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def get_settings() -> Settings:
    return Settings()

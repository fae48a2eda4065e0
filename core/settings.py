"""Settings shared by the app, API, CLI and workers (read from the environment at call time)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from core.errors import SettingsError


class Settings(BaseSettings):
    """One object for every entry point, parsed once per process by `get_settings()`."""

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
    # Threads that walk one batch's trees (core/deploy/treewalk.py): 0 = two when this
    # machine has two cores or more (`serve --workers N`, N > 1, sets 1 for its workers).
    walk_threads: int = Field(
        default=0, ge=0, le=2, validation_alias=AliasChoices("WORKBENCH_WALK_THREADS",
                                                            "walk_threads"))
    # Load shedding: past either bound a prediction is refused at once with 503 + Retry-After
    # (0 = no bound). Measured defaults, docs/trust/serving.md: at most ~0.3 s of queueing on
    # the benchmark machine for 1-row and 100-row requests alike.
    max_pending_requests: int = Field(
        default=64, ge=0, validation_alias=AliasChoices("WORKBENCH_MAX_PENDING_REQUESTS",
                                                       "max_pending_requests"))
    max_pending_rows: int = Field(
        default=4096, ge=0, validation_alias=AliasChoices("WORKBENCH_MAX_PENDING_ROWS",
                                                         "max_pending_rows"))
    log_predictions: bool = Field(
        default=True, validation_alias=AliasChoices("WORKBENCH_LOG_PREDICTIONS",
                                                   "log_predictions"))
    # The rows each logged request scored, so fed-back labels can become training data
    # (core.jobs.fresh_data); off saves the extra insert per request in the telemetry flush.
    log_inputs: bool = Field(
        default=True, validation_alias=AliasChoices("WORKBENCH_LOG_INPUTS", "log_inputs"))
    # ... and how long they are kept (request data may be personal data; 0 keeps them)
    input_retention_days: float = Field(
        default=30.0, ge=0, validation_alias="WORKBENCH_INPUT_RETENTION_DAYS")
    default_model: str | None = Field(
        default=None, validation_alias=AliasChoices("WORKBENCH_DEFAULT_MODEL", "default_model"))

    # Who may reach the API (app/request_policy.py) and where webhooks may go (webhook.py).
    # Only the WORKBENCH_ names: a bare ALLOWED_HOSTS (Django's) must not open the server.
    bind_host: str = Field(default="127.0.0.1", validation_alias="WORKBENCH_BIND_HOST")
    allowed_hosts: str = Field(default="", validation_alias="WORKBENCH_ALLOWED_HOSTS")
    allowed_origins: str = Field(default="", validation_alias="WORKBENCH_ALLOWED_ORIGINS")
    webhook_allow_private: bool = Field(default=False,
                                        validation_alias="WORKBENCH_WEBHOOK_ALLOW_PRIVATE")

    # Identity (core/identity, docs/identity/auth.md): the sign-in token's signing secret
    # (unset: a generated file under WORKBENCH_HOME), its lifetime, and the password hash's cost
    # ("cheapest" is for test suites only: it makes stolen hashes cheap to crack).
    jwt_secret: str | None = Field(default=None, validation_alias="WORKBENCH_JWT_SECRET")
    token_ttl_s: int = Field(default=8 * 3600, ge=60, le=30 * 86400,
                             validation_alias="WORKBENCH_TOKEN_TTL_S")
    password_hash_cost: str = Field(default="standard", pattern="^(standard|cheapest)$",
                                    validation_alias="WORKBENCH_PASSWORD_HASH_COST")
    # The artifact store and encryption at rest (core/store/artifacts.py, sealing.py;
    # docs/scale/artifacts.md, docs/identity/encryption.md). Unset: WORKBENCH_HOME/artifacts.
    artifact_url: str | None = Field(default=None, validation_alias="WORKBENCH_ARTIFACT_URL")
    artifact_options: str = Field(default="", validation_alias="WORKBENCH_ARTIFACT_OPTIONS")
    artifact_cache_mb: float = Field(default=1024.0, ge=0,
                                     validation_alias="WORKBENCH_ARTIFACT_CACHE_MB")
    artifact_key: SecretStr | None = Field(default=None, validation_alias="WORKBENCH_ARTIFACT_KEY")
    artifact_old_keys: SecretStr | None = Field(default=None,
                                                validation_alias="WORKBENCH_ARTIFACT_OLD_KEYS")
    # How much one search trial may grow the process's memory before it is stopped and recorded
    # as failed (core/automl/memory.py, docs/automl/memdeadline.md); unset = derived from the
    # machine's free memory and the data's size, 0 = no cap.
    trial_memory_mb: float | None = Field(default=None, ge=0,
                                          validation_alias="WORKBENCH_TRIAL_MEMORY_MB")
    # One search across a Dask cluster (core/automl/cluster.py): tcp://HOST:8786; unset = local
    dask_scheduler: str | None = Field(default=None, validation_alias="WORKBENCH_DASK_SCHEDULER")

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


_KINDS = {float: "a number", int: "a whole number", bool: "true or false", str: "text",
          Path: "a directory path"}
_BOUNDS = (("gt", "greater than"), ("ge", "at least"), ("lt", "less than"),
           ("le", "at most"), ("pattern", "matching"))


def _expected(name: str) -> str:
    """What a field accepts, in words, from its annotation and constraints."""
    field = Settings.model_fields.get(name)
    if field is None:
        return "a valid value"
    annotation = field.annotation
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    kind = _KINDS.get(args[0] if args else annotation, "a valid value")
    limits = [f"{word} {getattr(m, attr)}" for m in field.metadata for attr, word in _BOUNDS
              if getattr(m, attr, None) is not None]
    default = "" if field.default is None else f"; the default is {field.default}"
    return f"{kind}{' ' + ' and '.join(limits) if limits else ''}{default}"


def _env_name(name: str) -> str:
    field = Settings.model_fields.get(name)
    alias = getattr(field, "validation_alias", None) if field else None
    if isinstance(alias, str):
        return alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else name.upper()


def _field_of(loc: str) -> str:
    for name in Settings.model_fields:
        if _env_name(name).lower() == loc.lower() or name == loc:
            return name
    return loc


def settings_problem(exc: ValidationError) -> str:
    """One paragraph naming every bad variable, its value and what it accepts."""
    parts = []
    for e in exc.errors():
        name = _field_of(str(e["loc"][0]) if e.get("loc") else "")
        value: Any = e.get("input")
        parts.append(f"{_env_name(name)}={value!r} is not valid ({e.get('msg', 'invalid')}): "
                     f"it must be {_expected(name)}.")
    return (" ".join(parts) + " Fix it in the environment or in .env, or unset it to use the "
            "default.")


@functools.cache
def get_settings() -> Settings:
    """The settings, parsed once per process (an adapter's composition root parses them
    first); `reset_settings()` re-reads the environment (tests, and a CLI that sets a
    variable for its children). A bad value is a SettingsError (exit 2 in the CLI), never a
    pydantic traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(settings_problem(exc)) from None
    except _SourceError as exc:
        raise SettingsError(f"The settings cannot be read: {exc}. Check the environment "
                            "and .env.") from None


def reset_settings() -> None:
    """Forget the parsed settings so the next `get_settings()` reads the environment again."""
    get_settings.cache_clear()

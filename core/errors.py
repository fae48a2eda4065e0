"""Error types. Every error a user can cause or must act on is a `WorkbenchError`: it carries
a code and a message that says what is wrong, where, and what to do. Adapters map them to exit
code 2 (CLI), 4xx JSON (API) or an error box (UI), never to a traceback.

Only mistakes in the caller's input (`InputError` and its subclasses) are `ValueError`s; a
damaged artifact, an unusable store or a bad setting is not something the caller sent, so
code that catches `ValueError` around a computation never swallows one of those."""

from __future__ import annotations


class WorkbenchError(Exception):
    """An error the workbench explains to whoever asked (code, HTTP status, message)."""

    code = "bad_request"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(WorkbenchError, ValueError):
    """A mistake in the caller's input or request."""


class InvalidDataError(InputError):
    code = "invalid_data"
    http_status = 422


class SchemaMismatchError(InputError):
    code = "schema_mismatch"
    http_status = 422


class NotFoundError(InputError, LookupError):
    code = "not_found"
    http_status = 404


class ConflictError(InputError):
    code = "conflict"
    http_status = 409


class UnauthorizedError(WorkbenchError):
    """No valid credentials: no token, an expired or forged one, a wrong password (401)."""

    code = "unauthorized"
    http_status = 401


class ForbiddenError(WorkbenchError):
    """Valid credentials whose role may not do this; the message names the role needed."""

    code = "forbidden"
    http_status = 403


class ArtifactIntegrityError(WorkbenchError):
    """An artifact on disk does not match the fingerprint recorded when it was written."""

    code = "artifact_integrity"
    http_status = 409


class UntrustedArtifactError(InputError):
    code = "untrusted_artifact"
    http_status = 422


class LibraryMismatchError(WorkbenchError):
    """An artifact saved by another scikit-learn version, not accepted by the user."""

    code = "library_mismatch"
    http_status = 409


class DamagedStoreError(WorkbenchError):
    """The store on disk is in a state the workbench refuses to build on (e.g. an emptied
    database beside the artifacts of an existing registry)."""

    code = "store_damaged"
    http_status = 503


class SettingsError(WorkbenchError):
    """A WORKBENCH_* setting (environment or .env) has a value of the wrong type or range."""

    code = "invalid_settings"
    http_status = 500


class ResourceLimitError(WorkbenchError):
    """A computation stopped at a resource limit (a search trial over its memory cap)."""

    code = "resource_limit"
    http_status = 422


class TryLaterError(Exception):
    """The service cannot answer right now, through no fault of the caller, and retrying later
    can succeed: 503 + Retry-After (API), exit 1 (CLI). Deliberately NOT a WorkbenchError: the
    job worker, the schedulers and the alert loop treat a WorkbenchError as "retrying cannot
    help"."""

    code = "unavailable"
    http_status = 503

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class StorageUnavailableError(TryLaterError):
    """The database or the disk cannot serve the call: locked past the busy timeout, the server
    unreachable, the disk full. `core.store.failures.storage_failure` finds one inside a raw
    driver or OS error."""

    code = "storage_unavailable"


class OverloadedError(TryLaterError):
    """More predictions are pending in this process than its bound: refused at once so the
    callers already queued keep their latency."""

    code = "overloaded"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, retry_after_s)

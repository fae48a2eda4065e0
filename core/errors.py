"""Error types. Every error a user can cause is a `WorkbenchError`: it carries a code and a
message that says what is wrong, where, and what to do. Adapters map them to exit code 2
(CLI), 4xx JSON (API) or an error box (UI), never to a traceback."""

from __future__ import annotations


class WorkbenchError(ValueError):
    """A mistake in the caller's input or request."""

    code = "bad_request"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidDataError(WorkbenchError):
    code = "invalid_data"
    http_status = 422


class SchemaMismatchError(WorkbenchError):
    code = "schema_mismatch"
    http_status = 422


class NotFoundError(WorkbenchError, LookupError):
    code = "not_found"
    http_status = 404


class ConflictError(WorkbenchError):
    code = "conflict"
    http_status = 409


class ArtifactIntegrityError(WorkbenchError):
    """An artifact on disk does not match the fingerprint recorded when it was written."""

    code = "artifact_integrity"
    http_status = 409


class UntrustedArtifactError(WorkbenchError):
    code = "untrusted_artifact"
    http_status = 422


class LibraryMismatchError(WorkbenchError):
    """An artifact saved by another scikit-learn version, not accepted by the user."""

    code = "library_mismatch"
    http_status = 409

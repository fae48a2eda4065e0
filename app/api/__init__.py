"""The REST API (FastAPI): a thin HTTP layer over core.deploy, the registry, jobs and monitoring.

Contract (ARCHITECTURE.md): errors are JSON `{"error": code, "detail": message}`, 4xx for the
caller's mistakes and never a 500 for input; every call but `/health` needs
`Authorization: Bearer TOKEN` when WORKBENCH_API_TOKEN is set; every prediction names the
version that answered (body and `X-Model-Version`) and a request id (`X-Request-Id`).
Before all of that, app/request_policy.py refuses a foreign Host (400), a browser's foreign
Origin on a writing call (403) and a writing call that is not JSON (415; the dataset upload
takes CSV, Parquet or multipart), so no web page can drive the API from the operator's browser.

Layout: `main` (composition root: create_app, app_factory), `deps` (dependencies routes
declare), `errors` (the error contract), `guard` (token and body size, plain ASGI), `wire`
(JSON in and out), `schemas` (request bodies), `routers/` (one APIRouter per area).
"""

from app.api.main import app_factory, create_app
from app.api.version import VERSION

__all__ = ["VERSION", "app_factory", "create_app"]

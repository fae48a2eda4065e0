"""Micro-benchmark: what the ASGI guard's identity work costs per request (docs/identity/auth.md,
"Hot path"), against the alternative of looking the user up in the store on every request.

    .venv/bin/python bench/identity_guard.py            # prints µs per request for each case

Each case calls the guard's `_authorize` on a prediction request's scope in a loop (no HTTP,
no route): single-user mode, WORKBENCH_API_TOKEN, an API key, a user's JWT (the verified
signature cached, the revision checked against the in-process snapshot), the same JWT with
the signature verified every time, and, for comparison, one indexed SELECT of the user by
name on the SQLite store (what a per-request check would add, before its thread hop).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(n: int = 20_000) -> None:
    home = tempfile.mkdtemp(prefix="wb-bench-id-")
    os.environ.update(WORKBENCH_HOME=home, WORKBENCH_PASSWORD_HASH_COST="cheapest")
    os.environ.pop("WORKBENCH_API_TOKEN", None)
    from sqlmodel import Session, select

    from app.api.guard import Guard
    from app.api.main import create_app
    from core.identity.directory import Directory
    from core.identity.keys import create_key
    from core.identity.tokens import sign_in
    from core.identity.users import add_user
    from core.settings import get_settings, reset_settings
    from core.store import Database
    from core.store.identity import User

    def scope(app, auth: str | None) -> dict:
        headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]
        if auth:
            headers.append((b"authorization", f"Bearer {auth}".encode()))
        return {"type": "http", "method": "POST", "path": "/v1/models/churn/predict",
                "headers": headers, "app": app}

    def timed(guard: Guard, sc: dict) -> float:
        async def loop() -> float:
            await guard._authorize(dict(sc))  # warm: snapshot loaded, route rule cached
            start = time.perf_counter()
            for _ in range(n):
                await guard._authorize(dict(sc))
            return (time.perf_counter() - start) / n * 1e6
        return asyncio.run(loop())

    db = Database()
    app = create_app(background=False, db=db)
    settings = get_settings()
    guard = Guard(None, settings, Directory(db, settings.state_refresh_s))
    print(f"single-user mode      {timed(guard, scope(app, None)):7.1f} µs")
    with Session(db.engine) as s:
        add_user("ann", "password-1", role="viewer", session=s)
        key = create_key("ci", role="viewer", session=s).key
        jwt = sign_in("ann", "password-1", session=s).access_token
    print(f"API key               {timed(guard, scope(app, key)):7.1f} µs")
    print(f"JWT (cached verify)   {timed(guard, scope(app, jwt)):7.1f} µs")
    guard._jwts.clear()
    guard._jwts = _NoCache()
    print(f"JWT (verify each)     {timed(guard, scope(app, jwt)):7.1f} µs")
    os.environ["WORKBENCH_API_TOKEN"] = "t" * 32
    reset_settings()
    token_guard = Guard(None, get_settings(), Directory(db, settings.state_refresh_s))
    print(f"WORKBENCH_API_TOKEN   {timed(token_guard, scope(app, 't' * 32)):7.1f} µs")
    with Session(db.engine) as s:
        start = time.perf_counter()
        for _ in range(n // 10):
            s.exec(select(User).where(User.name == "ann")).first()
            s.rollback()
        print(f"per-request SELECT    {(time.perf_counter() - start) / (n // 10) * 1e6:7.1f} "
              "µs (SQLite, same thread; the event loop would add a thread hop)")
    db.dispose()


class _NoCache(dict):
    """A dict that never remembers: every request verifies the signature."""

    def __setitem__(self, key, value) -> None:
        pass


if __name__ == "__main__":
    main()

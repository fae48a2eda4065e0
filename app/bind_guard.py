"""Where `workbench serve` and `workbench ui` may listen (ARCHITECTURE.md "Identity"): on
127.0.0.1 by default; on any other interface only with authentication configured, or when the
operator says `--insecure`. Anyone who can reach an unauthenticated server can deploy, promote,
roll back and train, so an open bind must be a decision, never a default."""

from __future__ import annotations

import ipaddress

from core.errors import WorkbenchError


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1). A name other than localhost
    counts as reachable from elsewhere: what it resolves to can change."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configured_authentication(settings, db) -> str | None:
    """What protects the API, when anything does: WORKBENCH_API_TOKEN, or users or API keys
    in the store (then every call needs a sign-in token or a key); None in single-user mode."""
    if settings.workbench_api_token:
        return "WORKBENCH_API_TOKEN"
    from sqlmodel import Session

    from core.identity.directory import load

    with Session(db.engine) as session:
        snap = load(session)
    return "users" if snap.users else "API keys" if snap.keys else None


def check_bind(host: str, *, command: str, authentication: str | None, insecure: bool) -> bool:
    """Raise (exit 2) for a non-loopback bind without authentication unless `insecure`;
    returns True when the bind is open and unauthenticated (the caller warns).
    `authentication` names what protects the server when it is configured, None if nothing."""
    if is_loopback(host) or authentication:
        return False
    if insecure:
        return True
    how = ("add users (`workbench users add NAME --role admin`) or set WORKBENCH_API_TOKEN "
           "so every call needs `Authorization: Bearer TOKEN`, "
           if command == "workbench serve" else "")
    raise WorkbenchError(
        f"{command} refuses to listen on {host} without authentication: anyone who can reach "
        "that interface could deploy, promote, roll back and train models"
        f"{'' if how else ' (the UI has no login yet)'}. Listen on 127.0.0.1 (the default) "
        f"and reach it through an SSH tunnel or a reverse proxy that authenticates, {how}or, "
        "on a network you trust, pass --insecure.")


def insecure_warning(host: str, port: int) -> str:
    return (f"warning: listening on {host}:{port} WITHOUT authentication (--insecure): anyone "
            "who can reach it can deploy, promote, roll back and train.")

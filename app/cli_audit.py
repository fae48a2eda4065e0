"""`workbench audit`: who changed what, when and why, newest first; the same query and
document as `GET /v1/audit` (`--json` prints it). Registered onto the main CLI by `app.cli`."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli_common import JsonOpt, emit_json, guarded, out, session, table
from core.store.audit import AuditAction

commands = typer.Typer()
_FAMILIES = ", ".join(sorted({a.family for a in AuditAction}))


@commands.command()
@guarded
def audit(
    entity: Annotated[str | None, typer.Option(
        help="model:NAME (and its versions), model:NAME:VERSION, dataset:ID, job:ID, "
             "schedule:ID.")] = None,
    action: Annotated[str | None, typer.Option(
        help=f"A family ({_FAMILIES}) or a full name such as deployment.promote.")] = None,
    actor: Annotated[str | None, typer.Option(help="A user or key name, exactly.")] = None,
    since: Annotated[str | None, typer.Option(
        help="2026-12-02, 2026-12-02T08:00 (UTC), or an age: 30m, 24h, 7d, 2w.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (same forms).")] = None,
    limit: Annotated[int, typer.Option(help="Entries per page (1–1000).")] = 100,
    offset: Annotated[int, typer.Option(help="Skip this many (the next page).")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """List every change with its actor, time, reason and details, newest first."""
    from core.store.audit_log import (
        action_text,
        detail_text,
        entity_text,
        list_audit,
        parse_moment,
    )

    with session() as s:
        page = list_audit(session=s, entity=entity, action=action, actor=actor,
                          since=parse_moment(since) if since else None,
                          until=parse_moment(until, what="until") if until else None,
                          limit=limit, offset=offset)
    if json_out:
        emit_json(page.model_dump(mode="json"))
        return
    if not page.entries:
        out.print("No audit entries match." if page.total or entity or action or actor or since
                  or until else "The audit log is empty: nothing has changed yet.")
        return
    rows = [{"when": f"{e.at:%Y-%m-%d %H:%M:%S} UTC", "who": e.actor,
             "did": f"{action_text(e.action)} ({e.action})", "what": entity_text(e.entity),
             "why": e.reason, "details": detail_text(e.detail)} for e in page.entries]
    shown = page.offset + len(page.entries)
    more = f", next page: --offset {shown}" if shown < page.total else ""
    out.print(table(f"Audit log ({len(page.entries)} of {page.total}, newest first{more})",
                    rows, ["when", "who", "did", "what", "why", "details"]))

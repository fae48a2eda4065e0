"""Stored records as text a person reads: where aliases point ("production → v1") instead of
`{"production":1}`, an audit `detail` as "key: value" phrases, a deployment change as a
sentence. Pure functions (records in, text or frames out), so they are tested without a page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from app.ui.times import when
from core.deploy.public import DeploymentEvent
from core.registry import AliasEventPublic

SEP = " · "


def aliases_text(aliases: Mapping[str, int] | None) -> str:
    """{"production": 1, "staging": 2} → "production → v1, staging → v2" ("–" for none)."""
    if not aliases:
        return "–"
    return ", ".join(f"{alias} → v{version}" for alias, version in aliases.items())


def value_text(value: Any) -> str:
    """One value as a person writes it: yes/no, 0.125 (not 0.12500000000000001), lists
    with commas, a nested mapping as its own phrases in brackets."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        inner = detail_text(value, sep=", ")
        return f"({inner})" if inner else "none"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value) or "none"
    return str(value)


def key_text(key: str) -> str:
    """`from_percent` → "from percent": the stored name, spaced."""
    return key.replace("_", " ")


def detail_text(detail: Mapping[str, Any] | None, *, skip: Iterable[str] = (),
                sep: str = SEP) -> str:
    """An audit row's `detail` as "key: value" phrases; empty values (no metrics recorded)
    and the keys in `skip` (already said elsewhere) are left out."""
    skipped = set(skip)
    phrases = [f"{key_text(k)}: {value_text(v)}" for k, v in (detail or {}).items()
               if k not in skipped and not _empty(v)]
    return sep.join(phrases)


def _empty(value: Any) -> bool:
    """Nothing to say: no value, or a mapping of only such values."""
    if isinstance(value, Mapping):
        return all(_empty(v) for v in value.values())
    return value is None or value == [] or value == ""


def _pct(value: Any) -> str:
    return f"{value:g} %" if isinstance(value, int | float) else "?"


def deployment_change(event: DeploymentEvent) -> tuple[str, set[str]]:
    """What a deployment event did, as a sentence, and the `detail` keys the sentence says
    (the rest goes to the details column)."""
    d, action = event.detail, event.action.removeprefix("deployment.")
    v = d.get("version")
    if action == "initial":
        return (f"version {v} deployed as production (100 % of traffic)",
                {"version", "percent", "mode", "previous"})
    if action == "candidate":
        prev = d.get("previous") or {}
        text = (f"version {v} deployed as {d.get('mode', 'canary')} candidate at "
                f"{_pct(d.get('percent'))}")
        if prev.get("candidate") not in (None, v):
            text += f", replacing candidate version {prev['candidate']}"
        return text, {"version", "percent", "mode", "previous"}
    if action == "percent":
        return (f"candidate version {v}: traffic {_pct(d.get('from_percent'))} → "
                f"{_pct(d.get('to_percent'))}", {"version", "from_percent", "to_percent"})
    if action == "promote":
        was = d.get("from_version")
        return (f"version {v} promoted to production at {_pct(d.get('percent'))}"
                + (f" (was version {was})" if was is not None else ""),
                {"version", "from_version", "percent"})
    if action == "runtime":
        return f"version {v}: runtime {d.get('runtime')}", {"version", "runtime"}
    if action == "rollback":
        how = "automatically rolled back" if d.get("automatic") else "rolled back"
        return (f"candidate version {v} {how}: 100 % to version {d.get('stable')}",
                {"version", "stable", "automatic", "previous"})
    return key_text(action), set()


def deployment_history_frame(events: list[DeploymentEvent]) -> pd.DataFrame:
    """The Deployments page's history table: when, what changed, by whom, why, and the rest
    of the detail (e.g. the live figures a guard rail acted on) as phrases."""
    rows = []
    for e in events:
        change, said = deployment_change(e)
        rows.append({"when": when(e.at, seconds=True), "change": change, "by": e.actor,
                     "why": e.reason, "details": detail_text(e.detail, skip=said)})
    return pd.DataFrame(rows, columns=["when", "change", "by", "why", "details"])


def alias_move_text(event: AliasEventPublic) -> str:
    """One alias move without markup: "production: version 1 → version 2"."""
    old, new = event.from_version, event.to_version
    if new is None:
        return f"{event.alias} removed (was version {old})"
    if old is None:
        return f"{event.alias} set to version {new}"
    return f"{event.alias}: version {old} → version {new}"


def alias_history_frame(events: list[AliasEventPublic]) -> pd.DataFrame:
    """Alias moves, newest first, one readable row each."""
    rows = [{"when": when(e.at, seconds=True), "change": alias_move_text(e),
             "by": e.actor or "unknown", "why": e.reason} for e in reversed(events)]
    return pd.DataFrame(rows, columns=["when", "change", "by", "why"])

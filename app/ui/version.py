"""Views of one registered model version (pure functions: registry records in, text/frames
out)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from app.ui.times import when
from core.enums import Stage
from core.registry import PRODUCTION, AliasEventPublic, VersionPublic


def default_version(versions: list[VersionPublic]) -> int:
    """The version a link without `version=` opens: production, else the latest active one."""
    for v in versions:
        if PRODUCTION in v.aliases:
            return v.version
    active = [v.version for v in versions if not v.archived]
    return (active or [v.version for v in versions])[-1]


def version_label(v: VersionPublic) -> str:
    tags = f" ({', '.join(v.aliases)})" if v.aliases else ""
    stage = f" · {v.stage}" if v.stage != Stage.NONE else ""
    return f"version {v.version} · v{v.semver}{tags}{stage}"


def stage_blocker(v: VersionPublic, target: Stage, *, stable: int | None,
                  candidate: int | None) -> str | None:
    """Why moving `v` to `target` is not allowed (the rules of core.usecases.stages, worded
    for a disabled button's help), or None when it is."""
    if v.stage == target:
        return f"Version {v.version} is already in {target}."
    if target == Stage.PRODUCTION and v.stage == Stage.ARCHIVED:
        return (f"Version {v.version} is Archived and never takes traffic: move it to "
                "Staging first, then to Production.")
    if v.stage == Stage.PRODUCTION and stable == v.version:
        return (f"Version {v.version} serves the deployment's traffic: move another version "
                "to Production first (or deploy one as a candidate and promote it).")
    if target == Stage.ARCHIVED and candidate == v.version:
        return (f"Version {v.version} is the deployment's candidate and takes part of the "
                "traffic: roll it back on the Deployments page first.")
    return None


def key_value_frame(values: dict[str, Any], key: str, value: str) -> pd.DataFrame:
    """Two text columns, so mixed values (numbers, lists, None) show as written."""
    return pd.DataFrame([{key: k, value: cell_text(v)} for k, v in values.items()],
                        columns=[key, value])


def schema_frame(schema: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{k: cell_text(v) for k, v in col.items()} for col in schema])


def cell_text(value: Any) -> str:
    """A cell as text: mixed values (numbers, lists, None) in one column read as written."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell_text(v)}" for k, v in value.items()) or "–"
    return str(value)


def alias_event_text(event: AliasEventPublic) -> str:
    """One alias move as a sentence: when, which alias, from where to where, who and why."""
    at = when(event.at, seconds=True)
    alias, old, new = event.alias, event.from_version, event.to_version
    if new is None:
        move = f"**{alias}** removed (was version {old})"
    elif old is None:
        move = f"**{alias}** set to version {new}"
    else:
        move = f"**{alias}** moved from version {old} to version {new}"
    why = f": “{event.reason}”" if event.reason else ""
    return f"{at} — {move} by {event.actor or 'unknown'}{why}"

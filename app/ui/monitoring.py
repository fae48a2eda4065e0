"""What the Monitor, Deployments and Home pages show of live serving: the time-series charts
over a whole window, drift numbers a person can read (p-values, effect sizes on a bounded
axis) and the open-alerts panel linking to where alerts are acknowledged."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from app.ui.links import page_link
from core.deploy.enums import AlertState
from core.monitor.public import AlertPublic, LiveSeries

P_FLOOR = 0.0001  # smaller p-values read "< 0.0001": 80 zeros say nothing more
EFFECT_CAP = 1.0  # effect sizes past this are drawn at the cap (raw value in the tooltip)
UTC_AXIS = alt.Axis(format="%H:%M", labelOverlap=True)
STEP_TEXT = {"10s": "10 seconds", "1min": "minute", "15min": "15 minutes", "2h": "2 hours"}


def step_text(step: str) -> str:
    """A series step (a pandas frequency) in words: '1min' → 'minute'."""
    return STEP_TEXT.get(step, step)


def fmt_p(p: float | None) -> str:
    """A p-value as text: '< 0.0001' below the floor, else 3 significant digits."""
    if p is None or p != p:
        return "–"
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:.3g}"


def fmt_number(x: float | None) -> str:
    """3 significant digits, thousands separated for big ones (an effect of 18,000,000)."""
    if x is None or x != x:
        return "–"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def drift_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Drift results as a table to read: p-value, statistic, effect size and PSI as text."""
    frame = pd.DataFrame(results)
    if frame.empty:
        return frame
    frame["p_value"] = frame["p_value"].map(fmt_p)
    for col in ("statistic", "effect_size", "psi", "threshold"):
        if col in frame:
            frame[col] = frame[col].map(fmt_number)
    return frame


def drift_chart(results: list[dict[str, Any]]) -> alt.Chart:
    """Effect size per feature on a bounded axis: bars past EFFECT_CAP stop at the cap and
    are marked '›' (one feature of 18,000,000 no longer flattens every other bar to zero);
    the tooltip has the raw value and the p-value as text."""
    frame = pd.DataFrame(results)
    raw = frame["effect_size"].astype(float)
    frame["shown"] = raw.clip(lower=0, upper=EFFECT_CAP).fillna(0.0)
    frame["clipped"] = raw > EFFECT_CAP
    frame["effect size"] = raw.map(fmt_number)
    frame["p-value"] = frame["p_value"].map(fmt_p)
    top = min(EFFECT_CAP, max(float(raw.max()) if raw.notna().any() else 0.0, 0.05))
    clipped = bool(frame["clipped"].any())
    title = f"effect size (bars stop at {EFFECT_CAP:g}; raw value in the tooltip)" if clipped \
        else "effect size"
    base = alt.Chart(frame).encode(
        y=alt.Y("feature:N", sort=alt.EncodingSortField("shown", order="descending"),
                title=None),
        tooltip=["feature:N", "test:N", "effect size:N", "p-value:N", "drifted:N", "note:N"])
    bars = base.mark_bar().encode(
        x=alt.X("shown:Q", title=title, scale=alt.Scale(domain=[0, top], clamp=True)),
        color=alt.Color("drifted:N", scale=alt.Scale(domain=[False, True],
                                                     range=["#9ab", "#d33"])))
    marks = base.transform_filter("datum.clipped").mark_text(
        align="right", dx=-3, color="white", fontWeight="bold").encode(
        x="shown:Q", text=alt.value("›"))
    return (bars + marks).properties(height=max(120, 18 * len(frame)))


def series_frame(series: LiveSeries) -> pd.DataFrame:
    frame = pd.DataFrame([p.model_dump() for p in series.points])
    if not frame.empty:
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        frame["version"] = frame["version"].astype(str)
    return frame


def _x(series: LiveSeries) -> alt.X:
    return alt.X("at:T", title="time (UTC)", axis=UTC_AXIS,
                 scale=alt.Scale(type="utc", domain=[series.start.isoformat(),
                                                     series.end.isoformat()]))


def live_charts(series: LiveSeries) -> dict[str, alt.Chart]:
    """One chart per figure over the whole window, a line per version: requests per step,
    error rate, latency p50 (solid) and p95 (dashed), and the live score with each
    version's validation score as a dashed rule, when labels were fed back."""
    frame = series_frame(series)
    step = step_text(series.step)
    version = alt.Color("version:N", title="version")
    when = alt.Tooltip("at:T", title="step start (UTC)", format="%Y-%m-%d %H:%M:%S",
                       formatType="utc")
    charts = {
        f"Requests per {step}": alt.Chart(frame).mark_line(point=True).encode(
            x=_x(series), y=alt.Y("requests:Q", title=f"requests per {step}"), color=version,
            tooltip=[when, "version:N", "requests:Q", "failed:Q", "rejected:Q"]),
        "Error rate": alt.Chart(frame).mark_line(point=True).encode(
            x=_x(series), y=alt.Y("error_rate:Q", title="error rate", axis=alt.Axis(
                format=".1%")), color=version,
            tooltip=[when, "version:N", alt.Tooltip("error_rate:Q", format=".1%"),
                     "requests:Q"]),
    }
    latency = frame.melt(id_vars=["at", "version"], value_vars=["latency_p50_ms",
                                                               "latency_p95_ms"],
                         var_name="quantile", value_name="ms")
    latency["quantile"] = latency["quantile"].map({"latency_p50_ms": "p50",
                                                   "latency_p95_ms": "p95"})
    charts["Latency p50 / p95"] = alt.Chart(latency).mark_line(point=True).encode(
        x=_x(series), y=alt.Y("ms:Q", title="latency (ms)"), color=version,
        strokeDash=alt.StrokeDash("quantile:N", title="quantile"),
        tooltip=[when, "version:N", "quantile:N", "ms:Q"])
    if not frame.empty and frame["labelled"].sum() > 0:
        score = alt.Chart(frame).mark_line(point=True).encode(
            x=_x(series), y=alt.Y("score:Q", title=f"live {series.metric}",
                                  scale=alt.Scale(zero=False)), color=version,
            tooltip=[when, "version:N", alt.Tooltip("score:Q", format=".4f"),
                     alt.Tooltip("labelled:Q", title="labelled predictions")])
        layers = [score]
        if series.validation:
            refs = pd.DataFrame([{"version": str(v), "validation": s}
                                 for v, s in series.validation.items()])
            layers.append(alt.Chart(refs).mark_rule(strokeDash=[4, 4]).encode(
                y="validation:Q", color=version,
                tooltip=["version:N", alt.Tooltip("validation:Q", format=".4f",
                                                  title=f"validation {series.metric}")]))
        charts[f"Live {series.metric} (from feedback)"] = alt.layer(*layers)
    return {k: c.properties(height=220) for k, c in charts.items()}


def alerts_frame(alerts: list[AlertPublic], with_model: bool = False) -> pd.DataFrame:
    rows = [{**({"model": a.model} if with_model else {}), "id": a.id,
             "version": a.version, "kind": a.kind.value, "feature": a.feature or "",
             "severity": a.severity.value, "state": a.state.value, "message": a.message,
             "action taken": a.action or "",
             "opened": (a.opened_at or a.first_seen_at).strftime("%Y-%m-%d %H:%M UTC")}
            for a in alerts]
    return pd.DataFrame(rows)


def alerts_panel(alerts: list[AlertPublic], model: str | None = None) -> None:
    """Open alerts (count and list) with a link to the Monitor page, where they are
    acknowledged; `model` narrows the link to one model."""
    open_ = [a for a in alerts if a.state == AlertState.OPEN]
    if not open_:
        st.success("No open alerts.", icon=":material/check_circle:")
        return
    st.warning(f"{len(open_)} open alert{'s' if len(open_) != 1 else ''}: acknowledge "
               "them on the Monitor page once you have looked.", icon=":material/warning:")
    st.dataframe(alerts_frame(open_, with_model=model is None), hide_index=True,
                 width="stretch")
    models = [model] if model else sorted({a.model for a in open_})
    for name in models:
        page_link("pages/monitor.py", f"Open {name}'s alerts on Monitor",
                  query_params={"model": name}, icon=":material/monitor_heart:")


__all__ = ["alerts_frame", "alerts_panel", "drift_chart", "drift_frame", "fmt_number", "fmt_p",
           "live_charts", "series_frame", "step_text"]

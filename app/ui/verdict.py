"""The A/B verdict on the Deployments page: one line saying which version is better (or how
many more labels are needed), the two measures side by side, and the interval on their
difference drawn against 0, from the scorecard `GET /v1/models/{name}/scorecard` answers."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app.ui.layout import CARD_WIDTH, responsive_columns
from app.ui.times import when
from core.deploy.enums import VerdictOutcome
from core.deploy.feedback import Scorecard
from core.deploy.verdict import Verdict

BOXES = {VerdictOutcome.CANDIDATE: st.success, VerdictOutcome.STABLE: st.warning,
         VerdictOutcome.UNDECIDED: st.info, VerdictOutcome.NEEDS_LABELS: st.info}
ICONS = {VerdictOutcome.CANDIDATE: ":material/trending_up:",
         VerdictOutcome.STABLE: ":material/trending_down:",
         VerdictOutcome.UNDECIDED: ":material/balance:",
         VerdictOutcome.NEEDS_LABELS: ":material/hourglass_empty:"}
COLOURS = {VerdictOutcome.CANDIDATE: "#2e7d32", VerdictOutcome.STABLE: "#c62828",
           VerdictOutcome.UNDECIDED: "#757575", VerdictOutcome.NEEDS_LABELS: "#9e9e9e"}


def _value(v: Verdict, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    if v.measure == "accuracy":
        return f"{value * 100:+.1f} pts" if signed else f"{value:.1%}"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def interval_chart(v: Verdict) -> alt.LayerChart:
    """The difference candidate − stable as a point with its interval, against a rule at 0
    (the interval crossing the rule is "no clear winner"); labelled on which side is
    better."""
    scale = 100 if v.measure == "accuracy" else 1
    unit = " (points)" if v.measure == "accuracy" else ""
    frame = pd.DataFrame([{"what": "candidate − stable", "difference": v.difference * scale,
                           "low": v.low * scale, "high": v.high * scale,
                           "outcome": str(v.outcome)}])
    better = "→ candidate better" if v.higher_is_better else "← candidate better"
    title = f"{v.measure} difference{unit}   {better}"
    x = alt.X("difference:Q", title=title)
    colour = alt.value(COLOURS[v.outcome])
    base = alt.Chart(frame).encode(y=alt.Y("what:N", title=None))
    bar = base.mark_rule(strokeWidth=3).encode(x=alt.X("low:Q", title=title),
                                               x2="high:Q", color=colour)
    point = base.mark_point(filled=True, size=140).encode(
        x=x, color=colour,
        tooltip=[alt.Tooltip("difference:Q", format=".3f"), alt.Tooltip("low:Q", format=".3f"),
                 alt.Tooltip("high:Q", format=".3f")])
    zero = alt.Chart(pd.DataFrame({"what": ["candidate − stable"], "zero": [0.0]}))
    rule = zero.mark_tick(color="#444", thickness=2, size=60).encode(
        x="zero:Q", y=alt.Y("what:N", title=None),
        tooltip=[alt.Tooltip("zero:Q", title="no difference")])
    return (rule + bar + point).properties(height=110)


def verdict_panel(card: Scorecard, *, model: str) -> None:
    """The verdict section: nothing to judge without a candidate, else the line, the
    figures and (once both sides have labels) the interval chart."""
    v = card.verdict
    if v is None:
        st.caption("No candidate: deploy a version as a canary or a shadow to compare it "
                   "with stable on labelled feedback.")
        return
    BOXES[v.outcome](v.message, icon=ICONS[v.outcome])
    if v.outcome is VerdictOutcome.NEEDS_LABELS:
        have = v.stable_labelled + (v.candidate_labelled
                                    if v.mode == "canary" else 0)
        st.progress(min(1.0, have / (have + v.needed)) if have + v.needed else 1.0,
                    text=f"{have} of {have + v.needed} labelled predictions the rule needs")
    c1, c2, c3 = responsive_columns(3, min_width=CARD_WIDTH, key="verdict_cards")
    c1.metric(f"Stable {v.stable}: {v.measure}", _value(v, v.stable_value),
              help=f"{v.stable_labelled} labelled predictions")
    c2.metric(f"Candidate {v.candidate}: {v.measure}", _value(v, v.candidate_value),
              help=f"{v.candidate_labelled} labelled predictions")
    interval = (f"[{_value(v, v.low, True)}, {_value(v, v.high, True)}]"
                if v.low is not None else "")
    c3.metric("Difference (candidate − stable)", _value(v, v.difference, True),
              help=f"{v.confidence:.0%} interval {interval}" if interval else None)
    if v.difference is not None:
        st.altair_chart(interval_chart(v), width="stretch", key="verdict_chart")
    counted = f"since {when(v.since)}, when version {v.candidate} became the candidate" \
        if v.since else "over all labelled predictions"
    st.caption(
        f"{v.confidence:.0%} interval by the {v.method}, {counted}; a verdict needs at "
        f"least {v.min_labels} labelled predictions "
        f"{'scored by both versions' if v.mode == 'shadow' else 'per version'}. Labels "
        f"come from feedback: the Monitor page's upload, or `POST /v1/models/{model}/"
        "feedback`.")

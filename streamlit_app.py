"""ML Workbench: the Streamlit entry point (navigation and shared frame)."""

from __future__ import annotations

import streamlit as st

from app.ui.signin import require_sign_in
from core.settings import get_settings

st.set_page_config(page_title="ML Workbench", page_icon=":material/insights:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/table:", url_path="data"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:",
            url_path="train"),
    st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:",
            url_path="leaderboard"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:",
            url_path="compare"),
    st.Page("pages/runs.py", title="Runs", icon=":material/science:", url_path="runs"),
    st.Page("pages/registry.py", title="Registry", icon=":material/inventory_2:",
            url_path="registry"),
    st.Page("pages/predict.py", title="Predict", icon=":material/online_prediction:",
            url_path="predict"),
    st.Page("pages/version.py", title="Model version", icon=":material/deployed_code:",
            url_path="version"),
    st.Page("pages/deployments.py", title="Deployments", icon=":material/rocket_launch:",
            url_path="deployments"),
    st.Page("pages/monitor.py", title="Monitor", icon=":material/monitoring:",
            url_path="monitor"),
    st.Page("pages/jobs.py", title="Jobs", icon=":material/work_history:", url_path="jobs"),
    st.Page("pages/audit.py", title="Audit", icon=":material/history:", url_path="audit"),
]
require_sign_in(entry_point=True)  # with users: the form alone until signed in
page = st.navigation(PAGES)  # first: the sidebar shows these titles while the demo seeds
if get_settings().demo:
    from app.ui.demo import prepare_demo

    prepare_demo(str(get_settings().home))
page.run()

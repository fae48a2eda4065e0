"""AppTest: the app's sign-in and role gates as people meet them.

A viewer walks every page: each action button (and upload, and the drift-alert switch) is
disabled with the tooltip naming the role needed, and every read still works (tables, charts,
a prediction). An editor's actions are enabled, and what the editor changes is audited under
the editor's name. The session ends when the token expires, the user is removed or the role
changes, each time with the reason on the sign-in form."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.ui.signin import TOKEN
from core.deploy import deployments as dep
from core.deploy.guard_alert import report
from core.identity import Principal, PrincipalKind, Role, tokens
from core.identity.users import add_user, remove_user, set_role
from core.jobs.schedules import create_schedule
from core.store.audit_log import list_audit
from tests.factories import ROOT, register, store_session, submit, training_frame

PASSWORD = "correct horse battery staple"
NEEDS_EDITOR = "Needs the editor role — you are a viewer"
# what viewers may do: read, predict, and what goes with predicting (app/api/roles.py)
READS = {"Sign out", "Predict this row", "Run simulator", "Check drift"}
READ_UPLOADS = ("Upload rows to predict",)
PAGES = ["pages/home.py", "pages/data.py", "pages/train.py", "pages/leaderboard.py",
         "pages/compare.py", "pages/runs.py", "pages/registry.py", "pages/version.py",
         "pages/predict.py", "pages/deployments.py", "pages/monitor.py", "pages/jobs.py",
         "pages/audit.py"]


@pytest.fixture
def team(home: Path) -> Path:
    """churn 1 stable with 2 as a canary, an open alert, a spare dataset and one a pending
    job trains on, a schedule; a viewer (vera) and an editor (eddie)."""
    from core.data.datasets import ingest_bytes

    register()
    register(seed=1)
    X, y = training_frame()
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
        dep.deploy("churn", 2, percent=10, session=s)
        report("churn", 2, "error rate over the guard rail", session=s)
        s.commit()
        ds = ingest_bytes(X.assign(y=y).to_csv(index=False).encode(), "visits.csv", session=s)
        ingest_bytes(X.head(50).to_csv(index=False).encode(), "spare.csv", session=s)
        submit(s, ds.dataset.id, "y")
        create_schedule("churn", "02:00", session=s)
        add_user("vera", PASSWORD, role="viewer", session=s)
        add_user("eddie", PASSWORD, role="editor", session=s)
    return home


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def _sign_in(name: str, password: str = PASSWORD) -> AppTest:
    at = _app().run()
    assert [t.value for t in at.title] == ["Sign in to ML Workbench"]
    at.text_input(key="signin_user").input(name)
    at.text_input(key="signin_password").input(password)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _ok(at: AppTest, page: str) -> None:
    assert not at.exception, (page, [e.value for e in at.exception])
    # the factory's versions carry no training profile: drift says so, as for anyone
    errors = [e.value for e in at.error if "has no reference profile" not in e.value]
    assert not errors, (page, errors)


def test_a_viewer_reads_everything_and_every_action_is_disabled_with_the_role_needed(
        team: Path) -> None:
    at = _sign_in("vera")
    assert "Signed in as **vera**" in " ".join(m.value for m in at.sidebar.markdown)
    seen: set[str] = set()
    for page in PAGES:
        at.switch_page(page).run()
        _ok(at, page)
        if page == "pages/data.py":  # "Load sample" shows once a sample is picked
            next(s for s in at.selectbox if s.label == "…or use a sample").select_index(1).run()
        for button in at.button:
            if button.label in READS:
                assert not button.disabled, (page, button.label)
                continue
            seen.add(button.label)
            assert button.disabled and button.help == NEEDS_EDITOR, (page, button.label)
        for upload in at.get("file_uploader"):
            if upload.proto.label.startswith(READ_UPLOADS):
                continue
            assert upload.proto.disabled and upload.proto.help == NEEDS_EDITOR, page
        for toggle in at.toggle:
            if toggle.label.startswith("Raise DRIFT alerts"):
                assert toggle.disabled, page
    assert {"Deploy", "Promote candidate", "Rollback", "Next step: 50%", "Acknowledge",
            "Start training", "Load sample", "Move alias",
            "Set alias", "Cancel", "Pause schedule", "Delete schedule", "Add schedule",
            "Delete dataset 2 (spare)", "Pause", "Resume"} <= seen, seen
    at.switch_page("pages/deployments.py").run()  # the reads a viewer came for
    assert at.get("metric")[0].value == "1" and at.dataframe
    at.switch_page("pages/predict.py").run()
    next(b for b in at.button if b.label == "Predict this row").click().run()
    _ok(at, "predict")
    assert any(m.label == "Predicted y" for m in at.get("metric"))


def test_an_editor_acts_and_the_audit_log_names_the_editor(team: Path) -> None:
    at = _sign_in("eddie")
    at.switch_page("pages/deployments.py").run()
    promote = next(b for b in at.button if b.label == "Promote candidate")
    assert not promote.disabled
    promote.click().run()
    _ok(at, "deployments")
    with store_session() as s:
        (entry,) = list_audit(session=s, action="deployment.promote").entries
    assert entry.actor == "eddie"


def test_the_session_ends_when_the_user_is_removed_or_the_role_changes(team: Path) -> None:
    at = _sign_in("eddie")
    with store_session() as s:
        set_role("eddie", "viewer", session=s)
    at.switch_page("pages/jobs.py").run()
    assert [t.value for t in at.title] == ["Sign in to ML Workbench"]
    assert "role changed from editor to viewer" in at.info[0].value
    assert not at.dataframe  # nothing but the form
    at = _sign_in("vera")
    with store_session() as s:
        remove_user("vera", session=s)
    at.run()
    assert "was removed" in at.info[0].value


def test_removing_the_last_user_keeps_the_app_closed(team: Path) -> None:
    """As on the API: removing people never opens the app to everyone as an admin."""
    with store_session() as s:
        remove_user("vera", session=s)
        remove_user("eddie", session=s)
    at = _app().run()
    assert [t.value for t in at.title] == ["Sign in to ML Workbench"]
    assert "workbench users add" in at.info[0].value


def test_an_expired_token_and_a_wrong_password_show_the_form_again(team: Path) -> None:
    at = _sign_in("vera", "not the password at all")
    assert at.error[0].value == "Wrong user name or password."
    assert [t.value for t in at.title] == ["Sign in to ML Workbench"]
    with store_session() as s:
        from core.identity import directory

        rev = directory.load(s).users["vera"].revision
    old = tokens.issue(Principal("vera", Role.VIEWER, kind=PrincipalKind.USER), rev,
                       now=int(time.time()) - 10 * 24 * 3600).access_token
    at.session_state[TOKEN] = old
    at.run()
    assert "Your session expired" in at.info[0].value


def test_sign_out_returns_to_the_form(team: Path) -> None:
    at = _sign_in("vera")
    at.sidebar.button(key="sign_out").click().run()
    assert [t.value for t in at.title] == ["Sign in to ML Workbench"]
    assert at.info[0].value == "Signed out."

"""AppTest: the Audit page lists every change newest first in words (who, did what, to what,
when in UTC, why, details), filters by action family, person and entity (also from a deep
link), and says what to do on an empty log."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.deploy import deployments as dep
from tests.factories import ROOT, register, store_session


def _audit(**query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("pages/audit.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_audit_page_reads_as_sentences_and_filters(home: Path) -> None:
    register()
    register(seed=1)
    with store_session() as s:
        dep.deploy("churn", 1, session=s, actor="alice", reason="first release")
        dep.deploy("churn", 2, percent=10, session=s, actor="bob", reason="try v2")
    at = _audit()
    table = at.dataframe[0].value
    newest = table.iloc[0]
    assert (newest["who"], newest["did"], newest["what"], newest["why"]) == (
        "bob", "deployed a candidate", "churn", "try v2")
    assert newest["when"].endswith(" UTC") and "percent 10" in newest["details"]
    assert {"registered a version", "moved an alias"} <= set(table["did"])
    assert "Entries 1–" in " ".join(c.value for c in at.caption)

    at.selectbox(key="audit_action").set_value("deployment").run()
    assert at.dataframe[0].value["did"].tolist() == ["deployed a candidate",
                                                      "deployed a first version"]
    at.selectbox(key="audit_actor").set_value("alice").run()
    assert at.dataframe[0].value["why"].tolist() == ["first release"]
    at.selectbox(key="audit_actor").set_value("bob").run()
    at.selectbox(key="audit_action").set_value("alias.move").run()
    assert not at.dataframe and "No entries match" in at.info[0].value

    linked = _audit(entity="model:churn:2")  # a version's own history
    assert set(linked.dataframe[0].value["what"]) == {"churn version 2"}


def test_an_empty_log_says_what_creates_entries(home: Path) -> None:
    at = _audit()
    assert "nothing has changed yet" in at.info[0].value
    assert any("data" in link.proto.page for link in at.get("page_link"))

"""AppTest: the Registry page shows each version's stage and semantic version, moves a stage
only after a confirmation (with a reason), and disables a move that is not allowed with a help
text saying why."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.deploy import deployments as dep
from core.enums import Stage
from core.registry import list_versions
from tests.factories import ROOT, register, store_session


def _registry() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("pages/registry.py").run()
    assert not at.exception
    return at


def _stages() -> dict[int, str]:
    with store_session() as s:
        return {v.version: v.stage for v in list_versions("churn", session=s)}


def _choose(at: AppTest, version: int, target: Stage) -> None:
    at.selectbox(key="stage_version").set_value(version)
    at.selectbox(key="stage_target").set_value(target)
    at.run()


def test_registry_moves_a_stage_after_a_confirmation(home: Path) -> None:
    register()
    register(seed=1)
    at = _registry()
    table = at.dataframe[0].value
    assert table[["version", "semver", "stage"]].values.tolist() == [
        [1, "v1.0.0", "None"], [2, "v1.0.1", "None"]]
    _choose(at, 1, Stage.PRODUCTION)
    at.text_input(key="stage_reason").set_value("passed review")
    at.button(key="stage_move").click().run()
    assert "Move **churn:1** (v1.0.0) from None to **Production**?" in at.warning[0].value
    assert _stages() == {1: "None", 2: "None"}  # nothing before the confirmation
    at.button(key="stage_confirm").click().run()
    assert not at.exception
    assert _stages() == {1: "Production", 2: "None"}
    assert at.dataframe[0].value["stage"].tolist() == ["Production", "None"]

    _choose(at, 2, Stage.PRODUCTION)  # replacing production offers to archive it
    at.checkbox(key="stage_archive_existing").check().run()
    at.button(key="stage_move").click().run()
    assert "version 1 is Archived" in at.warning[0].value
    at.button(key="stage_cancel").click().run()
    assert _stages() == {1: "Production", 2: "None"}  # cancelled: nothing moved


def test_moves_that_are_not_allowed_are_disabled_with_the_reason(home: Path) -> None:
    register()
    register(seed=1)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
        dep.deploy("churn", 2, 10, session=s)
    at = _registry()
    _choose(at, 1, Stage.ARCHIVED)
    move = at.button(key="stage_move")
    assert move.disabled and "serves the deployment's traffic" in move.help
    _choose(at, 2, Stage.ARCHIVED)
    move = at.button(key="stage_move")
    assert move.disabled and "roll it back" in move.help
    _choose(at, 2, Stage.STAGING)
    assert not at.button(key="stage_move").disabled


def test_a_confirmation_after_another_move_is_refused_not_applied(home: Path) -> None:
    from core.usecases.stages import set_stage

    for seed in range(3):
        register(seed=seed)
    at = _registry()
    _choose(at, 2, Stage.PRODUCTION)
    at.button(key="stage_move").click().run()
    with store_session() as s:  # someone else, meanwhile
        set_stage("churn", 3, "Production", session=s)
    at.button(key="stage_confirm").click().run()
    assert not at.exception
    assert "another request" in at.error[0].value and "Nothing was moved" in at.error[0].value
    assert _stages() == {1: "None", 2: "None", 3: "Production"}

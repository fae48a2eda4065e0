"""AppTest: every page renders with and without data and shows no exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import DATA, ROOT

PAGES = ["pages/home.py", "pages/data.py", "pages/registry.py"]


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_on_an_empty_store(page: str, home: Path) -> None:
    at = _app().run()
    at.switch_page(page).run()
    assert not at.exception
    assert at.info, "an empty store shows what to do next"


def test_pages_show_models_and_data(home: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import app

    result = CliRunner().invoke(app, ["automl", str(DATA / "wine.csv"), "--target", "cultivar",
                                      "--budget", "2"])
    assert result.exit_code == 0, result.output
    at = _app().run()
    assert not at.exception
    assert at.dataframe[0].value["name"].tolist() == ["wine"]
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert any("multiclass" in m.value for m in at.markdown)
    at.switch_page("pages/registry.py").run()
    assert not at.exception
    at.text_input[0].set_value("staging")
    at.button[0].click().run()
    assert not at.exception
    assert at.dataframe[0].value["aliases"].tolist() == ["staging"]
    assert at.dataframe[1].value["to_version"].tolist() == [1]  # the alias history
    at.text_input[0].set_value("9 bad")
    at.button[0].click().run()
    assert "not a valid alias" in at.error[0].value


def test_bad_upload_shows_an_error_not_a_traceback(home: Path) -> None:
    at = _app().run()
    at.switch_page("pages/data.py").run()
    at.file_uploader[0].upload("broken.csv", b"a,a\n1,2\n", "text/csv").run()
    assert not at.exception
    assert "the column name 'a' appears twice" in at.error[0].value
    at.selectbox[0].set_value("wine.csv").run()
    at.button[0].click().run()
    assert not at.exception
    assert "Detected **multiclass**" in " ".join(m.value for m in at.markdown)

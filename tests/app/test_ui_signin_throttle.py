"""The app's sign-in form backs off as POST /v1/auth/token does: after five wrong passwords
for a user name, the right one is refused too, with how long to wait."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.identity.users import add_user
from tests.factories import store_session

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


def _try(password: str, name: str = "throttled-tess") -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.text_input(key="signin_user").input(name)
    at.text_input(key="signin_password").input(password)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow  # six full runs of the app (about 10 s on a quiet machine)
def test_the_form_backs_off_after_repeated_failures(home: Path) -> None:
    with store_session() as s:
        add_user("throttled-tess", PASSWORD, role="viewer", session=s)
    for _ in range(5):
        assert _try("wrong password!").error[0].value == "Wrong user name or password."
    said = _try(PASSWORD).error[0].value
    assert said.startswith("Too many failed sign-ins") and "try again in" in said

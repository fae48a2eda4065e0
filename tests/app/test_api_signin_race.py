"""Concurrent wrong guesses cannot outrun the sign-in back-off: each attempt is counted
before its password is verified (and released if it succeeds), so a burst of 40 guesses
sent at once reaches the password check at most five times; the others get 429."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.identity.throttle import MAX_FAILURES
from tests.factories import race, signin_client


@pytest.fixture
def client(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with signin_client(monkeypatch) as c:
        yield c


def test_forty_concurrent_wrong_guesses_verify_at_most_five(client: TestClient) -> None:
    def guess() -> int:
        return client.post("/v1/auth/token",
                           json={"username": "ann", "password": "wrong-password"}).status_code

    answers = race(*[guess] * 40)
    assert set(answers) <= {401, 429}, answers
    assert answers.count(401) <= MAX_FAILURES, answers

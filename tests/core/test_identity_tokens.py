"""Sign-in tokens: HS256 only, exp/iat/iss/sub required, the signature covering every claim,
and a token only as good as its user's current revision."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path

import jwt
import pytest

from core.errors import SettingsError, UnauthorizedError
from core.identity import Principal, PrincipalKind, Role
from core.identity.directory import Snapshot, UserEntry
from core.identity.tokens import ISSUER, SECRET_FILE, decode, issue, signing_secret

ANN = Principal(actor="ann", role=Role.VIEWER, workspace="team-a", kind=PrincipalKind.USER)


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def test_a_token_carries_the_user_workspace_role_and_revision(home: Path) -> None:
    issued = issue(ANN, 3)
    claims = decode(issued.access_token)
    assert (claims.sub, claims.role, claims.workspace, claims.rev) == ("ann", Role.VIEWER,
                                                                        "team-a", 3)
    assert issued.expires_in == 8 * 3600 and claims.exp - time.time() > 8 * 3600 - 60
    raw = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert raw["iss"] == ISSUER and {"exp", "iat", "iss", "sub"} <= set(raw)


def test_the_lifetime_is_configurable(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_TOKEN_TTL_S", "600")
    assert issue(ANN, 1).expires_in == 600


def test_an_expired_token_is_refused_saying_so(home: Path) -> None:
    old = issue(ANN, 1, now=int(time.time()) - 9 * 3600).access_token
    with pytest.raises(UnauthorizedError, match="expired: sign in again"):
        decode(old)


def test_forged_tokens_are_refused(home: Path) -> None:
    good = issue(ANN, 1).access_token
    header, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = {
        "wrong signature": jwt.encode(claims, "another secret of thirty-two bytes!!",
                                      algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "tampered role": f"{header}.{_b64({**claims, 'role': 'admin'})}.{sig}",
        "tampered workspace": f"{header}.{_b64({**claims, 'workspace': 'team-b'})}.{sig}",
        "missing exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"},
                                  signing_secret(), algorithm="HS256"),
        "other issuer": jwt.encode({**claims, "iss": "someone-else"}, signing_secret(),
                                   algorithm="HS256"),
        "HS512": jwt.encode(claims, signing_secret(), algorithm="HS512"),
        "garbage": "not.a.token",
    }
    for what, token in forged.items():
        with pytest.raises(UnauthorizedError, match="not valid"):
            decode(token)
            pytest.fail(f"{what} was accepted")


def test_a_token_is_only_good_while_its_user_is_at_that_revision(home: Path) -> None:
    claims = decode(issue(ANN, 2).access_token)
    now = Snapshot(users={"ann": UserEntry(Role.VIEWER, "team-a", 2)})
    assert now.user(claims.sub, claims.rev) == ANN
    role_changed = Snapshot(users={"ann": UserEntry(Role.EDITOR, "team-a", 3)})
    assert role_changed.user(claims.sub, claims.rev) is None
    assert Snapshot().user(claims.sub, claims.rev) is None  # removed


def test_the_generated_secret_is_private_and_stable(home: Path) -> None:
    first = signing_secret()
    path = home / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 32
    assert signing_secret() == first == path.read_text().strip().encode()


def test_a_configured_secret_wins_and_must_be_long(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_JWT_SECRET", "x" * 40)
    token = issue(ANN, 1).access_token
    assert jwt.decode(token, "x" * 40, algorithms=["HS256"])["sub"] == "ann"
    assert not (home / SECRET_FILE).exists()
    monkeypatch.setenv("WORKBENCH_JWT_SECRET", "short")
    with pytest.raises(SettingsError, match="WORKBENCH_JWT_SECRET is 5 bytes"):
        issue(ANN, 1)

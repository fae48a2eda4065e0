"""Sign-in for the app (issue 16 item 5): when users exist, a login form and nothing else
until the password checks out; then the same JWT as `POST /v1/auth/token`, kept in this
browser session's state and verified again on every run (expired, user removed, role
changed → back to the form with a message). Without users the app is single-user, as before:
the machine's operator, no form.

Reads the user table through a session of its own, not `app.ui.deps.session()`: that one is
scoped to the signed-in principal's workspace, which is what is being decided here.
"""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from app.ui.deps import whole_store
from app.ui.identity import CHECKED_RUN, PRINCIPAL, remember
from core.errors import UnauthorizedError, WorkbenchError
from core.identity import Principal, PrincipalKind, directory, local_principal, tokens
from core.identity.throttle import SignInThrottle

TOKEN = "signed_in_token"   # the JWT, as POST /v1/auth/token would issue it
NOTICE = "signin_notice"    # why the form is shown again (expired, signed out, …)
THROTTLE = SignInThrottle()  # this app process's sign-in back-off, as the API's (per process)
FORM = "signin"


def _session() -> Session:
    return Session(whole_store().engine, expire_on_commit=False)


def require_sign_in(*, entry_point: bool = False) -> Principal:
    """The principal this run acts as. Once any user or API key exists (or ever existed: as
    on the API, removing the last user never opens the app to everyone), without a valid
    token: the sign-in form (as the only page when called from the entry point) and
    `st.stop()`."""
    with _session() as s:
        known = directory.load(s)  # who exists now: removals and role changes count at once
    if not known.configured:  # single-user mode: no user or key was ever made
        st.session_state.pop(TOKEN, None)
        principal = local_principal()
        remember(principal)
        return principal
    token = st.session_state.get(TOKEN)
    if token:
        principal, why = check_token(token, known)
        if principal is not None:
            remember(principal)
            return principal
        _forget(why)
    st.session_state.pop(PRINCIPAL, None)
    st.session_state.pop(CHECKED_RUN, None)
    if entry_point:
        st.navigation([st.Page(sign_in_form, title="Sign in", icon=":material/login:",
                               url_path="signin")], position="hidden").run()
    else:
        sign_in_form()
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the run")  # pragma: no cover


def check_token(token: str, known: directory.Snapshot) -> tuple[Principal | None, str]:
    """The principal a token still stands for, or None and why the user must sign in again
    (the same checks as the API's: signature, expiry, and the user at the token's revision)."""
    try:
        claims = tokens.decode(token)
    except UnauthorizedError as exc:
        return None, ("Your session expired: sign in again." if "expired" in exc.message
                      else "Your sign-in is no longer valid: sign in again.")
    principal = known.user(claims.sub, claims.rev)
    if principal is not None:
        return principal, ""
    entry = known.users.get(claims.sub)
    if entry is None:
        return None, f"The user {claims.sub!r} was removed: sign in as another user."
    if entry.role != claims.role:
        return None, (f"Your role changed from {claims.role} to {entry.role}: sign in again "
                      "to continue with the new role.")
    return None, "Your password or account changed: sign in again."


def sign_in_form() -> None:
    """Name and password; a wrong pair says so without telling which half was wrong."""
    st.title("Sign in to ML Workbench")
    notice = st.session_state.get(NOTICE)
    with _session() as s:
        if not directory.load(s).users:
            notice = ("No user can sign in: sign-in is configured (API keys exist, or users "
                      "did) but there is no user. Add one on the server's machine with "
                      "`workbench users add NAME --role admin`.")
    if notice:
        st.info(notice, icon=":material/info:")
    with st.form(FORM):
        username = st.text_input("User name", key="signin_user", autocomplete="username")
        password = st.text_input("Password", type="password", key="signin_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    if not username.strip() or not password:
        st.error("Enter your user name and password.", icon=":material/error:")
        return
    name, address = username.strip(), _address()
    wait = THROTTLE.attempt(name, address)  # counted before the check: see throttle.py
    if wait:
        st.error(f"Too many failed sign-ins for this user name or from this address: try "
                 f"again in {wait} s.", icon=":material/error:")
        return
    try:
        with _session() as s:
            token = tokens.sign_in(name, password, session=s).access_token
    except WorkbenchError as exc:
        if not isinstance(exc, UnauthorizedError):  # a wrong password stays counted
            THROTTLE.release(name, address)
        st.error(exc.message, icon=":material/error:")
        return
    except BaseException:
        THROTTLE.release(name, address)
        raise
    THROTTLE.succeeded(name, address)
    st.session_state[TOKEN] = token
    st.session_state.pop(NOTICE, None)
    st.rerun()


def _address() -> str | None:
    """The browser's address as Streamlit sees it (None when unknown, e.g. in tests)."""
    try:
        return st.context.ip_address
    except Exception:  # noqa: BLE001 (an older Streamlit, or no browser connection)
        return None


def _forget(notice: str) -> None:
    for key in (TOKEN, PRINCIPAL, CHECKED_RUN):
        st.session_state.pop(key, None)
    st.session_state[NOTICE] = notice


def sign_out() -> None:
    _forget("Signed out.")


def signed_in_sidebar(principal: Principal) -> None:
    """Who is signed in (name, role, workspace) and a Sign out button; nothing in
    single-user mode."""
    if principal.kind != PrincipalKind.USER:
        return
    with st.sidebar:
        st.markdown(f"Signed in as **{principal.actor}**  \n{principal.role} · workspace "
                    f"`{principal.workspace}`")
        st.button("Sign out", key="sign_out", icon=":material/logout:", on_click=sign_out)

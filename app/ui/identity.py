"""Who is using the app: the principal every page acts as (issue 16).

Single-user mode (no users defined): the machine's operator, an admin of the default
workspace. With users, `app.ui.signin.require_sign_in` verifies the session's token (and that
the user still exists with that role) once per script run, and records the principal for
that run here; a page reached without the check (its own script run, a fragment's rerun)
gets it checked then, and the sign-in form when it fails, never the operator's rights.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from core.identity import Principal

PRINCIPAL = "signed_in_principal"  # set by app.ui.signin, never by a widget
CHECKED_RUN = "signed_in_checked_run"  # the run (see `this_run`) that verified it


def this_run() -> Any:
    """An object that is new for every script run (and fragment run): the run context's
    cursor map, which Streamlit replaces on each `reset`; None outside a run."""
    ctx = get_script_run_ctx()
    return ctx.cursors if ctx is not None else None


def remember(principal: Principal) -> None:
    st.session_state[PRINCIPAL] = principal
    st.session_state[CHECKED_RUN] = this_run()


def current_principal() -> Principal:
    """The signed-in user's principal, or the operator's in single-user mode, verified in
    this run."""
    run = this_run()
    principal = st.session_state.get(PRINCIPAL)
    if principal is not None and run is not None and st.session_state.get(CHECKED_RUN) is run:
        return principal
    from app.ui.signin import require_sign_in

    return require_sign_in()  # the sign-in form and st.stop() when one is needed


def current_actor() -> str:
    """The name written into the audit log for what this run changes."""
    return current_principal().actor

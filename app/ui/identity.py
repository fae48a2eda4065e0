"""Who is using the app: the principal every page acts as (issue 16).

Single-user mode (no users defined): the machine's operator, an admin of the default
workspace. With users, the entry point (`app.ui.signin.require_sign_in`) verifies the
session's token on every run and stores the principal it stands for here; a page reached
without that check gets the sign-in form, never the operator's rights.
"""

from __future__ import annotations

import streamlit as st

from core.identity import Principal, local_principal

PRINCIPAL = "signed_in_principal"  # set by app.ui.signin on every run, never by a widget


def current_principal() -> Principal:
    """The signed-in user's principal, or the operator's in single-user mode."""
    principal = st.session_state.get(PRINCIPAL)
    return principal if principal is not None else local_principal()


def current_actor() -> str:
    """The name written into the audit log for what this run changes."""
    return current_principal().actor

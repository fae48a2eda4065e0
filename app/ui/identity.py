"""Who is using the app: the principal every page acts as (issue 16).

Single-user mode (no users defined): the machine's operator, an admin of the default
workspace. Sign-in replaces this with the signed-in user's principal.
"""

from __future__ import annotations

from core.identity import Principal, local_principal


def current_principal() -> Principal:
    return local_principal()

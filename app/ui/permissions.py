"""Role-gated actions in the app: one rule for every button, form submit and upload.

A control the signed-in role may not use is drawn disabled, with a tooltip naming the role it
needs ("Needs the editor role — you are a viewer"), and its click is ignored even if one
arrives (a disabled widget can still be posted to the server by hand). Which role an action
needs is the contract's: viewers read and predict; editors upload, train, deploy, promote,
roll back, move aliases and stages, acknowledge alerts and manage schedules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.ui.identity import current_principal
from core.identity import Role

EDITOR = Role.EDITOR


def refusal(needed: Role) -> str | None:
    """Why the signed-in principal may not act ("Needs the editor role — you are a viewer"),
    or None when it may."""
    who = current_principal()
    if who.may(needed):
        return None
    return f"Needs the {needed} role — you are a{'n' if who.role[0] in 'aeiou' else ''} {who.role}"


def gate(needed: Role = EDITOR, *, disabled: bool = False, help: str | None = None
         ) -> dict[str, Any]:
    """`disabled=` and `help=` for a widget: disabled with the role's tooltip when the role
    falls short, otherwise as the page asked (its own reason to disable, its own help)."""
    why = refusal(needed)
    if why is None:
        return {"disabled": disabled, "help": help}
    return {"disabled": True, "help": why}


def act(widget: Callable[..., Any], label: str, *, needed: Role = EDITOR,
        disabled: bool = False, help: str | None = None, **kwargs: Any) -> bool:
    """Draw an action control (`st.button`, `col.button`, `st.form_submit_button`) gated by
    `needed`; True only when clicked by a principal allowed to act."""
    clicked = widget(label, **gate(needed, disabled=disabled, help=help), **kwargs)
    return bool(clicked) and refusal(needed) is None

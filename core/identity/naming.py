"""The rules every user, key and workspace name and every role string follow, checked in one
place so the CLI and the API say the same thing about a bad one."""

from __future__ import annotations

import re

from core.errors import InputError
from core.identity.principal import Role

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


def check_name(name: str, what: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InputError(f"{name!r} is not a valid {what} name: use 1 to 100 letters, digits, "
                         "'.', '_', '@' or '-', starting with a letter or digit.")
    return name


def parse_role(role: str | Role) -> Role:
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        raise InputError(f"{role!r} is not a role: use one of "
                         f"{', '.join(r.value for r in Role)}.") from None

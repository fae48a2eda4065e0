"""Which role each route needs, as data, checked in one place (the ASGI guard).

The rule for a request is looked up by the route template it matches, in the app's own order:
an explicit entry in `ROUTE_ROLES` first, then an admin-only area (`ADMIN_PREFIXES`), then the
default for the method (reads → viewer, writes → editor). A route added later without an
entry gets the default, never nothing. `PUBLIC` routes need no credentials at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.identity import Role

V, E, A = Role.VIEWER, Role.EDITOR, Role.ADMIN

# Reachable without credentials: liveness, the sign-in route itself, the API's description.
PUBLIC: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/health"), ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"),
    ("POST", "/v1/auth/token"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
})

DEFAULT_BY_METHOD: dict[str, Role] = {"GET": V, "HEAD": V, "OPTIONS": V}  # anything else: E
DEFAULT_WRITE = E

# Writes a viewer may make: predicting and what belongs with it (scoring a labelled table,
# comparing), none of which changes a model, dataset or deployment. Not feedback: labels drive
# performance alerts (so automatic rollbacks) and retraining data, an editor's decisions.
# Not the ONNX download either: a GET, but it converts, runs the parity check and stores it.
ROUTE_ROLES: dict[tuple[str, str], Role] = {
    ("POST", "/v1/models/{name}/predict"): V,
    ("POST", "/v1/models/{name}/invocations"): V,
    ("POST", "/invocations"): V,
    ("POST", "/v2/models/{name}/infer"): V,
    ("POST", "/v2/models/{name}/versions/{version}/infer"): V,
    ("POST", "/v1/models/{name}/evaluate"): V,
    ("POST", "/v1/models/compare"): V,
    ("POST", "/v1/runs/compare"): V,
    ("GET", "/v1/models/{name}/versions/{version}/onnx"): E,
}

# Users, keys and workspace settings: admin only, whatever the method.
ADMIN_PREFIXES = ("/v1/users", "/v1/keys", "/v1/workspaces")


def needed_role(method: str, template: str) -> Role:
    """The role a route needs: its entry, else admin for the admin areas, else the method's
    default."""
    explicit = ROUTE_ROLES.get((method, template))
    if explicit is not None:
        return explicit
    if any(template == p or template.startswith(p + "/") for p in ADMIN_PREFIXES):
        return A
    return DEFAULT_BY_METHOD.get(method, DEFAULT_WRITE)


@dataclass(frozen=True, slots=True)
class Rule:
    template: str | None  # None: no route matched (the router answers 404/405)
    role: Role
    public: bool


class RouteRoles:
    """The app's routes in matching order, each with its rule; `rule(method, path)` finds the
    first route that matches both, as the router will. Results are remembered per (method,
    path) up to a bound, so a repeated request costs one dict lookup."""

    CACHE_MAX = 4096

    def __init__(self, routes: list[tuple[re.Pattern[str], frozenset[str], str]]) -> None:
        self._routes = routes
        self._cache: dict[tuple[str, str], Rule] = {}

    @classmethod
    def of_app(cls, app) -> RouteRoles:
        from fastapi.routing import iter_route_contexts

        routes = []
        for r in iter_route_contexts(app.routes):
            regex, methods = getattr(r, "path_regex", None), getattr(r, "methods", None)
            if regex is not None and methods:
                routes.append((regex, frozenset(methods), r.path))
        return cls(routes)

    def templates(self) -> list[tuple[str, str]]:
        return [(m, t) for _, methods, t in self._routes for m in sorted(methods)]

    def rule(self, method: str, path: str) -> Rule:
        key = (method, path)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        lookup = "GET" if method == "HEAD" else method  # Starlette answers HEAD with GET
        template = next((t for regex, methods, t in self._routes
                         if (method in methods or lookup in methods) and regex.match(path)),
                        None)
        if template is None:
            found = Rule(None, DEFAULT_BY_METHOD.get(method, DEFAULT_WRITE), False)
        else:
            found = Rule(template, needed_role(lookup, template), (lookup, template) in PUBLIC)
        if len(self._cache) >= self.CACHE_MAX:
            self._cache.clear()
        self._cache[key] = found
        return found


def forbidden_detail(needed: Role, have: Role) -> str:
    return f"This needs the {needed.value} role; you are {have.value}."

"""Guard rails: what a rail may be, the one declaration of their defaults, and the one check
every way in goes through (REST, CLI, UI, rails stored by an older release).

Light on purpose (no registry, no pandas): the CLI reads the defaults for its help texts at
start-up."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, cast

from core.errors import WorkbenchError

if TYPE_CHECKING:  # light on purpose: core.store would import SQLModel
    from core.store.shapes import GuardRailsDoc


class InvalidRequestError(WorkbenchError):
    """A well-formed request whose values are out of range (bad percent, unknown mode)."""

    code = "invalid_request"
    http_status = 422


@dataclass(frozen=True)
class Rail:
    """What one guard rail may be: a finite number in [low, high], an integer if `whole`."""

    low: float
    high: float
    whole: bool = False
    meaning: str = ""


GUARD_RAIL_LIMITS: dict[str, Rail] = {
    "max_error_rate": Rail(0.0, 1.0, meaning="a fraction of requests, e.g. 0.05 for 5 %"),
    "max_p99_ms": Rail(1.0, 3_600_000.0, meaning="milliseconds, e.g. 1000"),
    "min_requests": Rail(1, 1_000_000_000, whole=True, meaning="a whole number, e.g. 100"),
}


@dataclass(frozen=True)
class GuardRails:
    """The rails a canary is judged by. The defaults here are the only ones (README: 5 %,
    1000 ms, 100 requests): a deployment without its own rails, the CLI's help texts and the
    monitor's ERROR / LATENCY thresholds and requests per window
    (`core.monitor.alerts.new_config`) all read them."""

    max_error_rate: float = 0.05  # candidate errors / scored requests over the current step
    max_p99_ms: float = 1000.0    # candidate latency p99 over the current step
    min_requests: int = 100       # scored requests a step needs before the rails judge it

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def with_values(self, values: GuardRailsDoc) -> GuardRails:
        """These rails with some replaced; `values` must already be checked."""
        known = {f.name for f in fields(self)}
        return GuardRails(**{**self.as_dict(), **{k: v for k, v in values.items()
                                                  if k in known}})


DEFAULT_GUARD_RAILS = GuardRails()
DEFAULT_STEPS: tuple[float, ...] = (10.0, 50.0, 100.0)  # rollout steps, in percent


def _finite(value: Any) -> float | None:
    """`value` as a finite float, else None (text, booleans, NaN, ±Infinity, 10**400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == int(x) else f"{x:g}"


def _problem(label: str, rail: Rail, value: Any) -> str | None:
    bounds = f"from {_num(rail.low)} to {_num(rail.high)} ({rail.meaning})"
    number = _finite(value)
    if number is None or not rail.low <= number <= rail.high:
        return f"{label} must be a number {bounds}, not {value!r}."
    if rail.whole and number != int(number):
        return f"{label} must be a whole number {bounds}, not {value!r}."
    return None


def check_guard_rails(rails: Mapping[str, object],
                      label: Callable[[str], str] = lambda key: f"guard_rails.{key}"
                      ) -> GuardRailsDoc:
    """The rails as clean numbers, or InvalidRequestError naming every bad field. The one
    check for every way in, because a rail like `min_requests: Infinity` would make the guard
    loop fail on every tick. `label` names a rail the way the caller's user wrote it
    (`guard_rails.min_requests`, `--min-requests`)."""
    if not isinstance(rails, dict):
        raise InvalidRequestError(f"guard_rails must be an object such as "
                                  f'{{"max_error_rate": 0.05}}, not {rails!r}.')
    unknown = set(rails) - set(GUARD_RAIL_LIMITS)
    if unknown:
        raise InvalidRequestError(f"Unknown guard rails: {', '.join(sorted(map(str, unknown)))}"
                                  f". Known: {', '.join(GUARD_RAIL_LIMITS)}.")
    clean: dict[str, float | int] = {}
    problems = []
    for key, value in rails.items():
        rail = GUARD_RAIL_LIMITS[key]
        if (problem := _problem(label(key), rail, value)) is not None:
            problems.append(problem)
        else:
            clean[key] = int(value) if rail.whole else float(value)
    if problems:
        raise InvalidRequestError(" ".join(problems))
    return cast("GuardRailsDoc", clean)


def still_valid(stored: Mapping[str, object] | None) -> GuardRailsDoc:
    """The stored rails that pass today's check: rails an older release stored unchecked are
    dropped (back to their default) when new ones are set, rather than kept broken."""
    out: GuardRailsDoc = {}
    for key, value in (stored or {}).items():
        try:
            out.update(check_guard_rails({key: value}))
        except InvalidRequestError:
            continue
    return out


def effective_rails(stored: Mapping[str, object]) -> GuardRails:
    """The rails a canary is judged by: the defaults with its own checked rails over them.
    Raises InvalidRequestError naming a stored rail that is not valid."""
    return DEFAULT_GUARD_RAILS.with_values(check_guard_rails(stored))


__all__ = ["DEFAULT_GUARD_RAILS", "DEFAULT_STEPS", "GUARD_RAIL_LIMITS", "GuardRails",
           "InvalidRequestError", "Rail", "check_guard_rails", "effective_rails",
           "still_valid"]

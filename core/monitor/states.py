"""The monitor's closed sets. (The alert vocabulary — kinds, states and their transition
table — is in `core.deploy.enums`: the guard rails below the monitor raise alerts too.)"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from core.errors import WorkbenchError


class Window(StrEnum):
    """How far back live figures look, and the step of their time series."""

    M5 = "5m"
    H1 = "1h"
    H24 = "24h"
    D7 = "7d"

    @property
    def delta(self) -> timedelta:
        return _DELTA[self]

    @property
    def series_step(self) -> str:
        """A pandas frequency: one point per step in the charts."""
        return _STEP[self]

    @classmethod
    def parse(cls, value: str) -> Window:
        try:
            return cls(value)
        except ValueError:
            raise WorkbenchError(f"Unknown window {value!r}: use one of "
                                 f"{', '.join(cls)}.") from None


_DELTA = {Window.M5: timedelta(minutes=5), Window.H1: timedelta(hours=1),
          Window.H24: timedelta(hours=24), Window.D7: timedelta(days=7)}
_STEP = {Window.M5: "10s", Window.H1: "1min", Window.H24: "15min", Window.D7: "2h"}

__all__ = ["Window"]

"""Building blocks shared by the `*Public` response models of the domain packages.

Those models are the one shape a thing has on the wire: the API's `response_model=`, the
CLI's `--json` (`model_dump(mode="json")`) and the pages all read them. The JSON they give
must stay what ARCHITECTURE.md Part 1 promises, byte for byte where tests pin it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, PlainSerializer

# A timestamp written exactly as `datetime.isoformat()` writes it, as the API and CLI always
# have (pydantic's own format would turn "+00:00" into "Z" for values fresh from Python while
# the same value read back from the database has no offset at all).
IsoDatetime = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str,
                                                  when_used="json")]

# Response models are read-only records built from rows.
FROZEN = ConfigDict(frozen=True, from_attributes=True)

__all__ = ["FROZEN", "IsoDatetime"]

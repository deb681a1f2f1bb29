"""A time window given as text: how far back the monitor looks (`--since`, `monitor.window`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from mlops.errors import MlopsError

_SPAN = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
EVERYTHING = "all"


def since(text: str, now: datetime | None = None) -> datetime | None:
    """The start of the window: a span back from now ("30m", "24h", "7d", "2w"), an ISO date
    or time (UTC unless it says otherwise), or None for "all"."""
    text = str(text).strip()
    now = now or datetime.now(UTC)
    if text == EVERYTHING:
        return None
    span = _SPAN.match(text)
    if span:
        return now - timedelta(**{_UNITS[span[2]]: int(span[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MlopsError(
            f"window {text!r} is neither a span like 30m, 24h, 7d or 2w, an ISO date or time, "
            f"nor {EVERYTHING!r}"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        raise MlopsError(f"window start {text!r} is in the future")
    return moment

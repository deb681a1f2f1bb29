"""A time window given as text: how far back the monitor looks (`--since`, `monitor.window`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from mlops import clock
from mlops.errors import MlopsError

_SPAN = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
EVERYTHING = "all"


def since(text: str, now: datetime | None = None) -> datetime | None:
    """The start of the window: a span back from now ("30m", "24h", "7d", "2w"), an ISO date
    or time (UTC unless it says otherwise), or None for "all". The start is in UTC whatever
    zone the text or now is given in."""
    text = str(text).strip()
    now = clock.utc(now or clock.now())
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
    moment = clock.utc(moment)
    if moment > now:
        raise MlopsError(f"window start {text!r} is in the future")
    return moment

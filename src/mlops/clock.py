"""The one clock of the lifecycle: every time it records, compares or prints is UTC and comes
from here, so a test moves all of them at once (time-machine in process, faketime for the
processes it starts) and no folder, file name or window depends on the machine's zone."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """moment in UTC: an aware time converted, a naive one taken as UTC already (as Azure ML's
    and our own records write them)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse(text: str) -> datetime | None:
    """An ISO 8601 time (a trailing Z allowed) in UTC, or None when it is not one."""
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except (ValueError, TypeError, OverflowError):
        return None


def stamp(moment: datetime | None = None) -> str:
    """A sortable name part for a time, e.g. 20261207-013005 (job ids, kept logs)."""
    return f"{utc(moment or now()):%Y%m%d-%H%M%S}"

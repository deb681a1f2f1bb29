"""The monitor's window: a span back from now, an ISO moment, or all; anything else refused."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlops.errors import MlopsError
from mlops.window import since

NOW = datetime.now(UTC).replace(microsecond=0)  # the window is measured back from it
DAY_START = (NOW - timedelta(days=26)).replace(hour=0, minute=0, second=0)
IN_PARIS = (NOW - timedelta(hours=2)).astimezone(timezone(timedelta(hours=1)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        (f"{DAY_START:%Y-%m-%d}", DAY_START),
        (IN_PARIS.isoformat(), NOW - timedelta(hours=2)),
        ("all", None),
    ],
    # ids without the clock's reading: xdist workers collect at different instants, and
    # must agree on every test's id
    ids=["minutes", "hours", "days", "weeks", "a-day", "an-offset-moment", "all"],
)
def test_a_window_becomes_its_start(text, expected):
    assert since(text, NOW) == expected


@pytest.mark.parametrize(
    "text",
    ["soon", "7", "-1d", "7 days", "1y", f"{NOW + timedelta(days=40):%Y-%m-%d}", ""],
    ids=["word", "no-unit", "negative", "spaced", "years", "a-future-day", "empty"],
)
def test_anything_else_is_one_sentence(text):
    with pytest.raises(MlopsError) as refusal:
        since(text, NOW)
    assert "\n" not in str(refusal.value)

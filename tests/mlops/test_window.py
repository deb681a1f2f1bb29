"""The monitor's window: a span back from now, an ISO moment, or all; anything else refused."""

from datetime import UTC, datetime, timedelta

import pytest

from mlops.errors import MlopsError
from mlops.window import since

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-27T10:30:00+01:00", datetime(2026, 11, 27, 9, 30, tzinfo=UTC)),
        ("all", None),
    ],
)
def test_a_window_becomes_its_start(text, expected):
    assert since(text, NOW) == expected


@pytest.mark.parametrize("text", ["soon", "7", "-1d", "7 days", "1y", "2027-01-01", ""])
def test_anything_else_is_one_sentence(text):
    with pytest.raises(MlopsError) as refusal:
        since(text, NOW)
    assert "\n" not in str(refusal.value)

"""The lifecycle's one clock (mlops.clock) at the ends of a day, a month, a leap February and a
year: windows, the collector's day files and what reads them back, names that carry a time.
Every moment here is derived from today's year, so nothing ages out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from collect import JsonLinesCollector
from features import FEATURES
from helpers import ROOT

from mlops import clock, config
from mlops.backends.local.backend import LocalBackend
from mlops.window import since

THIS_YEAR = datetime.now(UTC).year
NEXT_LEAP = next(y for y in range(THIS_YEAR, THIS_YEAR + 8) if y % 4 == 0 and y % 100 != 0)
YEAR_END = datetime(THIS_YEAR, 12, 31, 23, 59, 30, tzinfo=UTC)
LEAP_DAY = datetime(NEXT_LEAP, 2, 29, 12, 0, tzinfo=UTC)
MARCH_FIRST = datetime(NEXT_LEAP, 3, 1, 0, 30, tzinfo=UTC)
PARIS_WINTER = timezone(timedelta(hours=1))
ENDPOINT, MODEL = "mlops-prod", "m:1"


@pytest.fixture
def zone_far_from_utc(monkeypatch):
    """The machine's zone at UTC-10 (a POSIX rule: no zone database needed): anything that
    used local time would name another day. Tests travel to a timestamp, which time-machine
    moves without setting a zone of its own."""
    monkeypatch.setenv("TZ", "<-10>10")
    time.tzset()
    assert time.strftime("%z") == "-1000"
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_clock_is_utc_whatever_the_machines_zone(time_machine, zone_far_from_utc):
    time_machine.move_to(datetime(THIS_YEAR + 1, 1, 1, 3, 0, tzinfo=UTC).timestamp(), tick=False)
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.stamp() == f"{THIS_YEAR + 1}0101-030000"
    assert time.strftime("%Y%m%d-%H%M%S") == f"{THIS_YEAR}1231-170000", "local time is a day behind"


@pytest.mark.parametrize(
    ("now", "window", "start"),
    [
        (MARCH_FIRST, "24h", datetime(NEXT_LEAP, 2, 29, 0, 30, tzinfo=UTC)),
        (MARCH_FIRST, "7d", datetime(NEXT_LEAP, 2, 23, 0, 30, tzinfo=UTC)),
        (LEAP_DAY, f"{NEXT_LEAP}-02-29", datetime(NEXT_LEAP, 2, 29, tzinfo=UTC)),
        (YEAR_END + timedelta(minutes=1), "2m", YEAR_END - timedelta(minutes=1)),
        (
            YEAR_END + timedelta(hours=1),
            f"{THIS_YEAR + 1}-01-01T00:30:00+01:00",  # 23:30 the day before, in UTC
            datetime(THIS_YEAR, 12, 31, 23, 30, tzinfo=UTC),
        ),
    ],
)
def test_a_window_counts_back_over_day_month_and_year_ends_in_utc(time_machine, now, window, start):
    time_machine.move_to(now, tick=False)
    found = since(window)
    assert found == start and found.utcoffset() == timedelta(0)


def test_a_window_start_in_another_zone_is_given_back_in_utc():
    found = since("12h", now=YEAR_END.astimezone(PARIS_WINTER))
    assert found.tzinfo == UTC and found == YEAR_END - timedelta(hours=12)


def test_a_window_may_not_start_after_now(time_machine):
    time_machine.move_to(YEAR_END, tick=False)
    with pytest.raises(Exception, match="in the future"):
        since(f"{THIS_YEAR + 1}-01-01")


def record(collector: JsonLinesCollector, time_machine, moment: datetime, request_id: str):
    time_machine.move_to(moment.timestamp(), tick=False)
    collector.record(request_id, [[1.0] * len(FEATURES)], {"predictions": [1]})


def test_the_collector_files_requests_by_their_utc_day_across_the_year_end(
    tmp_path, time_machine, zone_far_from_utc
):
    collector = JsonLinesCollector(tmp_path / "prod" / "collected", f"{ENDPOINT}/blue", MODEL)
    last = datetime(THIS_YEAR, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    record(collector, time_machine, last, "last-of-the-year")
    record(collector, time_machine, last + timedelta(milliseconds=1), "first-of-the-next")
    files = sorted(p.name for p in (tmp_path / "prod" / "collected").iterdir())
    assert files == [f"inference-{THIS_YEAR}1231.jsonl", f"inference-{THIS_YEAR + 1}0101.jsonl"]
    stamps = [
        json.loads(p.read_text())["timestamp"]
        for p in sorted((tmp_path / "prod" / "collected").iterdir())
    ]
    assert stamps == [
        f"{THIS_YEAR}-12-31T23:59:59.999+00:00",
        f"{THIS_YEAR + 1}-01-01T00:00:00.000+00:00",
    ]


def test_a_window_given_in_another_zone_reads_the_utc_days_it_covers(tmp_path, time_machine):
    """A start of 00:30 at UTC+1 on 1 January is 23:30 UTC on 31 December: that day's file
    holds requests in the window, though the start's own calendar says January."""
    collector = JsonLinesCollector(tmp_path / "prod" / "collected", f"{ENDPOINT}/blue", MODEL)
    record(collector, time_machine, datetime(THIS_YEAR, 12, 31, 23, 0, tzinfo=UTC), "before")
    record(collector, time_machine, datetime(THIS_YEAR, 12, 31, 23, 45, tzinfo=UTC), "late")
    record(collector, time_machine, datetime(THIS_YEAR + 1, 1, 1, 0, 15, tzinfo=UTC), "early")
    backend = LocalBackend(config.load("prod", ROOT), ROOT, tmp_path)
    start = datetime(THIS_YEAR + 1, 1, 1, 0, 30, tzinfo=PARIS_WINTER)
    found = [r.request_id for r in backend.collected_records(ENDPOINT, MODEL, since=start)]
    assert found == ["late", "early"]
    assert len(list(backend.collected_rows(ENDPOINT, MODEL, since=start))) == 2


def test_a_leap_day_is_a_day_of_its_own(tmp_path, time_machine):
    collector = JsonLinesCollector(tmp_path / "prod" / "collected", f"{ENDPOINT}/blue", MODEL)
    for moment, request_id in (
        (LEAP_DAY - timedelta(days=1), "28th"),
        (LEAP_DAY, "29th"),
        (MARCH_FIRST, "1st"),
    ):
        record(collector, time_machine, moment, request_id)
    days = sorted(p.stem[-4:] for p in (tmp_path / "prod" / "collected").iterdir())
    assert days == ["0228", "0229", "0301"]
    backend = LocalBackend(config.load("prod", ROOT), ROOT, tmp_path)
    time_machine.move_to(MARCH_FIRST + timedelta(minutes=1), tick=False)
    found = [r.request_id for r in backend.collected_records(ENDPOINT, MODEL, since=since("1d"))]
    assert found == ["29th", "1st"]


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        (f"{THIS_YEAR + 1}-01-01T00:30:00+01:00", datetime(THIS_YEAR, 12, 31, 23, 30, tzinfo=UTC)),
        (f"{THIS_YEAR + 1}-01-01T00:30:00Z", datetime(THIS_YEAR + 1, 1, 1, 0, 30, tzinfo=UTC)),
        (
            f"{THIS_YEAR + 1}-01-01T00:30:00",
            datetime(THIS_YEAR + 1, 1, 1, 0, 30, tzinfo=UTC),
        ),  # naive
        ("not a time", None),
    ],
)
def test_a_written_time_is_read_as_its_utc_instant(text, instant):
    assert clock.parse(text) == instant

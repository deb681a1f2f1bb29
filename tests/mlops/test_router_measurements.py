"""The local endpoint's own figures: counted by status class, latency percentiles, a bounded window."""

from mlops.backends.base import EndpointStats
from mlops.backends.local.router import Measurements


def test_figures_cover_the_window_and_count_everything_since_start():
    measured = Measurements(window=100)
    for i in range(150):  # the first 50 fall out of the window
        measured.record(500 if i < 50 else (404 if i % 10 == 0 else 200), (i + 1) / 1000)
    summary = measured.summary()
    assert summary["requests"] == 100 and summary["total"] == 150
    assert summary["status_classes"] == {"4xx": 10, "2xx": 90}
    assert summary["p50_ms"] == 100.0 and summary["p95_ms"] == 145.0  # nearest rank of 51..150 ms
    assert EndpointStats(**summary).error_rate == 0.0


def test_the_error_rate_is_the_share_of_5xx_answers():
    measured = Measurements()
    for status in (200, 200, 503, 401):
        measured.record(status, 0.01)
    measured.record(0, 0.01)  # the client left before an answer was sent
    stats = EndpointStats(**measured.summary())
    assert stats.status_classes == {"2xx": 2, "5xx": 1, "4xx": 1, "unanswered": 1}
    assert stats.error_rate == 0.2


def test_no_requests_yet_is_zeros_not_an_error():
    stats = EndpointStats(**Measurements().summary())
    assert (stats.requests, stats.p50_ms, stats.p95_ms, stats.error_rate) == (0, 0.0, 0.0, 0.0)

"""Sizing from a profile, and the load generator's bounds."""

import pytest

from mlops.load import run_load
from mlops.profile import recommend


@pytest.mark.parametrize(
    ("target", "per_instance", "expected"),
    [
        (100, 50.0, 3),
        (20, 845.0, 1),
        (35, 50.0, 1),
        (36, 50.0, 2),
        (None, 50.0, None),
        (10, 0.0, None),
    ],
)
def test_instances_are_sized_with_headroom(target, per_instance, expected):
    assert recommend(target, per_instance) == expected


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/score", "http://example.com/score", "http://192.168.1.2:80/"]
)
def test_load_never_targets_another_machine_over_plain_http(url):
    with pytest.raises(ValueError, match="only loopback or an https endpoint"):
        run_load(url, b"{}", max_requests=1, max_seconds=1)


def test_load_stops_at_its_request_cap_against_a_closed_port():
    result = run_load("http://127.0.0.1:9/score", b"{}", max_requests=5, max_seconds=5)
    assert result.requests == 0 and result.errors == 5

"""Sizing from a profile, and the load generator's bounds."""

import pytest

from mlops import config
from mlops.load import run_load
from mlops.profile import Profile, advice, bounds, recommend


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


@pytest.mark.parametrize(
    ("target", "per_instance", "expected"),
    [
        (20, 845.0, (1, 1)),  # one instance carries twice the target
        (100, 50.0, (3, 6)),  # 100 / (50 * 0.7) -> 3; 200 / 35 -> 6
        (36, 50.0, (2, 3)),
        (5000, 50.0, (50, 50)),  # Azure's ceiling per deployment
        (None, 50.0, None),
    ],
)
def test_autoscale_bounds_carry_the_target_and_its_bursts(target, per_instance, expected):
    assert bounds(target, per_instance) == expected


def measured(target_rps, rps_per_instance, recommended):
    return Profile(
        "u", 1, 100, 0, 1.0, rps_per_instance, rps_per_instance, 1, 2, target_rps, recommended
    )


def test_the_advice_names_the_file_and_keys_to_set(repo):
    cfg = config.load("prod", repo)
    (line,) = advice(measured(100, 50.0, 3), cfg)
    assert line == (
        "for 100 req/s at 70% load per instance, 2x bursts: in environments/prod.yml set "
        "endpoint.autoscale.min_instances 3 and max_instances 6, with endpoint.instance_count "
        "within them (now 1..3, instance_count 1)"
    )
    assert advice(measured(None, 50.0, None), cfg) == [
        "set endpoint.target_rps in environments/prod.yml for an instance recommendation"
    ]
    over = advice(measured(5000, 10.0, 715), cfg)
    assert "715 instances are over Azure's 50 per deployment" in over[1]

"""A local prod endpoint: its deployment scaled before it takes traffic (to its floor of server
processes, which share the requests), and the figures the endpoint measured itself (requests,
status classes, p50/p95 latency) in `mlops status`."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from endpoint_client import MODEL, Endpoint, fresh_home
from helpers import copy_repo, env_setting, run_mlops

from mlops.backends.local.processes import alive, stop
from mlops.smoke import load_sample

ENV = "prod"  # the environment with endpoint.autoscale


@pytest.fixture(scope="module")
def served(shared_model, tmp_path_factory):
    repo, home = fresh_home(shared_model, tmp_path_factory.mktemp("measured") / "home")
    done = run_mlops(repo, home, "deploy", "--env", ENV, "--model", f"{MODEL}:1")
    yield repo, home, done.stdout + done.stderr
    run_mlops(repo, home, "down", "--all", check=False)


def status(repo: Path, home: Path) -> dict:
    (endpoint,) = json.loads(run_mlops(repo, home, "status", "--env", ENV).stdout)[ENV]
    return endpoint


def post(endpoint: Endpoint, body: bytes, key: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    url = f"http://127.0.0.1:{endpoint.port}/score"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as reply:
        return reply.code


def test_the_new_deployment_is_scaled_before_it_takes_traffic(served):
    repo, home, printed = served
    lines = printed.splitlines()
    scaled = next(i for i, line in enumerate(lines) if "'blue' scales 1..3 instances" in line)
    switched = next(i for i, line in enumerate(lines) if "100% of traffic to 'blue'" in line)
    assert scaled < switched
    assert status(repo, home)["deployments"]["blue"]["autoscale"] == (
        "1..3 instances on 70% CPU, starting at 1"
    )


def test_status_shows_what_the_endpoint_measured(served):
    repo, home, _ = served
    before = status(repo, home)["measured"]
    endpoint = Endpoint.of(home, ENV)
    sample = load_sample(repo)
    answers = [post(endpoint, sample, endpoint.key) for _ in range(5)]
    answers += [post(endpoint, b"rows please", endpoint.key), post(endpoint, sample, None)]
    assert answers == [200] * 5 + [400, 401]

    after = status(repo, home)["measured"]
    assert after["since_start"] - before["since_start"] == 7  # status itself is not counted
    grew = {
        kind: after["by_status"].get(kind, 0) - before["by_status"].get(kind, 0)
        for kind in ("2xx", "4xx", "5xx")
    }
    assert grew == {"2xx": 5, "4xx": 2, "5xx": 0}
    assert after["error_rate"] == 0.0
    assert 0 < after["p50_ms"] <= after["p95_ms"]


@pytest.fixture(scope="module")
def floor(shared_model, tmp_path_factory):
    """prod deployed from a copy of the repository whose autoscale floor is two instances."""
    base = tmp_path_factory.mktemp("floor")
    repo, home = copy_repo(base / "repo"), fresh_home(shared_model, base / "home")[1]
    prod = repo / "environments" / "prod.yml"
    prod.write_text(
        prod.read_text()
        .replace("instance_count: 1", "instance_count: 2")
        .replace("min_instances: 1", "min_instances: 2")
    )
    run_mlops(repo, home, "deploy", "--env", ENV, "--model", f"{MODEL}:1")
    yield repo, home
    run_mlops(repo, home, "down", "--all", check=False)


def test_locally_the_floor_is_that_many_servers_sharing_the_requests(floor):
    repo, home = floor
    state = json.loads(
        (home / ENV / "endpoints" / env_setting(ENV, "endpoint.name") / "endpoint.json").read_text()
    )
    blue = state["deployments"]["blue"]
    (replica,) = blue["replicas"]
    assert alive(blue["pid"], blue["marker"]) and alive(replica["pid"], blue["marker"])
    endpoint = Endpoint.of(home, ENV)
    sample = load_sample(repo)
    folder = Path(blue["folder"])
    logs = (folder / "server.log", folder / "server-2.log")
    before = [scored(log) for log in logs]
    assert [post(endpoint, sample, endpoint.key) for _ in range(4)] == [200] * 4
    grew = [scored(log) - count for log, count in zip(logs, before, strict=True)]
    assert sum(grew) == 4 and min(grew) >= 1, f"each instance answers a share: {grew}"

    # one instance gone: the router's refused connection goes to the other, and its supervisor
    # starts the stopped one again (backends/local/supervisor.py)
    stop(blue["pid"], blue["marker"])
    assert post(endpoint, sample, endpoint.key) == 200
    deadline = time.monotonic() + 90
    while (found := status(repo, home)["deployments"]["blue"])["state"] != "Succeeded":
        assert time.monotonic() < deadline, f"the stopped instance is still down: {found}"
        assert post(endpoint, sample, endpoint.key) == 200
        time.sleep(1)
    state = json.loads(
        (home / ENV / "endpoints" / env_setting(ENV, "endpoint.name") / "endpoint.json").read_text()
    )
    assert state["deployments"]["blue"]["pid"] != blue["pid"], "restarted as a new process"


def scored(log: Path) -> int:
    """How many scoring requests the server behind this log answered with a 200."""
    return log.read_text().count("azmlinfsrv - POST /score 200")

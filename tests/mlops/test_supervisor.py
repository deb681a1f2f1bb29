"""The router's supervisor: a dead deployment server is started again on its port, a bounded
number of times, each restart an event; then it says it gave up, once. The server here is a
process that ends at once (the restart logic is under test, not azmlinfsrv)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlops import events
from mlops.backends.local import inference_server, supervisor
from mlops.backends.local.inference_server import Server


@pytest.fixture
def endpoint(tmp_path, monkeypatch):
    """An endpoint whose one deployment's server is dead; launches start a process that ends."""
    folder = tmp_path / "home" / "preprod" / "endpoints" / "e"
    folder.mkdir(parents=True)
    marker = str(tmp_path / "models")
    record = {
        "status": "Succeeded",
        "pid": None,
        "port": 8999,
        "marker": marker,
        "model": "m:1",
        "artifact_sha256": "0" * 64,
        "folder": str(tmp_path / "blue"),
    }
    state = folder / "endpoint.json"
    state.write_text(json.dumps({"name": "e", "deployments": {"blue": record}}))
    launched = []

    def launch(record, log, endpoint, deployment, collect_dir, token, port=None):
        proc = subprocess.Popen([sys.executable, "-c", "pass", marker])
        proc.wait()
        launched.append((log, endpoint, deployment, port))
        return Server(proc.pid, port, marker), proc

    monkeypatch.setattr(inference_server, "launch_deployment", launch)
    monkeypatch.setattr(supervisor, "FIRST_WAIT_S", 0.0)
    return state, launched


def test_a_dead_server_is_restarted_on_its_port_a_bounded_number_of_times(endpoint):
    state, launched = endpoint
    watch = supervisor.Supervisor(state, tries=3)
    for _ in range(10):  # more looks than tries
        watch.check()
    assert launched == [("server.log", "e", "blue", 8999)] * 3
    logged = events.read_lines(state.parents[3] / events.LOG_FILE)
    kinds = [event["kind"] for event in logged]
    assert kinds == [events.DEPLOYMENT_RESTARTED] * 3 + [events.RESTART_ABANDONED]
    assert [event["details"].get("attempt") for event in logged[:3]] == [1, 2, 3]
    assert json.loads(state.read_text())["deployments"]["blue"]["pid"] is not None


def test_a_deployment_being_deleted_is_left_alone(endpoint):
    state, launched = endpoint
    data = json.loads(state.read_text())
    data["deployments"]["blue"]["status"] = "Deleting"
    state.write_text(json.dumps(data))
    supervisor.Supervisor(state).check()
    assert launched == []


def test_the_wait_between_restarts_grows(endpoint, monkeypatch):
    state, launched = endpoint
    monkeypatch.setattr(supervisor, "FIRST_WAIT_S", 3600.0)  # far longer than this test
    watch = supervisor.Supervisor(state, tries=3)
    for _ in range(5):
        watch.check()
    assert len(launched) == 1  # the first restart is at once; the second waits

"""A local endpoint through faults: a deploy killed at each step of its rollout, two deploys at
once, a killed router, a dead live deployment, damaged state files. Each ends with a consistent
`mlops status`, and `mlops down` leaves no process of the state home.

The tests run in file order on one state home, each starting from the one before it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from endpoint_client import MODEL, Endpoint, fresh_home
from helpers import copy_repo, env_setting, run_mlops

from mlops.backends.local.processes import OWNER_VARIABLE, owned_by

ENV = "preprod"
ROUTER = "mlops.backends.local.router"


@pytest.fixture(scope="module")
def world(shared_model, tmp_path_factory):
    repo, home = fresh_home(shared_model, tmp_path_factory.mktemp("faults") / "home")
    deploy(repo, home)
    yield repo, home
    run_mlops(repo, home, "down", "--all", check=False)


def deploy(repo: Path, home: Path, **kwargs) -> subprocess.CompletedProcess:
    return run_mlops(repo, home, "deploy", "--env", ENV, "--model", f"{MODEL}:1", **kwargs)


def endpoint_dir(home: Path) -> Path:
    return home / ENV / "endpoints" / env_setting(ENV, "endpoint.name")


def state_of(home: Path) -> dict:
    return json.loads((endpoint_dir(home) / "endpoint.json").read_text())


def status(repo: Path, home: Path) -> dict:
    """`mlops status` for the environment's endpoint, which must answer and agree with itself."""
    result = run_mlops(repo, home, "status", "--env", ENV)
    (endpoint,) = json.loads(result.stdout)[ENV]
    assert sum(endpoint["traffic"].values()) == 100, endpoint
    live = max(endpoint["traffic"], key=endpoint["traffic"].get)
    assert endpoint["deployments"][live]["state"] == "Succeeded", endpoint
    return endpoint


def untracked_processes(home: Path) -> list[str]:
    """Processes of the state home that the state file does not account for: each must be
    the router or belong to a deployment the file records (a record comes before its process)."""
    state = state_of(home)
    owners = {str(endpoint_dir(home))} | {d["folder"] for d in state["deployments"].values()}
    stray = []
    for process in owned_by(home / ENV):
        try:
            if process.environ().get(OWNER_VARIABLE) not in owners:
                stray.append(" ".join(process.cmdline())[:160])
        except psutil.Error:
            pass
    return stray


def start_deploy(repo: Path, home: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "MLOPS_ROOT": str(repo),
        "MLOPS_HOME": str(home),
        "MLOPS_BACKEND": "local",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "mlops", "deploy", "--env", ENV, "--model", f"{MODEL}:1"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_when_said(proc: subprocess.Popen, words: str, delay: float = 0) -> bool:
    """SIGKILL the command (only it, not what it started) once it prints words."""
    for line in proc.stdout:  # ends when the command does: its own waits are bounded
        if words in line:
            time.sleep(delay)
            proc.kill()
            proc.wait(timeout=30)
            proc.stdout.close()
            return True
    proc.wait(timeout=30)
    proc.stdout.close()
    return False


@pytest.mark.parametrize(
    ("words", "delay"),
    [
        ("starting deployment", 0),  # copying the model, or launching the server
        ("starting deployment", 2),  # the server is starting: its process exists, not ready
        ("passed its smoke test", 0),  # before the traffic moves
        ("now sends 100%", 0),  # traffic moved, the old deployment not yet retired
        ("retired", 0),
    ],
    ids=["copying", "server-starting", "tested", "traffic-moved", "retired"],
)
def test_a_deploy_killed_at_any_step_leaves_a_consistent_endpoint(world, words, delay):
    repo, home = world
    assert kill_when_said(start_deploy(repo, home), words, delay), words
    endpoint = status(repo, home)  # the next verb finishes or undoes the killed deploy
    live = max(endpoint["traffic"], key=endpoint["traffic"].get)
    assert list(endpoint["deployments"]) == [live], endpoint
    assert endpoint["mirror_traffic"] == {}
    assert not (endpoint_dir(home) / "rollout.json").exists()
    last = audit_trail(home)[-1]  # an entry for whatever serves, or for the undone deploy
    assert (last["action"], last["deployment"]) in {("deployed", live), ("rolled back", None)}
    if words == "now sends 100%":  # the traffic moved: the next verb completes the deploy
        assert (last["action"], last["deployment"]) == ("deployed", live)
    run_mlops(repo, home, "test", "--env", ENV)
    assert untracked_processes(home) == []


def audit_trail(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / ENV / "history.jsonl").read_text().splitlines()]


def test_a_deploy_killed_while_mirroring_leaves_no_mirror_on(world, tmp_path):
    _, home = world
    repo = copy_repo(tmp_path / "repo")  # its own environment file, with a mirror
    settings = repo / "environments" / f"{ENV}.yml"
    assert "mirror_percent: 0\n" in settings.read_text()
    settings.write_text(settings.read_text().replace("mirror_percent: 0", "mirror_percent: 20"))
    before = status(repo, home)
    assert kill_when_said(start_deploy(repo, home), "mirroring 20%")
    assert state_of(home)["mirror_traffic"], "the killed deploy should have left its mirror on"
    endpoint = status(repo, home)
    assert endpoint["mirror_traffic"] == {}
    assert list(endpoint["deployments"]) == list(before["deployments"])  # the new one undone
    last = audit_trail(home)[-1]
    assert last["action"] == "rolled back" and "interrupted" in str(audit_events(home)[-1])
    assert untracked_processes(home) == []


def audit_events(home: Path) -> list[dict]:
    lines = (home / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if '"deployment.rolled_back"' in line]


def test_the_next_deploy_after_killed_ones_leaves_one_deployment(world):
    repo, home = world
    deploy(repo, home)
    endpoint = status(repo, home)
    assert len(endpoint["deployments"]) == 1, endpoint
    assert untracked_processes(home) == []
    assert len(owned_by(endpoint_dir(home) / "deployments")) >= 1


def test_two_deploys_at_once_both_finish_one_after_the_other(world):
    repo, home = world
    first, second = start_deploy(repo, home), start_deploy(repo, home)
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert any("waiting for mlops (pid" in output for output in outputs), outputs
    endpoint = status(repo, home)
    assert len(endpoint["deployments"]) == 1, endpoint
    assert untracked_processes(home) == []


def test_a_killed_router_comes_back_on_its_port_once(world):
    repo, home = world
    before = state_of(home)
    os.kill(before["router_pid"], signal.SIGKILL)
    with ThreadPoolExecutor(3) as pool:  # three commands find it dead at once
        results = list(pool.map(lambda _: run_mlops(repo, home, "status", "--env", ENV), range(3)))
    uris = {json.loads(r.stdout)[ENV][0]["scoring_uri"] for r in results}
    assert uris == {f"http://127.0.0.1:{before['port']}/score"}
    routers = [p for p in owned_by(endpoint_dir(home)) if ROUTER in p.cmdline()]
    assert len(routers) == 1
    run_mlops(repo, home, "test", "--env", ENV)


def test_a_wrong_router_pid_is_corrected_not_a_second_router(world):
    repo, home = world
    state = state_of(home)
    router = state["router_pid"]
    path = endpoint_dir(home) / "endpoint.json"
    path.write_text(json.dumps({**state, "router_pid": os.getpid()}))  # alive, not a router
    shown = json.loads(run_mlops(repo, home, "status", "--env", ENV).stdout)[ENV][0]
    assert shown["scoring_uri"] == f"http://127.0.0.1:{state['port']}/score"
    routers = [p.pid for p in owned_by(endpoint_dir(home)) if ROUTER in p.cmdline()]
    assert routers == [router]
    assert state_of(home)["router_pid"] == router


def test_a_dead_deployment_server_is_restarted_by_the_router(world):
    """Meanwhile a request gets an answer or a 503 with Retry-After, never a 502."""
    repo, home = world
    state = state_of(home)
    live = max(state["traffic"], key=state["traffic"].get)
    dead = state["deployments"][live]["pid"]
    os.killpg(dead, signal.SIGKILL)  # the gunicorn master and its workers
    psutil.wait_procs(owned_by(endpoint_dir(home) / "deployments"), timeout=10)
    endpoint, sample = Endpoint.of(home, ENV), (repo / "src/model/sample-request.json").read_bytes()
    statuses, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = endpoint.send(endpoint.request(sample), timeout=30)
        statuses.append(answer.status)
        if answer.status == 503:
            assert answer.headers["retry-after"] == "2", answer.headers
            assert "restarting" in answer.json()["error"]
        if answer.status == 200 and state_of(home)["deployments"][live]["pid"] != dead:
            break
        time.sleep(0.2)
    assert set(statuses) <= {200, 503} and statuses[-1] == 200, statuses
    assert 503 in statuses  # the restart was seen from outside, not only in the file
    restarted = [
        json.loads(line)
        for line in (home / "events.jsonl").read_text().splitlines()
        if '"deployment.restarted"' in line
    ]
    assert restarted[-1]["details"]["deployment"] == live, restarted
    assert restarted[-1]["details"]["attempt"] == 1
    assert status(repo, home)["deployments"][live]["state"] == "Succeeded"
    run_mlops(repo, home, "test", "--env", ENV)
    assert untracked_processes(home) == []


def _edited(change):
    """A damage made from the good file: its JSON object changed by change(state)."""

    def damage(good: bytes) -> bytes:
        state = json.loads(good)
        change(state)
        return json.dumps(state).encode()

    return damage


DAMAGE = {
    "empty": lambda good: b"",
    "cut short": lambda good: b'{"name": "mlops-pre',
    "not an object": lambda good: b"[]",
    "not UTF-8": lambda good: b"\xff\xfe\x00",
    "without its name": _edited(lambda state: state.pop("name")),
    "traffic a list": _edited(lambda state: state.update(traffic=[100])),
    "a deployment a string": _edited(
        lambda state: state["deployments"].update({k: "x" for k in state["deployments"]})
    ),
    "port a string": _edited(lambda state: state.update(port=str(state["port"]))),
    "traffic to no deployment": _edited(lambda state: state.update(traffic={"ghost": 100})),
    "nested too deeply": lambda good: good.rstrip()[:-1] + b', "x": ' + b"[" * 100_000 + b"]}",
}


UNPARSABLE = ("empty", "cut short", "not an object", "not UTF-8")  # every verb; the rest: one


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_endpoint_state_is_one_sentence_with_the_way_out(world, damage):
    repo, home = world
    path = endpoint_dir(home) / "endpoint.json"
    good = path.read_bytes()
    path.write_bytes(DAMAGE[damage](good))
    try:
        # the router keeps the last good state: the live endpoint still answers
        sample = (repo / "src" / "model" / "sample-request.json").read_bytes()
        endpoint = Endpoint(json.loads(good)["port"], json.loads(good)["key"])
        assert endpoint.send(endpoint.request(sample), timeout=30).status == 200
        shown = run_mlops(repo, home, "status", "--env", ENV)
        assert json.loads(shown.stdout)[ENV][0]["deployments"] == {}
        for verb in ("test", "deploy", "key") if damage in UNPARSABLE else ("test",):
            args = ("--model", f"{MODEL}:1") if verb == "deploy" else ()
            refused = run_mlops(repo, home, verb, "--env", ENV, *args, check=False)
            assert refused.returncode == 2, (verb, refused.stderr)
            (line,) = refused.stderr.strip().splitlines()
            assert "endpoint.json is unreadable" in line and f"mlops down --env {ENV}" in line
            assert "Traceback" not in refused.stderr
    finally:
        path.write_bytes(good)
    run_mlops(repo, home, "test", "--env", ENV)


def test_down_stops_a_damaged_endpoint_and_every_process(world):
    repo, home = world
    path = endpoint_dir(home) / "endpoint.json"
    path.write_bytes(DAMAGE["without its name"](path.read_bytes()))
    assert owned_by(home / ENV)
    stopped = run_mlops(repo, home, "down", "--env", ENV, "--yes")
    assert "found by its processes" in stopped.stdout
    (warning,) = stopped.stderr.strip().splitlines()
    assert "endpoint.json is unreadable (name: field required)" in warning, warning
    assert owned_by(home) == []
    assert json.loads(run_mlops(repo, home, "status", "--env", ENV).stdout) == {ENV: []}
    deploy(repo, home)  # and it starts afresh
    run_mlops(repo, home, "test", "--env", ENV)


def test_a_damaged_registry_entry_is_one_sentence(world):
    repo, home = world
    meta = home / "registry" / MODEL / "1" / "meta.json"
    good = meta.read_bytes()
    meta.write_bytes(b'{"name": ')
    try:
        refused = deploy(repo, home, check=False)
    finally:
        meta.write_bytes(good)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "meta.json is unreadable" in line


def test_the_monitor_counts_unreadable_collected_lines_and_carries_on(world):
    repo, home = world
    folder = home / ENV / "collected"
    (latest,) = sorted(folder.glob("inference-*.jsonl"))[-1:]
    record = json.loads(latest.read_text().splitlines()[0])
    row = record["inputs"][0]
    record.update(traffic="live", request_id="hand-made")
    with latest.open("a") as handle:
        handle.write(json.dumps({**record, "inputs": [{**row, "mean_area": "big"}]}) + "\n")
        handle.write('{"request_id": "torn", "inpu\n')
    result = run_mlops(repo, home, "monitor", "--env", ENV, "--since", "1h", check=False)
    assert result.returncode in (0, 5), result.stderr
    assert "2 unreadable collected row(s) were skipped" in result.stdout
    bad_window = run_mlops(repo, home, "monitor", "--env", ENV, "--since", "soon", check=False)
    assert bad_window.returncode == 2 and "window 'soon'" in bad_window.stderr


def test_down_all_leaves_no_process_of_the_state_home(world):
    repo, home = world
    run_mlops(repo, home, "down", "--all")
    assert owned_by(home) == []

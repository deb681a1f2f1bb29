"""The whole lifecycle on the local backend, in a disposable copy of the repository.

The module runs `mlops demo` once (fixture `demo`) and its tests share that state
home: the demo's artifacts and endpoints, a re-run, a refused challenger, two
failed rollouts, and `mlops down`. Each step a test needs beyond the demo is a
module fixture too, so any one test passes when run alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import copy_repo, env_setting, run_mlops
from mlflow import MlflowClient

from mlops.backends.local.processes import alive, owned_by

MODEL = env_setting("prod", "model.name")
BAD_REQUESTS = {
    "non-JSON body": b"rows please",
    "wrong top-level shape": b'[{"mean_radius": 1}]',
    "missing feature": None,  # built from the sample below
    "extra feature": None,
    "wrong type": None,
    "NaN": None,
    "infinity": None,
    "empty batch": b'{"data": []}',
    "oversized batch": None,
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path, str]:
    """(repo, home, what it printed) after one `mlops demo`: dev to prod, both endpoints up."""
    base = tmp_path_factory.mktemp("lifecycle")
    repo, home = copy_repo(base / "repo"), base / "home"
    try:
        yield repo, home, run_mlops(repo, home, "demo").stdout
    finally:
        run_mlops(repo, home, "down", "--all", check=False)


@pytest.fixture(scope="module")
def world(demo) -> tuple[Path, Path]:
    repo, home, _ = demo
    return repo, home


@pytest.fixture(scope="module")
def rerun(world) -> tuple[str, list[tuple[int, str]]]:
    """A second `mlops demo` over the first: what it printed, and the processes it replaced."""
    repo, home = world
    before = our_pids(home)
    return run_mlops(repo, home, "demo").stdout, before


@pytest.fixture(scope="module")
def worse_challenger(world) -> str:
    """Prod's file promoted to :1 with floors so low that only the champion can refuse, and a
    one-tree forest trained, registered and shared as :2: the NAME:VERSION it returns."""
    repo, home = world
    run_mlops(repo, home, "promote", "--env", "prod", "--model", f"{MODEL}:1", "--write")
    prod = repo / "environments" / "prod.yml"
    assert "version: 1" in prod.read_text()
    prod.write_text(re.sub(r"at_least: 0\.\d+", "at_least: 0.5", prod.read_text()))
    dev = repo / "environments" / "dev.yml"
    dev.write_text(
        dev.read_text()
        .replace("n_estimators: 100", "n_estimators: 1")
        .replace("max_depth: 8", "max_depth: 1")
    )
    outputs = home / "github-output"
    output = {"GITHUB_OUTPUT": str(outputs)}
    run_mlops(repo, home, "train", "--env", "dev", extra_env=output)
    job = outputs.read_text().split("job=")[-1].strip()
    run_mlops(repo, home, "register", "--env", "dev", "--job", job)
    run_mlops(repo, home, "share", "--env", "dev", "--model", f"{MODEL}:2")
    return f"{MODEL}:2"


def endpoint_state(home: Path, env: str) -> dict:
    return json.loads(
        (home / env / "endpoints" / env_setting(env, "endpoint.name") / "endpoint.json").read_text()
    )


def live_folder(home: Path, env: str) -> Path:
    state = endpoint_state(home, env)
    live = max(state["traffic"], key=state["traffic"].get)
    return Path(state["deployments"][live]["folder"])


def scoring(home: Path, env: str) -> tuple[str, dict[str, str]]:
    """The endpoint's URL and the headers a client sends: JSON and the endpoint's key."""
    state = endpoint_state(home, env)
    return f"http://127.0.0.1:{state['port']}/score", {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {state['key']}",
    }


def post(target: tuple[str, dict[str, str]], body: bytes) -> tuple[int, dict]:
    url, headers = target
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as reply:
        return reply.code, json.loads(reply.read())


def our_pids(home: Path) -> list[tuple[int, str]]:
    pids = []
    for path in home.glob("*/endpoints/*/endpoint.json"):
        state = json.loads(path.read_text())
        pids.append((state["router_pid"], str(path)))
        pids += [(d["pid"], d["marker"]) for d in state["deployments"].values()]
    return pids


def test_demo_runs_dev_to_prod_and_says_where_to_look(demo):
    repo, home, printed = demo
    for stage in (
        "train (dev)",
        "register (dev)",
        "gate",
        "deploy (preprod",
        "test (preprod)",
        "promote",
        "deploy (prod",
        "test (prod)",
    ):
        assert re.search(rf"\[\s*\d+\.\ds\] ✓ {re.escape(stage)}", printed), stage
    assert re.search(r"prod +endpoint +http://127\.0\.0\.1:\d+/score", printed)
    assert "mlflow ui --backend-store-uri sqlite:///" in printed
    sample = (repo / "src" / "model" / "sample-request.json").read_bytes()
    status, answer = post(scoring(home, "prod"), sample)
    assert status == 200
    assert len(answer["predictions"]) == len(json.loads(sample)["data"])
    url, headers = scoring(home, "prod")
    assert post((url, {"Content-Type": "application/json"}), sample)[0] == 401
    # the printed curl line, run as a newcomer would: with the key it scores, without it not
    (curl,) = re.findall(r"try it +(curl .*)", printed)
    env = {**os.environ, "MLOPS_ROOT": str(repo), "MLOPS_HOME": str(home)}
    mlops = f"{sys.executable} -m mlops"
    keyed = subprocess.run(
        ["bash", "-c", curl.replace(".venv/bin/mlops", mlops)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(json.loads(keyed.stdout)["predictions"]) == len(json.loads(sample)["data"])
    unkeyed = subprocess.run(
        ["bash", "-c", re.sub(r'-H "Authorization[^"]*" ', "", curl)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Authorization: Bearer" in json.loads(unkeyed.stdout)["error"]


def test_prod_serves_the_bytes_trained_in_dev_with_full_lineage(world):
    repo, home = world
    # one dev job, or two once the demo ran again: the re-run trains the same bytes
    trained = sorted(home.glob("dev/jobs/*/train/model/model/model.onnx"))
    assert trained, "no dev job holds a trained model.onnx"
    served = f"azureml-models/{MODEL}/1/model.onnx"
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'dev' / 'mlflow.db'}")
    registered = Path(client.get_model_version_download_uri(MODEL, "1").removeprefix("file://"))
    shared = home / "registry" / MODEL / "1" / "model" / "model.onnx"
    digests = {
        **{f"dev job output {path.parts[-6]}": sha256(path) for path in trained},
        "dev MLflow registry": sha256(registered / "model.onnx"),
        "shared registry": sha256(shared),
        "preprod deployment": sha256(live_folder(home, "preprod") / served),
        "prod deployment": sha256(live_folder(home, "prod") / served),
    }
    assert len(set(digests.values())) == 1, digests
    tags = json.loads((home / "registry" / MODEL / "1" / "meta.json").read_text())["tags"]
    assert tags["onnx_sha256"] == digests["shared registry"]
    assert tags["data_sha256"] == sha256(repo / "src" / "model" / "data" / "breast_cancer.csv")
    assert tags["git_commit"] == "uncommitted"  # the copy is no git checkout
    assert re.fullmatch(r"[0-9a-f]{32}", tags["run_id"])
    assert float(tags["metric.roc_auc"]) > 0.9
    assert tags["param.n_estimators"] == "100"


def test_demo_leaves_prod_file_untouched_and_renders_the_pull_request(world):
    repo, home = world
    assert "version: null" in (repo / "environments" / "prod.yml").read_text()
    diff = (home / "promotion" / "prod.yml.diff").read_text()
    assert "+  version: 1" in diff
    body = (home / "promotion" / "pr-body.md").read_text()
    assert "| metric | challenger | champion | change |" in body


def registry_tags(home: Path, version: int) -> dict[str, str]:
    return json.loads((home / "registry" / MODEL / str(version) / "meta.json").read_text())["tags"]


def test_the_model_card_of_prods_version_holds_its_cohorts_lineage_and_verdict(world):
    repo, home = world
    tags = registry_tags(home, 1)
    shown = run_mlops(repo, home, "card", "--env", "prod", "--model", f"{MODEL}:1").stdout
    assert shown.startswith(f"# Model card: {MODEL}:1\n")
    assert "## Intended use" in shown and "## Limitations" in shown
    (small,) = [line for line in shown.splitlines() if line.startswith("| small |")]
    assert f"{float(tags['cohort.tumour_size.small.recall']):.4f}" in small
    assert f"- job: `{tags['job_id']}`" in shown and f"`{tags['onnx_sha256']}`" in shown
    assert re.search(r"^- (passed|refused) for prod \(\d{4}-\d\d-\d\dT", shown, re.M), shown
    body = (home / "promotion" / "pr-body.md").read_text()
    assert "## Model cards" in body and "<summary>challenger's model card</summary>" in body
    assert f"| model | {MODEL}:1 | — |" in body  # prod served nothing before the demo's promotion


def gate_with_prod_edited(world, old: str, new: str):
    """The gate's run for prod on version 1 with one edit of environments/prod.yml, the file
    put back afterwards."""
    repo, home = world
    prod = repo / "environments" / "prod.yml"
    before = prod.read_text()
    assert old in before, old
    prod.write_text(before.replace(old, new))
    try:
        return run_mlops(repo, home, "gate", "--env", "prod", "--model", f"{MODEL}:1", check=False)
    finally:
        prod.write_text(before)


def test_a_challenger_passing_overall_but_failing_one_group_is_refused(world):
    """The floor of small tumours' recall set just above the model's: the overall recall
    still meets its floor, the group does not, and the gate names it."""
    repo, home = world
    tags = registry_tags(home, 1)
    small = float(tags["cohort.tumour_size.small.recall"])
    assert (
        float(tags["metric.recall"]) >= env_setting("prod", "gate.thresholds")["recall"]["at_least"]
    )
    floor = round(small + 0.01, 2)
    refused = gate_with_prod_edited(world, "bounds: {recall: 0.75,", f"bounds: {{recall: {floor},")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert re.search(r"ok: challenger recall 0\.\d+ meets the floor 0\.\d+\n", refused.stdout)
    assert (
        f"REFUSED: challenger recall on tumour_size=small {small:.4f} is below the floor {floor:.4f}"
        in refused.stdout
    )
    assert f"error: the gate refused {MODEL}:1 for prod" in refused.stderr


def test_a_cohort_features_py_does_not_declare_is_bad_input_and_changes_nothing(world):
    refused = gate_with_prod_edited(
        world, "    tumour_size:\n      min_rows", "    age:\n      min_rows"
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: environments/prod.yml: field `gate.cohorts.age` names no cohort of "
        "src/model/features.py COHORTS (declared: tumour_size)"
    )


def test_history_shows_who_deployed_what_and_the_registry_version_carries_it(world):
    repo, home = world
    tags = json.loads((home / "registry" / MODEL / "1" / "meta.json").read_text())["tags"]
    sha = tags["onnx_sha256"]
    shown = run_mlops(repo, home, "history", "--env", "prod").stdout.splitlines()
    actions = [line.split()[2] for line in shown]  # after the date and the time
    assert actions[-2:] == ["deployed", "promoted"], shown  # newest first: deployed after promoted
    for line in shown[-2:]:
        assert f"{MODEL}:1" in line and f"sha256 {sha[:12]}" in line
        assert re.search(r" by \S+ ", line)
        assert f" commit {os.environ.get('GITHUB_SHA', 'uncommitted')[:12]}" in line  # no checkout
    assert f"endpoint {env_setting('prod', 'endpoint.name')} deployment blue" in shown[-2]
    audit = {k: json.loads(v) for k, v in tags.items() if k.startswith("audit.prod.")}
    assert {"deployed", "promoted"} <= {entry["action"] for entry in audit.values()}
    local = [
        json.loads(line) for line in (home / "prod" / "history.jsonl").read_text().splitlines()
    ]
    assert {"deployed", "promoted"} <= {entry["action"] for entry in local}
    logged = [json.loads(line)["kind"] for line in (home / "events.jsonl").read_text().splitlines()]
    for kind in (
        "training.completed",
        "model.registered",
        "model.shared",
        "model.gated",
        "model.deployed",
        "model.promoted",
        "drift.detected",
    ):
        assert kind in logged, kind


def bad_requests(sample: dict) -> dict[str, bytes]:
    row = sample["data"][0]
    built = dict(BAD_REQUESTS)
    built["missing feature"] = json.dumps(
        {"data": [{k: v for k, v in row.items() if k != "mean_area"}]}
    ).encode()
    built["extra feature"] = json.dumps({"data": [{**row, "colour": 3}]}).encode()
    built["wrong type"] = json.dumps({"data": [{**row, "mean_area": "large"}]}).encode()
    built["NaN"] = json.dumps({"data": [{**row, "mean_area": float("nan")}]}).encode()
    built["infinity"] = json.dumps({"data": [{**row, "mean_area": float("inf")}]}).encode()
    built["oversized batch"] = json.dumps({"data": [row] * 1001}).encode()
    return built


@pytest.mark.parametrize("env", ["preprod", "prod"])
def test_every_bad_request_gets_a_4xx_sentence_and_the_endpoint_keeps_serving(world, env):
    repo, home = world
    target = scoring(home, env)
    sample = (repo / "src" / "model" / "sample-request.json").read_bytes()
    for kind, body in bad_requests(json.loads(sample)).items():
        status, answer = post(target, body)
        assert status == 400, kind
        assert answer["error"] and "\n" not in answer["error"], kind
    assert post(target, sample)[0] == 200


def test_rerun_registers_nothing_new_and_replaces_endpoints_cleanly(world, rerun):
    repo, home = world
    printed, before = rerun
    assert f"{MODEL}:1 already holds these bytes" in printed
    # the second run gates against what prod serves, not against prod.yml (still empty)
    prod = env_setting("prod", "endpoint.name")
    assert f"champion: {MODEL}:1, read from prod's live endpoint ({prod}/blue)" in printed
    assert sorted(p.name for p in (home / "registry" / MODEL).iterdir()) == ["1"]
    for env in ("preprod", "prod"):
        state = endpoint_state(home, env)
        assert list(state["deployments"]) == ["green"]
        assert state["traffic"] == {"green": 100}
    old_deployments = [(pid, marker) for pid, marker in before if "deployments" in marker]
    assert old_deployments and not any(alive(pid, marker) for pid, marker in old_deployments)
    body = (home / "promotion" / "pr-body.md").read_text()  # the first run's entries, linked
    assert "### Previous entries in prod's audit trail" in body
    assert re.search(rf"- .*: deployed `{MODEL}:1` \(sha256 `[0-9a-f]{{12}}`\) by ", body)


def test_the_endpoint_publishes_the_contracts_openapi_documents(world):
    """The schema, the sample request and what the inference server publishes agree."""
    from features import openapi, parse_request, swagger2

    repo, home = world
    sample = json.loads((repo / "src" / "model" / "sample-request.json").read_text())
    assert len(parse_request(json.dumps(sample))) == len(sample["data"])
    url, headers = scoring(home, "prod")
    base = url.removesuffix("/score")
    for query, expected in (("?version=3", openapi(sample)), ("", swagger2(sample))):
        request = urllib.request.Request(f"{base}/swagger.json{query}", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert json.loads(reply.read()) == expected, query or "default (2.0)"


def test_profile_measures_the_endpoint_and_recommends_instances(world):
    repo, home = world
    probes = lambda: sum(r["traffic"] == "probe" for r in collected(home, "prod"))  # noqa: E731
    before = probes()
    result = run_mlops(
        repo, home, "profile", "--env", "prod", "--seconds", "2", "--max-requests", "300"
    )
    found = json.loads((home / "prod" / "profile.json").read_text())
    assert found["requests"] > 0 and found["errors"] == 0
    # its load carries the endpoint's internal token, so the router keeps the probe mark
    # and the monitor leaves it out
    assert probes() - before == found["requests"]
    assert found["target_rps"] == 20 and found["recommended_instances"] >= 1
    low, high = found["recommended_instances"], found["recommended_max_instances"]
    assert low <= high
    assert (
        f"in environments/prod.yml set endpoint.autoscale.min_instances {low} and "
        f"max_instances {high}, with endpoint.instance_count within them (now 1..3, "
        "instance_count 1)"
    ) in result.stdout


def collected(home: Path, env: str) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(home.glob(f"{env}/collected/*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_collected_records_survive_a_restart_and_concurrent_requests(world):
    from concurrent.futures import ThreadPoolExecutor

    repo, home = world
    url, headers = scoring(home, "prod")
    sample = (repo / "src" / "model" / "sample-request.json").read_bytes()

    def send(request_id: str) -> int:
        request = urllib.request.Request(
            url, data=sample, headers={**headers, "x-request-id": request_id}
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert reply.headers["x-request-id"] == request_id  # echoed, to match its record
            return reply.status

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, [f"before-{i}" for i in range(40)])) == {200}
    run_mlops(
        repo, home, "deploy", "--env", "prod", "--model", f"{MODEL}:1"
    )  # a new server process
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, [f"after-{i}" for i in range(40)])) == {200}

    records = collected(home, "prod")  # every line whole
    ids = [r["request_id"] for r in records if r["request_id"].startswith(("before-", "after-"))]
    assert sorted(ids) == sorted(
        [f"before-{i}" for i in range(40)] + [f"after-{i}" for i in range(40)]
    )
    assert {r["model"] for r in records} == {f"{MODEL}:1"}
    ours = [r for r in records if r["request_id"].startswith(("before-", "after-"))]
    assert {r["traffic"] for r in ours} == {"live"}
    assert {r["traffic"] for r in records} >= {"live", "smoke"}  # the rollouts' own tests
    prod = env_setting("prod", "endpoint.name")
    assert all(r["deployment"].startswith(f"{prod}/") for r in records)


def test_monitor_reports_the_drift_of_prods_traffic_and_exits_5(world):
    """Prod saw the demo's scaled rows and the same sample rows over and over: that is drift."""
    repo, home = world
    drift = run_mlops(
        repo,
        home,
        "monitor",
        "--env",
        "prod",
        check=False,
        extra_env={"GITHUB_OUTPUT": str(home / "out")},
    )
    assert drift.returncode == 5, drift.stderr
    assert "feature(s) drifted in prod" in drift.stderr
    assert "drift=true" in (home / "out").read_text()
    report = (home / "prod" / "monitor" / "monitor-report.md").read_text()
    assert "| mean_radius |" in report and "**drift**" in report
    assert (home / "prod" / "monitor" / "monitor.png").read_bytes()[:4] == b"\x89PNG"


def test_labels_that_contradict_prods_answers_degrade_its_recall_and_start_retraining(
    world, tmp_path
):
    """Labels sent back for prod's real collected requests (each row labelled the opposite of
    what prod answered): `mlops feedback` reports recall 0 and writes a training table;
    `mlops monitor --labels` exits 5 naming drift and performance."""
    repo, home = world
    prod = env_setting("prod", "endpoint.name")
    lines = ["request_id,label"]
    for path in sorted((home / "prod" / "collected").glob("*.jsonl")):
        for text in path.read_text().splitlines():
            record = json.loads(text)
            if record["traffic"] != "live" or not record["deployment"].startswith(f"{prod}/"):
                continue
            answers = record["outputs"]["probabilities"]  # what the metrics read
            for row, probability in enumerate(answers):
                suffix = f"#{row}" if len(answers) > 1 else ""
                lines.append(f"{record['request_id']}{suffix},{int(probability < 0.5)}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    out = tmp_path / "feedback.csv"
    done = run_mlops(
        repo, home, "feedback", "--env", "prod", "--labels", str(labels), "--out", str(out)
    )
    assert "recall 0.0000" in done.stdout, done.stdout
    with open(out, newline="") as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == len(lines) - 1
    # the command it prints makes the rows a new training data version (mlops data), here in
    # a copy of dev's data versions: later tests train on this world's dev data
    (command,) = re.findall(r"next: mlops (data register [^\n]*?)  \(", done.stdout)
    assert "ASSET" not in command, command  # the served model names its data version
    aside = tmp_path / "home"
    shutil.copytree(home / "dev" / "data", aside / "dev" / "data")
    run_mlops(repo, aside, *command.split())
    base = command.split("--base ")[1].split()[0]
    asset = base.split(":")[0]
    listed = run_mlops(repo, aside, "data", "list", "--env", "dev", "--asset", asset).stdout
    rows = {line.split()[0]: int(line.split()[2]) for line in listed.splitlines()}
    (new,) = [line.split()[0] for line in listed.splitlines() if f"from {base}" in line]
    assert rows[new] == rows[base] + len(lines) - 1
    monitored = run_mlops(
        repo, home, "monitor", "--env", "prod", "--labels", str(labels),
        check=False, extra_env={"GITHUB_OUTPUT": str(tmp_path / "out")},
    )  # fmt: skip
    assert monitored.returncode == 5, monitored.stderr
    assert "and performance degraded in prod on labelled requests (" in monitored.stderr, (
        monitored.stdout
    )
    written = (tmp_path / "out").read_text()
    assert "retrain=true" in written and "reason=drift and performance" in written
    report = (home / "prod" / "monitor" / "monitor-report.md").read_text()
    assert "## Performance on labelled requests" in report and "**degraded**" in report


def test_the_gate_refuses_a_worse_challenger(world, worse_challenger):
    repo, home = world
    prod = repo / "environments" / "prod.yml"
    before = prod.read_text()
    refused = run_mlops(
        repo, home, "gate", "--env", "prod", "--model", worse_challenger, check=False
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert f"error: the gate refused {worse_challenger} for prod" in refused.stderr
    assert "worse than champion" in refused.stdout
    refused = run_mlops(
        repo, home, "promote", "--env", "prod", "--model", worse_challenger, check=False
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert (
        f"serves {MODEL}:1" in refused.stderr
        and "prod takes only what preprod serves" in refused.stderr
    )
    assert prod.read_text() == before


def test_an_unreadable_champion_fails_closed(world, worse_challenger):
    """Prod serves version 1; with its registry entry unreadable, even a good challenger is refused."""
    repo, home = world
    entry = home / "registry" / MODEL / "1"
    hidden = entry.with_name(".hidden-1")
    entry.rename(hidden)
    try:
        refused = run_mlops(
            repo, home, "gate", "--env", "prod", "--model", worse_challenger, check=False
        )
    finally:
        hidden.rename(entry)
    assert refused.returncode == 3
    assert (
        f"champion {MODEL}:1: metrics cannot be read (the registry holds no such model); failing closed"
        in refused.stdout
    )


@pytest.mark.parametrize(
    ("sabotage", "expected"),
    [
        (
            "    return _json(encoded, 200, request_id)",
            "failed its smoke test: sample request sent 3 rows but got 0 predictions",
        ),
        ("    _session = load_session(", "failed to start"),
    ],
    ids=["fails-smoke-test", "fails-to-start"],
)
def test_a_failing_new_deployment_is_rolled_back(world, sabotage, expected):
    repo, home = world
    score = repo / "src" / "model" / "score.py"
    original = score.read_text()
    broken = {
        "    return _json(encoded, 200, request_id)": '    return _json({"predictions": [], "probabilities": []}, 200)',
        "    _session = load_session(": '    raise RuntimeError("model store unreachable")\n    _session = load_session(',
    }[sabotage]
    assert sabotage in original, "the sabotage must match score.py, or this test proves nothing"
    score.write_text(original.replace(sabotage, broken))
    before = endpoint_state(home, "preprod")
    (live,) = before["deployments"]
    new = "green" if live == "blue" else "blue"  # the rollout's name for the next deployment
    try:
        failed = run_mlops(
            repo, home, "deploy", "--env", "preprod", "--model", f"{MODEL}:1", check=False
        )
    finally:
        score.write_text(original)
    assert failed.returncode == 4, failed.stdout + failed.stderr
    assert expected in failed.stderr
    assert "the previous deployment keeps serving." in failed.stderr
    assert "Last lines of its log:" in failed.stderr
    if "start" in expected:
        assert "RuntimeError: model store unreachable" in failed.stderr.split("Last lines")[0]
    after = endpoint_state(home, "preprod")
    assert after["traffic"] == before["traffic"]
    assert list(after["deployments"]) == list(before["deployments"])
    run_mlops(repo, home, "test", "--env", "preprod")
    endpoint_dir = home / "preprod" / "endpoints" / env_setting("preprod", "endpoint.name")
    assert not (endpoint_dir / "deployments" / new).exists(), "the failed deployment is cleaned up"
    assert list((endpoint_dir / "logs").glob(f"{new}-*.log")), "its log is kept"
    (newest,) = run_mlops(repo, home, "history", "--env", "preprod", "--last", "1").stdout.split(
        "\n", 1
    )[:1]
    assert " rolled back " in newest and f"{MODEL}:1" in newest


def test_down_stops_everything_it_started(world):
    repo, home = world
    started = our_pids(home)
    assert len(started) == 4  # two routers, two live deployments
    assert all(alive(pid, marker) for pid, marker in started)
    run_mlops(repo, home, "down", "--all")
    assert not any(alive(pid, marker) for pid, marker in started)
    status = json.loads(run_mlops(repo, home, "status").stdout)
    assert status == {"dev": [], "preprod": [], "prod": []}
    assert owned_by(home) == []  # gunicorn's workers and any leftover too

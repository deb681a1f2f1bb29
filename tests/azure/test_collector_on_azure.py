"""score.py's Azure collector path, run by the double as Azure runs the container: requests the
data collector merges into one line keep their own ids, so labelled feedback finds each."""

import json
import os
import subprocess
import sys

from azure.core.rest import HttpRequest
from fake_azure import CI_PERSONA, KEYS, Identity
from harness import release_to_registry
from helpers import MODEL_DIR, ROOT, env_setting

from mlops import lifecycle

PROD = env_setting("prod", "endpoint.name")


def test_requests_merged_by_the_collector_keep_their_own_ids(ctx, fake):
    fake.grants[Identity(CI_PERSONA, "prod")] = [("Storage Blob Data Reader", "storage")]
    lifecycle.deploy(ctx, "prod", release_to_registry(ctx).ref)
    fake.write_collected()  # the rollout's own requests, written before ours
    before = dict(fake.blobs)

    uri = ctx.backend("prod").ml.online_endpoints.get(PROD).scoring_uri
    body = (ROOT / "src" / "model" / "sample-request.json").read_bytes()
    rows = len(json.loads(body)["data"])
    ids = [f"request-{n}" for n in range(3)]
    for request_id in ids:  # close together: the collector merges them
        headers = {"Authorization": f"Bearer {KEYS['primaryKey']}", "x-request-id": request_id}
        answer = fake.send(HttpRequest("POST", uri, content=body, headers=headers))
        assert answer.status_code == 200

    records = list(ctx.backend("prod").collected_records(PROD, request_ids=set(ids)))
    assert sorted(r.request_id for r in records) == ids
    assert all(len(r.rows) == rows == len(r.answers) for r in records)
    assert all("correlationid" not in row for r in records for row in r.rows)

    written = {k: v[len(before.get(k, b"")) :] for k, v in fake.blobs.items() if v != before.get(k)}
    (inputs,) = [v for k, v in written.items() if "/model_inputs/" in k]
    (line,) = inputs.splitlines()  # one line for the three requests
    merged = json.loads(line)
    assert merged["correlationid"] == ids[0]  # the first one's id for the whole line
    assert [row["correlationid"] for row in merged["data"]] == [i for i in ids for _ in range(rows)]


def test_without_collection_configured_score_py_scores_and_says_collection_is_off():
    """azureml-ai-monitoring's Collector raises in its constructor when the deployment has no
    data collection (collector_json.py _validate_mdc_config): init() must not fail on it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AZUREML_MDC") and k != "MLOPS_COLLECT_DIR"
    }
    done = subprocess.run(
        [sys.executable, "-c", "import collect; print(collect.from_environment())"],
        cwd=MODEL_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "None"  # after the SDK's own log lines
    assert "data collection is off: custom logging is not enabled" in done.stderr

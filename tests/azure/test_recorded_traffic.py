"""The double's answers held against Azure's own: the azure-ai-ml SDK's recorded exchanges with
Azure ML (tests/azure/recordings, kept by tests/azure/recorded.py).

For each operation our backend causes and a recording holds, the double must answer with the
recorded status code, the same long-running-operation pattern and headers, the same sequence
of states, and every field the SDK or our code reads. Operations no recording holds are listed
in tests/azure/recordings/README.md with how they were checked instead.
"""

from __future__ import annotations

import base64
import json
import re

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Model
from azure.core.exceptions import ResourceNotFoundError
from fake_azure import CI_PERSONA, SUBSCRIPTION, FakeCredential
from fake_azure.http import Reply
from harness import release_to_registry
from helpers import env_setting
from recorded import ASSETS, FOLDER, RECORDINGS, entries, field, leaks, load, scrub

from mlops import lifecycle

ENDPOINT = env_setting("preprod", "endpoint.name")
SAME, PRESENT = "same", "present"
# the job states of the REST spec (stable/2024-04-01 mfe.json, JobStatus)
JOB_STATUSES = {
    "NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing",
    "CancelRequested", "Completed", "Failed", "Canceled", "NotResponding", "Paused", "Unknown",
}  # fmt: skip


def pattern(status: int, headers: dict) -> tuple:
    """How a client learns the outcome: polled (Azure-AsyncOperation), followed (202 with a
    Location), or in the answer itself; and whether a Location is given at all."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    polled = "azure-asyncoperation" in headers
    followed = status == 202 and "location" in headers
    return (
        status,
        "polled" if polled else "followed" if followed else "answered",
        ("location" in headers),
    )


def assert_like(recorded: dict, reply: Reply, fields: dict[str, str]) -> None:
    """The double's reply against a recorded exchange: status, pattern, and each field the SDK
    or our code reads, present in both (PRESENT) or equal too (SAME)."""
    what = recorded["operation"]
    assert pattern(reply.status, reply.headers) == pattern(
        recorded["status"], recorded["headers"]
    ), what
    for dotted, how in fields.items():
        theirs, ours = field(recorded["body"], dotted), field(reply.body, dotted)
        if how == SAME:
            assert ours == theirs, f"{what}: {dotted} is {ours!r}, Azure answered {theirs!r}"


def replies(fake, method: str, path: str) -> list[Reply]:
    """The double's replies to method on paths matching the regular expression path."""
    return [c.reply for c in fake.calls if c.method == method and re.search(path, c.path)]


def polled_states(fake, reply: Reply) -> list[str]:
    """The statuses the operation named in a reply's Azure-AsyncOperation went through."""
    op = reply.headers["Azure-AsyncOperation"].split("?")[0].rsplit("/", 1)[1]
    return [c.reply.body["status"] for c in fake.calls if c.path.endswith(f"/{op}")]


def recorded_states(recording: dict, operation: str) -> list[str]:
    return [e["body"]["status"] for e in entries(recording, operation)]


# ---- the recordings themselves -------------------------------------------------------------


def test_every_recording_names_its_source_and_holds_no_credential():
    files = sorted(FOLDER.glob("*.json"))
    assert files
    for path in files:
        text = path.read_text()
        assert leaks(text) == [], f"{path.name} holds something shaped like a credential"
        source = json.loads(text)["source"]
        assert source["repository"] == ASSETS, path.name
        assert source["path"].startswith(RECORDINGS), path.name
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), path.name


def test_the_scrubber_strips_what_upstream_recordings_leak():
    # shaped like the bearer token a delete poll of test_online_deployment_create carries, and
    # the signed URLs and keys other recordings hold
    claims = {"aud": "https://management.azure.com", "oid": "0" * 36, "name": "someone"}
    token = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
        for part in ({"typ": "JWT", "alg": "RS256"}, claims)
    )
    token += "." + "Gt1KfEawu5y2eaWVtHlycoQCm6hPs6iH8pF05bwTNYFC"
    operation = (
        f"https://management.azure.com/subscriptions/{SUBSCRIPTION}/providers/"
        "Microsoft.MachineLearningServices/locations/eastus/mfeOperationsStatus/op"
        "?api-version=2022-02-01-preview&t=638762499727322290"
        "&c=MIIHpTCCBo2gAwIBAgITfwTYxBKzZMhYMh8gpgAEBNjEEjANBgkqhkiG9w0BAQsF"
        "&s=X64SEX4Yw0g-ZQlq0BrJO_EjenV_BbmXJM6YGhJRiDP08V4Ij3qp4&h=m6relfxN-_iQvZEU3"
    )
    upstream = {
        "RequestUri": operation,
        "RequestMethod": "GET",
        "RequestHeaders": {"Authorization": f"Bearer {token}"},
        "StatusCode": 202,
        "ResponseHeaders": {"Location": operation, "Date": "today"},
        "ResponseBody": {
            "secretsType": "AccountKey",
            "key": "dGhpcyBpcyBmYWtlIGtleQ==",
            "blob": "https://acct.blob.core.windows.net/c/b?sv=2021-08-06&sig=abcdef%3D",
            "connection": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9v",
        },
    }
    assert {"JWT", "bearer", "SAS signature", "signed operation URL", "account key"} <= set(
        leaks(json.dumps(upstream))
    ), "the leak check must see every shape"
    kept = scrub(upstream)
    assert leaks(json.dumps(kept)) == []
    assert kept["uri"].endswith("?api-version=2022-02-01-preview")
    assert kept["headers"] == {"Location": kept["uri"]}
    assert kept["body"]["secretsType"] == "AccountKey"  # what is not a secret stays


# ---- a release through the double, held against the recordings -----------------------------


def test_a_release_through_the_double_answers_as_azure_recorded(ctx, fake):
    shared = release_to_registry(ctx)
    lifecycle.deploy(ctx, "preprod", shared.ref)

    # the model version our register writes: an MLflow model from a job's output
    (created,) = entries(load("model_version_mlflow"), "model.create")
    (reply,) = replies(fake, "PUT", rf"/workspaces/[^/]+/models/{shared.name}/versions/\d+$")
    assert_like(
        created,
        reply,
        {
            "id": PRESENT,
            "name": PRESENT,
            "properties.modelType": SAME,
            "properties.modelUri": PRESENT,
            "properties.tags": PRESENT,
            "properties.description": PRESENT,
            "properties.isArchived": SAME,
            "properties.stage": SAME,
            "properties.provisioningState": SAME,
        },
    )
    assert reply.body["properties"]["flavors"], "Azure reads an MLflow model's flavors"

    # the pipeline job our train submits: no recording holds its PUT; the REST spec's example
    # (stable/2024-04-01 examples/Job/PipelineJob/createOrUpdate.json) answers 200 or 201 at
    # once, no operation to poll, the job NotStarted
    submitted = replies(fake, "PUT", r"/workspaces/[^/]+/jobs/[^/]+$")
    assert submitted
    for reply in submitted:
        assert pattern(reply.status, reply.headers)[1:] == ("answered", False)
        assert reply.status in (200, 201) and reply.body["properties"]["status"] == "NotStarted"
    # and read while it runs and when it ends
    (running,) = entries(load("pipeline_job_get"), "job.get")
    jobs = replies(fake, "GET", r"/workspaces/[^/]+/jobs/[^/]+$")
    assert jobs
    for reply in jobs:
        assert_like(
            running,
            reply,
            {
                "id": PRESENT,
                "name": PRESENT,
                "properties.jobType": SAME,
                "properties.status": PRESENT,
                "properties.services.Studio.endpoint": PRESENT,
            },
        )
        assert reply.body["properties"]["status"] in JOB_STATUSES

    online = load("online_endpoint_lifecycle")
    endpoint_fields = {
        "id": PRESENT,
        "name": PRESENT,
        "kind": SAME,
        "properties.authMode": SAME,
        "properties.provisioningState": SAME,
        "properties.scoringUri": SAME,
        "properties.traffic": PRESENT,
        "properties.mirrorTraffic": SAME,
    }
    # the endpoint: created with no traffic, then given all of it, each a polled 201
    create, update = replies(fake, "PUT", f"/onlineEndpoints/{ENDPOINT}$")
    (recorded_create,) = entries(online, "endpoint.create")
    (recorded_update,) = entries(online, "endpoint.update")
    assert_like(recorded_create, create, endpoint_fields)
    assert_like(recorded_update, update, {**endpoint_fields, "properties.traffic": PRESENT})
    assert polled_states(fake, create) == recorded_states(online, "endpoint.create.poll")
    assert set(polled_states(fake, update)[:-1]) == set(
        recorded_states(online, "endpoint.update.poll")
    )
    # and read back Succeeded, with its scoring URI
    got = replies(fake, "GET", f"/onlineEndpoints/{ENDPOINT}$")
    recorded_get = entries(online, "endpoint.get")[-1]
    assert_like(recorded_get, got[-1], {**endpoint_fields, "properties.scoringUri": PRESENT})
    assert got[-1].body["properties"]["scoringUri"].endswith(".inference.ml.azure.com/score")

    # the deployment: a polled 201 Creating, then Succeeded
    (deployment,) = replies(fake, "PUT", f"/onlineEndpoints/{ENDPOINT}/deployments/blue$")
    deployment_fields = {
        "id": PRESENT,
        "name": PRESENT,
        "kind": SAME,
        "sku.name": SAME,
        "sku.tier": SAME,
        "sku.capacity": PRESENT,
        "properties.provisioningState": SAME,
        "properties.endpointComputeType": SAME,
        "properties.instanceType": PRESENT,
        "properties.scaleSettings.scaleType": SAME,
        "properties.codeConfiguration.scoringScript": SAME,
    }
    assert_like(entries(online, "deployment.create")[0], deployment, deployment_fields)
    states = polled_states(fake, deployment)
    assert set(states[:-1]) <= set(recorded_states(online, "deployment.create.poll"))
    assert states[-1] == "Succeeded"
    (read,) = replies(fake, "GET", f"/onlineEndpoints/{ENDPOINT}/deployments/blue$")[-1:]
    assert_like(entries(online, "deployment.get")[0], read, deployment_fields)

    # the smoke test: keys, then a score call that names the deployment that answered
    (keys,) = replies(fake, "POST", f"/onlineEndpoints/{ENDPOINT}/listKeys$")[:1]
    assert_like(
        entries(online, "endpoint.listKeys")[0],
        keys,
        {"primaryKey": PRESENT, "secondaryKey": PRESENT},
    )
    scored = [c.reply for c in fake.calls if c.path == "/score"]
    (recorded_score,) = entries(online, "endpoint.score")
    assert recorded_score["status"] in {r.status for r in scored}  # the smoke test's good rows
    assert recorded_score["headers"]["azureml-model-deployment"]
    assert all(r.headers["azureml-model-deployment"] == "blue" for r in scored)

    # and down: the endpoint's delete is a 202 to poll or follow, still Updating at first
    mark = fake.mark()
    assert lifecycle.down(ctx, ["preprod"]) == 1
    (deleted,) = [
        c.reply
        for c in fake.since(mark)
        if c.method == "DELETE" and c.path.endswith(f"/onlineEndpoints/{ENDPOINT}")
    ]
    (recorded_delete,) = entries(online, "endpoint.delete")
    assert_like(recorded_delete, deleted, {})
    assert "/mfeOperationResults/" in deleted.headers["Location"]
    assert polled_states(fake, deleted)[0] == recorded_states(online, "endpoint.delete.poll")[0]


def custom_model_from(job: str) -> Model:
    """Version 1 of the custom model `custom`, its files the given job's model output."""
    return Model(
        name="custom",
        version="1",
        type=AssetTypes.CUSTOM_MODEL,
        path=f"azureml://jobs/{job}/outputs/model/paths/model/",
    )


def test_a_model_version_put_again_unchanged_is_accepted_as_azure_accepts_it(fake):
    """Item: an identical re-PUT is 200, not a conflict (recorded: the SDK's archive re-PUTs a
    custom model's version); other content is still refused."""
    workspace = env_setting("dev", "azure.workspace")
    fake.add_workspace(workspace, "dev")
    ml = MLClient(
        FakeCredential(CI_PERSONA, "dev"),
        SUBSCRIPTION,
        env_setting("dev", "azure.resource_group"),
        workspace,
        transport=fake,
    )
    recording = load("model_version_put")
    workspace_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{env_setting('dev', 'azure.resource_group')}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{workspace}"
    )
    for job in ("job-a", "job-b"):  # a model from a job names a job that exists
        fake.store(f"{workspace_id}/jobs/{job}", {"properties": {"status": "Completed"}})
    first = fake.mark()
    for _ in range(2):
        ml.models.create_or_update(custom_model_from("job-a"))
    create, again = [c.reply for c in fake.since(first) if c.method == "PUT"]
    fields = {
        "properties.modelType": SAME,
        "properties.flavors": SAME,  # a custom model has none: {}
        "properties.provisioningState": SAME,
        "properties.isArchived": PRESENT,
        "properties.stage": PRESENT,
    }
    assert_like(entries(recording, "model.create")[0], create, fields)
    assert_like(entries(recording, "model.reput")[0], again, fields)
    # a model with no version yet: Azure answers 404 ModelNotFound, which our listing reads
    # as no versions
    mark = fake.mark()
    with pytest.raises(ResourceNotFoundError):
        list(ml.models.list(name="never-registered"))
    (listed,) = [c.reply for c in fake.since(mark)]
    (unknown,) = entries(load("model_version_mlflow"), "model.list.unknown")
    assert_like(unknown, listed, {"error.code": SAME, "error.details": PRESENT})
    assert listed.body["error"]["details"][0]["code"] == "ModelNotFound"
    with pytest.raises(Exception, match="immutable"):
        ml.models.create_or_update(custom_model_from("job-b"))

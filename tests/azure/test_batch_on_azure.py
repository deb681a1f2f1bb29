"""Batch scoring on Azure ML: endpoint, deployment, smoke job, default, jobs on inputs."""

import csv
import io

import pytest
from fake_azure import CI_PERSONA
from harness import release_to_registry
from helpers import env_setting

from mlops import batch
from mlops.errors import MlopsError, RolloutFailed

WORKSPACE = env_setting("prod", "azure.workspace")
ENDPOINT = env_setting("prod", "endpoint.name") + batch.SUFFIX


@pytest.fixture
def shared(ctx):
    return release_to_registry(ctx)


def default_of(fake) -> str | None:
    found = fake.resource(f"/workspaces/{WORKSPACE}/batchEndpoints/{ENDPOINT}")
    return found["properties"]["defaults"].get("deploymentName")


def test_first_batch_deploy_creates_the_endpoint_and_a_deployment_then_smoke_tests_it(
    ctx, fake, shared
):
    mark = fake.mark()
    endpoint = batch.deploy(ctx, "prod", shared.ref)
    calls = fake.since(mark)

    (created,) = [c for c in calls if c.method == "PUT" and c.path.endswith(f"/{ENDPOINT}")][:1]
    assert created.json()["properties"]["authMode"].lower() == "aadtoken"  # Entra, not keys
    (deployment,) = fake.made("PUT", rf"/batchEndpoints/{ENDPOINT}/deployments/blue$")
    properties = deployment.json()["properties"]
    assert properties["model"]["assetId"].endswith(
        f"/models/{shared.name}/versions/{shared.version}"
    )
    assert properties["codeConfiguration"]["scoringScript"] == "batch_score.py"
    assert properties["compute"].endswith("cpu-cluster")
    assert properties["environmentVariables"] == {"MLOPS_MODEL": shared.ref}
    assert deployment.json()["tags"]["onnx_sha256"] == shared.artifact_sha256

    (smoke,) = [c for c in calls if c.path == "/jobs"]
    assert smoke.headers["azureml-model-deployment"] == "blue"
    assert smoke.headers["authorization"].startswith("Bearer ")
    switched = [
        c
        for c in calls
        if c.method == "PUT"
        and c.path.endswith(f"/{ENDPOINT}")
        and c.json()["properties"].get("defaults")
    ]
    assert switched and calls.index(smoke) < calls.index(switched[0]), "smoke job before default"
    assert endpoint.default == "blue" == default_of(fake)
    assert endpoint.deployments["blue"].model == shared.ref


def test_a_failed_smoke_job_leaves_the_previous_default(ctx, fake, shared):
    batch.deploy(ctx, "prod", shared.ref)
    (path,) = [k for k in fake.resources if k.endswith("/deployments/blue") and "batch" in k]
    fake.resources[path]["tags"]["onnx_sha256"] = "older-bytes"  # blue now serves other bytes

    fake.next_job_ends = ["Failed"]
    with pytest.raises(RolloutFailed, match="blue stays the default"):
        batch.deploy(ctx, "prod", shared.ref)
    assert fake.made("PUT", rf"/batchEndpoints/{ENDPOINT}/deployments/green$")
    assert default_of(fake) == "blue"


def test_a_scoring_job_runs_on_the_default_with_its_input_and_says_where_outputs_are(
    ctx, fake, shared, capsys, tmp_path
):
    batch.deploy(ctx, "prod", shared.ref)
    rows = batch.smoke_sample(ctx.root, tmp_path).read_bytes()
    fake.blobs["azureml-blobstore/nightly/rows.csv"] = rows  # what a nightly export left
    mark = fake.mark()
    job = batch.score(ctx, "prod", "azureml://datastores/workspaceblobstore/paths/nightly/rows.csv")

    (invoked,) = [c for c in fake.since(mark) if c.path == "/jobs"]
    assert invoked.headers["azureml-model-deployment"] == "blue"  # the default, read live
    (data,) = invoked.json()["properties"]["inputData"].values()
    assert data["uri"] == "azureml://datastores/workspaceblobstore/paths/nightly/rows.csv"
    assert job.status == "Completed" and job.deployment == "blue"
    assert f"az ml job download --name {job.id} --output-name score" in job.outputs
    assert f"job {job.id}: Running" in capsys.readouterr().out  # progress while it runs
    # the deployment's batch_score.py ran under the batch contract and wrote its outputs
    written = fake.blobs[f"azureml-blobstore/azureml/{job.id}/score/rows.predictions.csv"]
    predictions = list(csv.DictReader(io.StringIO(written.decode())))
    assert len(predictions) == rows.count(b"\n") - 1
    assert {p["model"] for p in predictions} == {shared.ref}


def test_a_job_fails_when_its_identity_lacks_a_role_the_batch_runtime_needs(
    ctx, fake, shared, monkeypatch, tmp_path
):
    """The job runs as its invoker; with keys off the runtime needs queues and tables."""
    from mlops_infra import access

    batch.deploy(ctx, "prod", shared.ref)
    fake.blobs["azureml-blobstore/nightly/rows.csv"] = batch.smoke_sample(
        ctx.root, tmp_path
    ).read_bytes()
    for role in ("Storage Queue Data Contributor", "Storage Table Data Contributor"):
        kept = [g for g in access.MATRIX[CI_PERSONA]["prod"] if g.role != role]
        with monkeypatch.context() as patched:
            patched.setitem(access.MATRIX[CI_PERSONA], "prod", kept)
            with pytest.raises(MlopsError, match="ended Failed"):
                batch.score(
                    ctx, "prod", "azureml://datastores/workspaceblobstore/paths/nightly/rows.csv"
                )
        failed = fake.batch_jobs[-1]
        assert failed.failure and role.split()[1].lower() in failed.failure  # queue / table
        assert not [
            k for k in fake.blobs if k.startswith(f"azureml-blobstore/azureml/{failed.job}/")
        ]


def test_scoring_before_any_batch_deploy_is_one_sentence(ctx, fake):
    with pytest.raises(MlopsError, match="no batch endpoint .* run `mlops batch-deploy"):
        batch.score(ctx, "prod", "azureml:nightly:1")


def test_a_job_needs_a_default_or_a_named_deployment(ctx, fake, shared):
    backend = ctx.backend("prod")
    backend.create_batch_endpoint(ENDPOINT)
    backend.create_batch_deployment(ENDPOINT, "blue", shared)
    mark = fake.mark()
    with pytest.raises(MlopsError, match="has no default deployment"):
        backend.invoke_batch(ENDPOINT, "azureml://datastores/workspaceblobstore/paths/x.csv")
    assert not [c for c in fake.since(mark) if c.path == "/jobs"]


def test_the_double_refuses_what_batch_endpoints_refuse(ctx, fake, shared):
    """Through the real SDK: a default naming no deployment, a deployment with no compute,
    and (on the wire, as the SDK would send it) a job with no deployment to route to."""
    from azure.ai.ml.entities import BatchEndpoint, ModelBatchDeployment
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    backend = ctx.backend("prod")
    ml = backend.ml
    with pytest.raises(HttpResponseError, match="names green, which does not exist"):
        ml.batch_endpoints.begin_create_or_update(
            BatchEndpoint(name=ENDPOINT, defaults={"deployment_name": "green"})
        ).result()
    endpoint = backend.create_batch_endpoint(ENDPOINT)
    assert endpoint.default is None and endpoint.deployments == {}
    with pytest.raises(HttpResponseError, match="needs a compute cluster"):
        ml.batch_deployments.begin_create_or_update(
            ModelBatchDeployment(
                name="blue",
                endpoint_name=ENDPOINT,
                model=f"azureml://registries/{backend.settings.registry}/models/"
                f"{shared.name}/versions/{shared.version}",
                code_path=str(ctx.root / "src" / "model"),
                scoring_script="batch_score.py",
                environment=backend.ensure_environment().id,
            )
        ).result()

    uri = ml.batch_endpoints.get(ENDPOINT).scoring_uri
    token = backend.credential.get_token("https://ml.azure.com/.default").token
    body = b'{"properties": {"inputData": {"UriFile": {"uri": "azureml://x/rows.csv"}}}}'
    answer = fake.send(
        HttpRequest("POST", uri, content=body, headers={"Authorization": f"Bearer {token}"})
    )
    assert answer.status_code == 400 and "No valid deployments to route to" in answer.text()
    keyed = fake.send(HttpRequest("POST", uri, content=body, headers={"Authorization": "k"}))
    assert keyed.status_code == 401  # batch endpoints take Entra tokens, not keys

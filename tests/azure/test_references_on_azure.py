"""References are resolved at submission: the double refuses, through the real SDK, what Azure
refuses (fake_azure/references.py), and our verbs end such a refusal in one sentence with
nothing half-made."""

from dataclasses import replace

import pytest
from azure.core.exceptions import HttpResponseError
from harness import azure_context, release_to_registry
from helpers import env_setting

from mlops import batch, lifecycle
from mlops.errors import MlopsError

PROD = env_setting("prod", "endpoint.name")
BATCH = PROD + batch.SUFFIX


@pytest.fixture
def shared(ctx):
    return release_to_registry(ctx)


def online(backend, shared, instance_type="Standard_DS2_v2", instance_count=1, **changes):
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

    backend.ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=PROD)).result()
    return ManagedOnlineDeployment(
        name="blue",
        endpoint_name=PROD,
        instance_type=instance_type,
        instance_count=instance_count,
        **{**backend.serving_parts(shared, "score.py"), **changes},
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"instance_type": "Standard_DS2_v9"}, "Standard_DS2_v9"),
        ({"instance_count": 0}, "instance_count 0"),
        ({"environment": "azureml:no-such-env:1"}, "no-such-env"),
        (
            {"model": "azureml://registries/{registry}/models/no-such-model/versions/1"},
            "no-such-model",
        ),
    ],
)
def test_the_double_refuses_an_online_deployment_naming_what_does_not_exist(
    ctx, fake, shared, change, named
):
    backend = ctx.backend("prod")
    registry = backend.settings.registry
    change = {
        k: v.format(registry=registry) if isinstance(v, str) else v for k, v in change.items()
    }
    with pytest.raises(HttpResponseError, match=named) as refused:
        backend.ml.online_deployments.begin_create_or_update(
            online(backend, shared, **change)
        ).result()
    assert refused.value.status_code == 400
    assert not [
        k for k in fake.resources if k.endswith(f"/onlineEndpoints/{PROD}/deployments/blue")
    ]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"compute": "no-such-cluster"}, "no-such-cluster"),
        ({"mini_batch_size": 0}, "mini_batch_size 0"),
        ({"max_concurrency_per_instance": 0}, "max_concurrency_per_instance 0"),
    ],
)
def test_the_double_refuses_a_batch_deployment_out_of_bounds(ctx, fake, shared, change, named):
    from azure.ai.ml.entities import ModelBatchDeployment, ModelBatchDeploymentSettings

    backend = ctx.backend("prod")
    backend.create_batch_endpoint(BATCH)
    settings = {"mini_batch_size": 1, "max_concurrency_per_instance": 1}
    settings.update({k: v for k, v in change.items() if k in settings})
    spec = ModelBatchDeployment(
        name="blue",
        endpoint_name=BATCH,
        **backend.serving_parts(shared, "batch_score.py"),
        compute=change.get("compute", backend.settings.compute),
        settings=ModelBatchDeploymentSettings(**settings),
    )
    with pytest.raises(HttpResponseError, match=named) as refused:
        backend.ml.batch_deployments.begin_create_or_update(spec).result()
    assert refused.value.status_code == 400


def test_the_double_refuses_a_model_from_a_job_that_does_not_exist(ctx, fake):
    from azure.ai.ml.entities import Model

    ml = ctx.backend("dev").ml
    with pytest.raises(HttpResponseError, match="no job no-such-job"):
        ml.models.create_or_update(
            Model(
                name="orphan",
                version="1",
                type="custom_model",
                path="azureml://jobs/no-such-job/outputs/artifacts/paths/model/",
            )
        )


def test_an_unknown_instance_type_ends_the_deploy_in_one_sentence_with_nothing_serving(
    fake, repo, tmp_path
):
    settings = repo / "environments" / "prod.yml"
    settings.write_text(settings.read_text().replace("Standard_DS2_v2", "Standard_DS2_v9"))
    ctx = azure_context(fake, repo, tmp_path / "home")
    shared = release_to_registry(ctx)
    with pytest.raises(MlopsError, match="Standard_DS2_v9") as refused:
        lifecycle.deploy(ctx, "prod", shared.ref)
    assert "Standard_DS2_v9" in str(refused.value).splitlines()[0]  # the first line says it
    endpoint = ctx.backend("prod").get_endpoint(PROD)
    assert endpoint is None or not endpoint.deployments  # no deployment without traffic


def test_a_batch_deploy_on_a_missing_compute_ends_in_one_sentence(ctx, fake, shared, monkeypatch):
    backend = ctx.backend("prod")
    monkeypatch.setattr(backend, "settings", replace(backend.settings, compute="gpu-cluster"))
    with pytest.raises(MlopsError, match="compute .*gpu-cluster does not exist") as refused:
        batch.deploy(ctx, "prod", shared.ref)
    assert "\n" not in str(refused.value)
    endpoint = backend.get_batch_endpoint(BATCH)
    assert endpoint.default is None and not endpoint.deployments

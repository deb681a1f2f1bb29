"""The double refuses what Azure ML refuses, and the azure backend never breaks a rule."""

import pytest
from azure.ai.ml import MLClient
from azure.ai.ml.entities import Model
from azure.core.exceptions import HttpResponseError
from fake_azure import CI_PERSONA, SUBSCRIPTION, FakeCredential, Identity
from fake_azure.arm import arm_action
from harness import release_to_registry
from helpers import env_setting

from mlops import lifecycle
from mlops.errors import RolloutFailed

MODEL = env_setting("dev", "model.name")
ENDPOINT = env_setting("preprod", "endpoint.name")


@pytest.fixture
def serving(ctx, fake):
    """preprod's endpoint with blue live and a green deployment beside it, taking nothing."""
    shared = release_to_registry(ctx)
    lifecycle.deploy(ctx, "preprod", shared.ref)
    backend = ctx.backend("preprod")
    backend.create_deployment(ENDPOINT, "green", shared)
    return backend


BROKEN_SPLITS = [
    ({"blue": 60}, {}, "traffic values need to sum to 100, not 60"),
    ({"blue": 50, "red": 50}, {}, "traffic names deployment(s) red that do not exist"),
    ({"blue": 100}, {"green": 51}, "mirrorTraffic values need to sum to at most 50"),
    ({"blue": 100}, {"blue": 10}, "deployment blue takes live traffic"),
    ({"blue": 50, "green": 50}, {"green": 10}, "deployment green takes live traffic"),
]


def test_traffic_and_mirror_rules(serving, fake):
    for traffic, mirror, refusal in BROKEN_SPLITS:
        live = serving.ml.online_endpoints.get(ENDPOINT)
        live.traffic, live.mirror_traffic = traffic, mirror
        with pytest.raises(HttpResponseError) as failure:
            serving.ml.online_endpoints.begin_create_or_update(live).result()
        assert failure.value.status_code == 400 and refusal in str(failure.value)
        stored = fake.resource(f"/onlineEndpoints/{ENDPOINT}")["properties"]
        assert stored["traffic"] == {"blue": 100} and stored["mirrorTraffic"] == {}


def test_mirror_goes_to_one_deployment_only(serving, fake):
    serving.create_deployment(ENDPOINT, "red", serving.get_shared_model(MODEL, 1))
    with pytest.raises(HttpResponseError, match="one deployment only"):
        serving.set_mirror(ENDPOINT, {"green": 10, "red": 10})


def test_a_deployment_taking_traffic_cannot_be_deleted(serving):
    serving.set_traffic(ENDPOINT, {"blue": 50, "green": 50})
    with pytest.raises(HttpResponseError, match="still takes traffic"):
        serving.ml.online_deployments.begin_delete(name="green", endpoint_name=ENDPOINT).result()


def test_rollout_zeroes_a_leftovers_traffic_and_mirror_before_deleting_it(serving, ctx, fake):
    serving.set_traffic(ENDPOINT, {"blue": 90, "green": 10})  # split by hand, then left
    mark = fake.mark()
    lifecycle.deploy(ctx, "preprod", f"{MODEL}:1")
    calls = fake.since(mark)
    deleted = next(
        i for i, c in enumerate(calls) if c.method == "DELETE" and "/deployments/" in c.path
    )
    assert calls[deleted].path.endswith("/deployments/green")
    (zeroed,) = [c for c in calls[:deleted] if c.method == "PUT" and c.path.endswith(ENDPOINT)]
    assert zeroed.json()["properties"]["traffic"] == {"blue": 100}
    assert fake.resource(f"/onlineEndpoints/{ENDPOINT}")["properties"]["traffic"] == {"green": 100}


def test_a_deployment_that_provisions_to_failed_rolls_back_with_its_logs(
    serving, ctx, fake, capsys
):
    serving.delete_deployment(ENDPOINT, "green")
    fake.failing_deployments["green"] = "ResourceNotReady: the container crashed at start"
    mark = fake.mark()
    with pytest.raises(RolloutFailed) as failure:
        lifecycle.deploy(ctx, "preprod", f"{MODEL}:1")
    message = str(failure.value)
    assert "deployment 'green' failed to start" in message and "crashed at start" in message
    assert "scoring failed: model output has the wrong shape" in message  # the deployment's log
    calls = fake.since(mark)
    polled = [c for c in calls if "mfeOperationsStatus" in c.path]
    assert len(polled) >= 2, "the deployment's LRO was polled to its end"
    deleted = [c for c in calls if c.method == "DELETE" and "/deployments/" in c.path]
    assert [c.path.rsplit("/", 1)[-1] for c in deleted] == ["green"]
    endpoint = serving.get_endpoint(ENDPOINT)
    assert endpoint.traffic == {"blue": 100} and list(endpoint.deployments) == ["blue"]


def test_a_failed_deployment_cannot_be_updated_in_place(serving, fake):
    fake.failing_deployments["red"] = "the image did not build"
    model = serving.get_shared_model(MODEL, 1)
    with pytest.raises(Exception, match="image did not build"):
        serving.create_deployment(ENDPOINT, "red", model)
    assert fake.resource("/deployments/red")["properties"]["provisioningState"] == "Failed"
    del fake.failing_deployments["red"]
    with pytest.raises(Exception, match="unrecoverable state"):
        serving.create_deployment(ENDPOINT, "red", model)


def test_scoring_needs_the_key_honours_the_split_and_names_the_deployment(serving, fake):
    url, headers = serving.scoring_target(ENDPOINT)
    body = (serving.root / "src" / "model" / "sample-request.json").read_bytes()
    assert serving.invoke(ENDPOINT, body).deployment == "blue"
    assert serving.invoke(ENDPOINT, body, deployment="green").deployment == "green"
    serving.set_traffic(ENDPOINT, {"blue": 70, "green": 30})
    answered = [serving.invoke(ENDPOINT, body).deployment for _ in range(100)]
    assert answered.count("green") == 30 and answered.count("blue") == 70
    assert serving.invoke(ENDPOINT, body, deployment="red").status == 404
    serving.set_traffic(ENDPOINT, {"blue": 0, "green": 0})
    nowhere = serving.invoke(ENDPOINT, body)
    assert nowhere.status == 404 and b"No valid deployments to route to" in nowhere.body
    assert serving.invoke(ENDPOINT, body, deployment="blue").status == 200
    # the same request without the key:
    from azure.core import PipelineClient
    from azure.core.rest import HttpRequest

    reply = PipelineClient(url, transport=fake).send_request(
        HttpRequest("POST", url, content=body, headers={"Content-Type": "application/json"})
    )
    assert reply.status_code == 401


def test_versions_are_immutable_and_latest_is_the_most_recently_created(ctx, fake):
    ml = ctx.backend("dev").ml
    workspace = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{env_setting('dev', 'azure.resource_group')}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/"
        f"{env_setting('dev', 'azure.workspace')}"
    )
    for job in ("job-a", "job-b", "job-c", "job-d"):  # a model from a job names a job that exists
        fake.store(f"{workspace}/jobs/{job}", {"properties": {"status": "Completed"}})
    for version, job in (("5", "job-a"), ("3", "job-b")):
        ml.models.create_or_update(
            Model(
                name="m", version=version, path=f"azureml://jobs/{job}/outputs/model/paths/model/"
            )
        )
    assert ml.models.get("m", label="latest").version == "3", "latest is not the highest number"
    container = fake.resource("/models/m")["properties"]
    assert container["latestVersion"] == "3" and container["nextVersion"] == "6"
    with pytest.raises(HttpResponseError, match="asset versions are immutable") as failure:
        ml.models.create_or_update(
            Model(name="m", version="3", path="azureml://jobs/job-c/outputs/model/paths/model/")
        )
    assert failure.value.status_code == 409
    assert (
        ml.models.create_or_update(
            Model(name="m", path="azureml://jobs/job-d/outputs/model/paths/model/")
        ).version
        == "6"
    )


def test_identities_are_refused_what_their_roles_do_not_grant(ctx, fake):
    job = lifecycle.train(ctx, "dev")
    model = lifecycle.register(ctx, "dev", job.id)
    # prod's and preprod's identities (preprod's adds audit tags in the registry) read nothing
    # of dev's workspace
    for env in ("prod", "preprod"):
        in_dev = MLClient(
            FakeCredential(CI_PERSONA, env),
            SUBSCRIPTION,
            env_setting("dev", "azure.resource_group"),
            env_setting("dev", "azure.workspace"),
            transport=fake,
        )
        with pytest.raises(HttpResponseError, match="AuthorizationFailed") as failure:
            in_dev.models.get(model.name, str(model.version))
        assert failure.value.status_code == 403, env
        # ARM names the action by the resource types on the path, over the resource's own id
        action = "'Microsoft.MachineLearningServices/workspaces/models/versions/read'"
        scope = f"/workspaces/{env_setting('dev', 'azure.workspace')}/models/{model.name}/"
        assert f"perform action {action} over scope" in str(failure.value), env
        assert scope in str(failure.value), env
    assert Identity(CI_PERSONA, "dev") not in fake.grants, "the CI identities hold only the matrix"


@pytest.mark.parametrize(
    "method, path, action",
    [
        ("GET", "/workspaces/w", "Microsoft.MachineLearningServices/workspaces/read"),
        (
            "PUT",
            "/workspaces/w/onlineEndpoints/e/deployments/blue",
            "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/write",
        ),
        (
            "POST",
            "/workspaces/w/onlineEndpoints/e/listKeys",
            "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/listKeys/action",
        ),
        (
            "DELETE",
            "/registries/r/models/m/versions/1",
            "Microsoft.MachineLearningServices/registries/models/versions/delete",
        ),
    ],
)
def test_authorization_failed_names_the_action_as_arm_writes_it(method, path, action):
    arm = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/g/providers/Microsoft.MachineLearningServices"
    assert arm_action(method, arm + path) == action
    autoscale = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/g/providers/microsoft.insights/autoscalesettings/a"
    assert arm_action("PUT", autoscale) == "Microsoft.Insights/autoscalesettings/write"

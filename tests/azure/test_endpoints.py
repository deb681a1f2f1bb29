"""Managed online endpoints on Azure, through the same rollout code as the local backend."""

import json
from datetime import UTC, datetime

import pytest
from fake_azure import CI_PERSONA, SUBSCRIPTION, Identity, collector_blob
from harness import azure_context, release_to_registry
from helpers import env_setting

from mlops import lifecycle
from mlops.backends.azure.online import autoscale_name, autoscale_setting
from mlops.config import Autoscale
from mlops.errors import RolloutFailed

PREPROD = env_setting("preprod", "endpoint.name")
PROD = env_setting("prod", "endpoint.name")
ENDPOINT = rf"/workspaces/{env_setting('preprod', 'azure.workspace')}/onlineEndpoints/{PREPROD}"
MODEL = env_setting("prod", "model.name")


@pytest.fixture
def shared(ctx):
    return release_to_registry(ctx)


def endpoint_puts(calls):
    return [
        c for c in calls if c.method == "PUT" and c.path.endswith(f"/onlineEndpoints/{PREPROD}")
    ]


def test_first_rollout_creates_the_endpoint_and_a_blue_deployment(ctx, fake, shared):
    result = lifecycle.deploy(ctx, "preprod", shared.ref)
    (deployment,) = fake.made("PUT", ENDPOINT + "/deployments/blue$")
    properties = deployment.json()["properties"]
    assert (
        properties["model"]
        == f"azureml://registries/{env_setting('prod', 'azure.registry')}/models/{MODEL}/versions/{shared.version}"
    )
    assert properties["instanceType"] == "Standard_DS2_v2"
    assert properties["codeConfiguration"]["scoringScript"] == "score.py"
    assert (
        properties["environmentId"].split("/environments/")[1].startswith(f"{MODEL}-env/versions/")
    )
    assert deployment.json()["tags"]["onnx_sha256"] == shared.artifact_sha256
    assert result.endpoint.traffic == {"blue": 100}


def test_blue_green_keeps_the_live_endpoint_and_smoke_tests_the_new_deployment_first(
    ctx, fake, shared
):
    lifecycle.deploy(ctx, "preprod", shared.ref)
    # Someone tuned the live endpoint outside this tool; a rollout must not undo it.
    (path,) = [k for k in fake.resources if k.endswith(f"/onlineEndpoints/{PREPROD}")]
    fake.resources[path]["tags"] = {"owner": "ml-engineers"}
    fake.resources[path]["properties"]["description"] = "preprod scoring"
    mark = fake.mark()

    result = lifecycle.deploy(ctx, "preprod", shared.ref)
    calls = fake.since(mark)

    created = next(
        i
        for i, c in enumerate(calls)
        if c.method == "PUT" and c.path.endswith("/deployments/green")
    )
    aimed = [i for i, c in enumerate(calls) if c.headers.get("azureml-model-deployment") == "green"]
    (switch,) = endpoint_puts(calls)
    switched = calls.index(switch)
    assert aimed and created < aimed[0] < switched, (
        "the new deployment is tested before it gets traffic"
    )
    body = switch.json()
    traffic = body["properties"]["traffic"]
    assert traffic["green"] == 100 and sum(traffic.values()) == 100  # the SDK drops zero shares
    assert body["tags"] == {"owner": "ml-engineers"}
    assert body["properties"]["description"] == "preprod scoring"
    deleted = [c for c in calls if c.method == "DELETE" and "/deployments/" in c.path]
    assert [c.path.rsplit("/", 1)[-1] for c in deleted] == ["blue"] and calls.index(
        deleted[0]
    ) > switched
    assert result.endpoint.traffic == {"green": 100}


def test_a_failed_smoke_test_rolls_back_and_prints_the_logs(ctx, fake, shared):
    lifecycle.deploy(ctx, "preprod", shared.ref)
    fake.broken_deployments.add("green")
    mark = fake.mark()
    with pytest.raises(RolloutFailed) as failure:
        lifecycle.deploy(ctx, "preprod", shared.ref)
    calls = fake.since(mark)
    assert "deployment 'green' failed its smoke test" in str(failure.value)
    assert "scoring failed: model output has the wrong shape" in str(failure.value)
    assert [
        c for c in calls if c.method == "POST" and c.path.endswith("/deployments/green/getLogs")
    ]
    assert not endpoint_puts(calls), "traffic never moved"
    # preprod does not scale: no autoscale setting is written or deleted (its identity could not)
    assert [c.path.rsplit("/", 1)[-1] for c in calls if c.method == "DELETE"] == ["green"]
    assert not [c for c in calls if "/autoscalesettings/" in c.path]
    endpoint = ctx.backend("preprod").get_endpoint(PREPROD)
    assert endpoint.traffic == {"blue": 100} and list(endpoint.deployments) == ["blue"]


def test_a_switch_the_endpoint_does_not_honour_rolls_back(ctx, fake, shared, monkeypatch):
    """After the switch, answers through the endpoint must come from the new deployment."""
    lifecycle.deploy(ctx, "preprod", shared.ref)
    monkeypatch.setattr(fake, "_route", lambda traffic: "blue")  # routing stuck on the old one
    with pytest.raises(RolloutFailed) as failure:
        lifecycle.deploy(ctx, "preprod", shared.ref)
    assert "deployment 'green' is not what the endpoint answers with (answered by blue)" in str(
        failure.value
    )
    endpoint = ctx.backend("preprod").get_endpoint(PREPROD)
    assert endpoint.traffic == {"blue": 100} and list(endpoint.deployments) == ["blue"]


def test_status_and_down_on_azure(ctx, fake, shared):
    lifecycle.deploy(ctx, "preprod", shared.ref)
    report = lifecycle.status(ctx, ["preprod"])
    (endpoint,) = report["preprod"]
    assert endpoint.traffic == {"blue": 100}
    assert endpoint.deployments["blue"].model == shared.ref
    assert lifecycle.down(ctx, ["preprod"]) == 1
    assert fake.made("DELETE", ENDPOINT + "$")
    assert lifecycle.status(ctx, ["preprod"]) == {"preprod": []}


def test_a_mirror_share_soaks_the_new_deployment_before_the_switch(fake, repo, tmp_path):

    preprod = repo / "environments" / "preprod.yml"
    preprod.write_text(
        preprod.read_text()
        .replace("mirror_percent: 0", "mirror_percent: 10")
        .replace("mirror_seconds: 60", "mirror_seconds: 0")
    )
    ctx = azure_context(fake, repo, tmp_path / "home")
    shared = release_to_registry(ctx)
    lifecycle.deploy(ctx, "preprod", shared.ref)  # first rollout: nothing live to mirror
    mark = fake.mark()
    lifecycle.deploy(ctx, "preprod", shared.ref)
    bodies = [c.json()["properties"] for c in endpoint_puts(fake.since(mark))]
    assert [b.get("mirrorTraffic") or {} for b in bodies] == [{"green": 10}, {}, {}]
    assert bodies[-1]["traffic"]["green"] == 100


def test_the_monitor_reads_the_data_collectors_blobs_on_azure(ctx, fake):
    """Collected inputs stream back from the workspace blob store, model_inputs only."""
    fake.grants[Identity(CI_PERSONA, "prod")] = [("Storage Blob Data Reader", "storage")]
    row = {"mean_radius": 14.0, "mean_texture": 19.0}
    line = json.dumps(
        {"specversion": "1.0", "type": "azureml.inference.model_inputs", "data": [row, row]}
    )
    hour = datetime.now(UTC)
    fake.blobs[collector_blob(PROD, "blue", "model_inputs", hour, "a.jsonl")] = (
        "\n".join([line] * 3) + "\n"
    ).encode()
    fake.blobs[collector_blob(PROD, "blue", "model_outputs", hour, "a.jsonl")] = (
        b'{"data": [{"predictions": 1}]}\n'
    )
    fake.blobs["azureml-blobstore/modelDataCollector/other/blue/model_inputs/x.jsonl"] = (
        line.encode()
    )
    rows = list(ctx.backend("prod").collected_rows(PROD))
    assert rows == [row] * 6


PROD_ENDPOINT = rf"/workspaces/{env_setting('prod', 'azure.workspace')}/onlineEndpoints/{PROD}"


def autoscale_calls(calls, method, deployment):
    return [
        i
        for i, c in enumerate(calls)
        if c.method == method
        and c.path.endswith(f"/autoscalesettings/autoscale-{PROD}-{deployment}")
    ]


def test_prod_autoscales_the_new_deployment_before_it_takes_traffic(ctx, fake, shared):
    lifecycle.deploy(ctx, "prod", shared.ref)
    mark = fake.mark()
    lifecycle.deploy(ctx, "prod", shared.ref)
    calls = fake.since(mark)

    (created,) = [
        i
        for i, c in enumerate(calls)
        if c.method == "PUT" and c.path.endswith("/deployments/green")
    ]
    (scaled,) = autoscale_calls(calls, "PUT", "green")
    (switch,) = [
        i for i, c in enumerate(calls) if c.method == "PUT" and c.path.endswith(PROD_ENDPOINT)
    ]
    (unscaled,) = autoscale_calls(calls, "DELETE", "blue")
    (retired,) = [
        i
        for i, c in enumerate(calls)
        if c.method == "DELETE" and c.path.endswith("/deployments/blue")
    ]
    assert created < scaled < switch < unscaled < retired

    setting = calls[scaled].json()
    assert calls[scaled].query["api-version"] == "2022-10-01"
    assert setting["location"] == setting["properties"]["targetResourceLocation"] == "westeurope"
    assert setting["properties"]["targetResourceUri"].endswith(PROD_ENDPOINT + "/deployments/green")
    (profile,) = setting["properties"]["profiles"]
    assert profile["capacity"] == {"minimum": "1", "maximum": "3", "default": "1"}
    out, back = profile["rules"]
    assert out["metricTrigger"]["metricName"] == "CpuUtilizationPercentage"
    assert (out["metricTrigger"]["operator"], out["metricTrigger"]["threshold"]) == (
        "GreaterThan",
        70,
    )
    assert (back["metricTrigger"]["operator"], back["metricTrigger"]["threshold"]) == (
        "LessThan",
        35,
    )
    assert (
        out["scaleAction"]["direction"] == "Increase"
        and back["scaleAction"]["direction"] == "Decrease"
    )
    settings = [k.rsplit("/", 1)[-1] for k in fake.resources if "/autoscalesettings/" in k]
    assert settings == [f"autoscale-{PROD}-green"], "the retired deployment's setting is gone"


def test_an_autoscale_setting_azure_refuses_abandons_the_rollout(ctx, fake, shared, monkeypatch):
    lifecycle.deploy(ctx, "prod", shared.ref)
    monkeypatch.setattr("mlops.backends.azure.online.CPU_METRIC", "CpuPercentage")  # a VM's name
    with pytest.raises(RolloutFailed) as failure:
        lifecycle.deploy(ctx, "prod", shared.ref)
    assert (
        "deployment 'green' could not be autoscaled: Azure Monitor refused "
        f"autoscale-{PROD}-green: BadRequest: profile 'cpu': metric 'CpuPercentage' is not a "
        "metric of an online deployment"
    ) in str(failure.value)
    endpoint = ctx.backend("prod").get_endpoint(PROD)
    assert endpoint.traffic == {"blue": 100} and list(endpoint.deployments) == ["blue"]


@pytest.fixture
def prod_blue(ctx, fake):
    """prod's backend and the resource id of a deployment blue (stored, not rolled out)."""
    target = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{env_setting('prod', 'azure.resource_group')}"
        f"/providers/Microsoft.MachineLearningServices{PROD_ENDPOINT}/deployments/blue"
    )
    fake.store(  # as the double stores a deployment PUT (endpoints.put_deployment)
        target,
        {
            "sku": {"name": "Default", "capacity": 1},
            "properties": {
                "endpointComputeType": "Managed",
                "scaleSettings": {"scaleType": "Default"},
            },
        },
    )
    return ctx.backend("prod"), target


def spoil(setting, change):
    change(setting, setting["properties"]["profiles"][0])
    return setting


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (
            lambda s, p: p["capacity"].update(minimum="4", default="4"),
            "minimum 4 is above maximum 3",
        ),
        (
            lambda s, p: p["capacity"].update(default="5"),
            "default 5 is outside minimum 1 and maximum 3",
        ),
        (lambda s, p: p["capacity"].update(maximum=3), "capacity.maximum must be a whole number"),
        (lambda s, p: s.pop("location"), "location is required"),
        (lambda s, p: s["properties"].update(profiles=[p] * 21), "21 profiles; at most 20"),
        (lambda s, p: p.update(rules=p["rules"] * 6), "12 rules; at most 10"),
        (
            lambda s, p: s["properties"].update(
                targetResourceUri=s["properties"]["targetResourceUri"][:-4] + "gone"
            ),
            "the target resource",
        ),
        (
            lambda s, p: p["rules"][0]["metricTrigger"].update(timeWindow="PT1M"),
            "timeWindow 'PT1M' must be an ISO 8601 duration from 300s",
        ),
        (
            lambda s, p: p["rules"][0]["scaleAction"].update(cooldown="P8D"),
            "cooldown 'P8D' must be an ISO 8601 duration",
        ),
    ],
)
def test_the_double_refuses_the_autoscale_settings_azure_refuses(prod_blue, change, refusal):
    backend, target = prod_blue
    name = autoscale_name(PROD, "blue")
    setting = autoscale_setting(name, target, "westeurope", Autoscale(1, 3, 70, 1))
    assert backend._arm("PUT", backend._autoscale_path(name), setting).status_code == 201
    setting = autoscale_setting(name, target, "westeurope", Autoscale(1, 3, 70, 1))
    reply = backend._arm("PUT", backend._autoscale_path(name), spoil(setting, change))
    assert reply.status_code == 400
    assert refusal in reply.json()["error"]["message"]


def test_removing_an_autoscale_setting_is_idempotent(prod_blue, fake):
    backend, target = prod_blue
    backend.set_autoscale(PROD, "blue", Autoscale(1, 3, 70, 1))
    assert [k for k in fake.resources if "/autoscalesettings/" in k]
    backend.remove_autoscale(PROD, "blue")
    assert not [k for k in fake.resources if "/autoscalesettings/" in k]
    backend.remove_autoscale(PROD, "blue")  # none left: a 204, no error

"""Online endpoints on Azure ML: managed online endpoints and deployments, keys, invoke and
logs. Traffic is always changed on the endpoint as read live."""

from __future__ import annotations

import contextlib
import re

from mlops.backends.azure.connection import ARM_SCOPE
from mlops.backends.base import (
    TAG_ARTIFACT,
    Deployment,
    DeploymentFailed,
    Endpoint,
    ModelVersion,
    Response,
)
from mlops.config import Autoscale
from mlops.errors import MlopsError
from mlops.paths import MODEL_CODE
from mlops.smoke import TRAFFIC_HEADER, traffic_kind

ARM = "https://management.azure.com"
# Azure Monitor autoscale settings, stable API (azure-rest-api-specs: specification/monitor/
# resource-manager/Microsoft.Insights/stable/2022-10-01/autoscale_API.json).
AUTOSCALE_API = "2022-10-01"
# A managed online deployment's CPU metric (Azure Monitor reference, "Supported metrics for
# Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments").
CPU_METRIC = "CpuUtilizationPercentage"
DEPLOYMENT_METRICS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"


class AzureOnline:
    """The online endpoint part of AzureBackend (which provides ml, settings, config, root,
    ensure_environment and _client_options)."""

    def get_endpoint(self, name: str) -> Endpoint | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            endpoint = self.ml.online_endpoints.get(name)
        except ResourceNotFoundError:
            return None
        deployments = deployments_of(self.ml.online_deployments.list(endpoint_name=name))
        return Endpoint(
            name=name,
            scoring_uri=endpoint.scoring_uri or "",
            traffic=dict(endpoint.traffic or {}),
            deployments=deployments,
            mirror_traffic=dict(endpoint.mirror_traffic or {}),
        )

    def create_endpoint(self, name: str) -> Endpoint:
        from azure.ai.ml.entities import (
            IdentityConfiguration,
            ManagedIdentityConfiguration,
            ManagedOnlineEndpoint,
        )

        identity = None
        if self.settings.endpoint_identity_id:
            identity = IdentityConfiguration(
                type="user_assigned",
                user_assigned_identities=[
                    ManagedIdentityConfiguration(resource_id=self.settings.endpoint_identity_id)
                ],
            )
        endpoint = ManagedOnlineEndpoint(name=name, auth_mode="key", identity=identity)
        self.ml.online_endpoints.begin_create_or_update(endpoint).result()
        return self.get_endpoint(name)

    def serving_parts(self, model: ModelVersion, script: str) -> dict:
        """What an online or a batch deployment serves: the registry's model, src/model's
        script and the content-versioned environment."""
        from azure.ai.ml.entities import CodeConfiguration

        environment = self.ensure_environment()
        return {
            "model": (
                f"azureml://registries/{self.settings.registry}/models/{model.name}"
                f"/versions/{model.version}"
            ),
            "code_configuration": CodeConfiguration(
                code=str(self.root / MODEL_CODE), scoring_script=script
            ),
            "environment": f"azureml:{environment.name}:{environment.version}",
        }

    def create_deployment(self, endpoint: str, deployment: str, model: ModelVersion) -> Deployment:
        from azure.ai.ml.entities import (
            DataCollector,
            DeploymentCollection,
            ManagedOnlineDeployment,
        )
        from azure.core.exceptions import HttpResponseError

        spec = ManagedOnlineDeployment(
            name=deployment,
            endpoint_name=endpoint,
            **self.serving_parts(model, "score.py"),
            instance_type=self.config.instance_type,
            instance_count=self.config.instance_count,
            tags={"model": model.ref, TAG_ARTIFACT: model.artifact_sha256},
            # inputs and outputs for drift monitoring; request logs in Application Insights
            data_collector=DataCollector(
                collections={
                    "model_inputs": DeploymentCollection(enabled="true"),
                    "model_outputs": DeploymentCollection(enabled="true"),
                }
            ),
            app_insights_enabled=True,
        )
        try:
            self.ml.online_deployments.begin_create_or_update(spec).result()
        except HttpResponseError as failure:
            raise DeploymentFailed(
                f"Azure refused or failed it: {first_line(failure)}",
                self.deployment_logs(endpoint, deployment),
            ) from None
        return Deployment(deployment, model.ref, model.artifact_sha256, "Succeeded")

    def set_autoscale(self, endpoint: str, deployment: str, autoscale: Autoscale) -> None:
        """An Azure Monitor autoscale setting targeting the deployment (learn.microsoft.com/azure/
        machine-learning/how-to-autoscale-endpoints), PUT with the ARM REST API through the
        azure-core pipeline the SDK uses: same credential, same transport, no extra package."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        try:
            target = self.ml.online_deployments.get(name=deployment, endpoint_name=endpoint)
            location = self.ml.workspaces.get(self.settings.workspace).location
        except (HttpResponseError, ResourceNotFoundError) as failure:
            raise DeploymentFailed(f"its resource could not be read: {failure.message}") from None
        name = autoscale_name(endpoint, deployment)
        body = autoscale_setting(name, target.id, location, autoscale)
        reply = self._arm("PUT", self._autoscale_path(name), body)
        if reply.status_code not in (200, 201):
            raise DeploymentFailed(f"Azure Monitor refused {name}: {_arm_message(reply)}")

    def remove_autoscale(self, endpoint: str, deployment: str) -> None:
        name = autoscale_name(endpoint, deployment)
        reply = self._arm("DELETE", self._autoscale_path(name))
        if reply.status_code not in (200, 204):  # 204: there was none (spec: 200 or 204)
            raise MlopsError(
                f"the autoscale setting {name} could not be removed: {_arm_message(reply)}"
            )

    def _autoscale_path(self, name: str) -> str:
        s = self.settings
        return (
            f"/subscriptions/{s.subscription_id}/resourcegroups/{s.resource_group}"
            f"/providers/Microsoft.Insights/autoscalesettings/{name}"
        )

    def _arm(self, method: str, path: str, body: dict | None = None):
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            RetryPolicy,
            UserAgentPolicy,
        )
        from azure.core.rest import HttpRequest

        policies = [
            HeadersPolicy(),
            UserAgentPolicy("mlops"),
            RetryPolicy(),
            BearerTokenCredentialPolicy(self.credential, ARM_SCOPE),
        ]
        client = PipelineClient(ARM, policies=policies, **self._client_options)
        request = HttpRequest(method, ARM + path, params={"api-version": AUTOSCALE_API}, json=body)
        return client.send_request(request)

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> Endpoint:
        live = self.ml.online_endpoints.get(endpoint)  # never a fresh object: that resets traffic
        live.traffic = dict(traffic)
        self.ml.online_endpoints.begin_create_or_update(live).result()
        return self.get_endpoint(endpoint)

    def set_mirror(self, endpoint: str, mirror: dict[str, int]) -> Endpoint:
        live = self.ml.online_endpoints.get(endpoint)
        live.mirror_traffic = dict(mirror)
        self.ml.online_endpoints.begin_create_or_update(live).result()
        return self.get_endpoint(endpoint)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):  # already gone: deleting is idempotent
            self.ml.online_deployments.begin_delete(
                name=deployment, endpoint_name=endpoint
            ).result()

    def deployment_logs(self, endpoint: str, deployment: str, lines: int = 80) -> str:
        from azure.core.exceptions import HttpResponseError

        try:
            return self.ml.online_deployments.get_logs(
                name=deployment, endpoint_name=endpoint, lines=lines
            )
        except HttpResponseError as failure:
            return f"(logs unavailable: {failure.message})"

    def invoke(self, endpoint: str, body: bytes, deployment: str | None = None) -> Response:
        """POST to the scoring URI with the endpoint's key.

        Not `online_endpoints.invoke`: it fails on a 4xx whose JSON `error` is a
        sentence rather than an object, which is exactly what score.py answers."""
        from azure.core import PipelineClient
        from azure.core.exceptions import ServiceRequestError
        from azure.core.rest import HttpRequest

        url, headers = self.scoring_target(endpoint)
        headers["Content-Type"] = "application/json"
        # smoke tests and probes stay out of the collected data (score.py reads the header
        # from the raw request it is handed)
        headers[TRAFFIC_HEADER] = traffic_kind.get()
        if deployment:
            headers["azureml-model-deployment"] = deployment
        client = PipelineClient(url, **self._client_options)
        try:
            reply = client.send_request(HttpRequest("POST", url, content=body, headers=headers))
        except ServiceRequestError as failure:
            return Response(0, str(failure).encode(), deployment)
        answered_by = reply.headers.get("azureml-model-deployment", deployment)
        return Response(reply.status_code, reply.content, answered_by)

    def serving_instances(self) -> int:
        return self.config.instance_count

    def scoring_target(self, endpoint: str) -> tuple[str, dict[str, str]]:
        live = self.ml.online_endpoints.get(endpoint)
        key = self.ml.online_endpoints.get_keys(endpoint).primary_key
        return live.scoring_uri, {"Authorization": f"Bearer {key}"}

    def owner_headers(self, endpoint: str) -> dict[str, str]:
        return {}  # Azure's endpoint has no router of ours to tell the lifecycle's requests by

    def list_endpoints(self) -> list[Endpoint]:
        found = [self.get_endpoint(e.name) for e in self.ml.online_endpoints.list()]
        return [e for e in found if e is not None]

    def delete_endpoint(self, name: str) -> None:
        self.ml.online_endpoints.begin_delete(name=name).result()


def first_line(failure: Exception) -> str:
    """An Azure error's sentence: azure-core's message is "(Code) sentence", then repeats it."""
    text = str(getattr(failure, "message", "") or failure)
    return text.splitlines()[0] if text else type(failure).__name__


def autoscale_name(endpoint: str, deployment: str) -> str:
    return f"autoscale-{endpoint}-{deployment}"


def autoscale_setting(name: str, target: str, location: str, scale: Autoscale) -> dict:
    """One profile, two rules on the deployment's average CPU: add an instance above the target,
    remove one below half of it (the gap keeps the count from flapping: learn.microsoft.com/
    azure/azure-monitor/autoscale/autoscale-best-practices)."""

    def rule(direction: str, operator: str, threshold: int, cooldown: str) -> dict:
        return {
            "metricTrigger": {
                "metricName": CPU_METRIC,
                "metricNamespace": DEPLOYMENT_METRICS,
                "metricResourceUri": target,
                "timeGrain": "PT1M",
                "statistic": "Average",
                "timeWindow": "PT5M",
                "timeAggregation": "Average",
                "operator": operator,
                "threshold": threshold,
            },
            "scaleAction": {
                "direction": direction,
                "type": "ChangeCount",
                "value": "1",
                "cooldown": cooldown,
            },
        }

    return {
        "location": location,
        "properties": {
            "name": name,
            "enabled": True,
            "targetResourceUri": target,
            "targetResourceLocation": location,
            "profiles": [
                {
                    "name": "cpu",
                    # the spec types the counts as strings
                    "capacity": {
                        "minimum": str(scale.min_instances),
                        "maximum": str(scale.max_instances),
                        "default": str(scale.default_instances),
                    },
                    "rules": [
                        rule("Increase", "GreaterThan", scale.cpu_percent, "PT5M"),
                        rule("Decrease", "LessThan", scale.cpu_percent // 2, "PT10M"),
                    ],
                }
            ],
        },
    }


def _arm_message(reply) -> str:
    """ARM's error sentence (ErrorResponse {error: {code, message}}), else the status."""
    try:
        error = reply.json()["error"]
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, KeyError, TypeError):
        return f"HTTP {reply.status_code}"


def deployments_of(listed) -> dict[str, Deployment]:
    """Online or batch deployments as listed by the SDK, by name, with the model each serves."""
    return {
        d.name: Deployment(d.name, *_served_model(d), d.provisioning_state or "Unknown")
        for d in listed
    }


def _served_model(deployment) -> tuple[str, str]:
    """NAME:VERSION and model.onnx sha256 a deployment serves. Its model reference is the truth;
    the tags the rollout wrote count only while they name that same model (an update elsewhere
    may have changed the model and kept the tags)."""
    tags = deployment.tags or {}
    found = re.search(r"/models/([^/]+)/versions/([^/]+)$", str(deployment.model or ""))
    ref = f"{found[1]}:{found[2]}" if found else tags.get("model", str(deployment.model))
    return ref, tags.get(TAG_ARTIFACT, "") if tags.get("model") == ref else ""

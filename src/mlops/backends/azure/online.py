"""Online endpoints on Azure ML: managed online endpoints and deployments, keys, invoke and
logs. Traffic is always changed on the endpoint as read live."""

from __future__ import annotations

import contextlib
import re

from mlops.backends.base import (
    TAG_ARTIFACT,
    Deployment,
    DeploymentFailed,
    Endpoint,
    ModelVersion,
    Response,
)
from mlops.paths import MODEL_CODE


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
                f"Azure refused or failed it: {failure.message}",
                self.deployment_logs(endpoint, deployment),
            ) from None
        return Deployment(deployment, model.ref, model.artifact_sha256, "Succeeded")

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

    def list_endpoints(self) -> list[Endpoint]:
        found = [self.get_endpoint(e.name) for e in self.ml.online_endpoints.list()]
        return [e for e in found if e is not None]

    def delete_endpoint(self, name: str) -> None:
        self.ml.online_endpoints.begin_delete(name=name).result()


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

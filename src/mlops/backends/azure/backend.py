"""The azure backend: the seam of base.py on an Azure ML workspace and registry.

Training is a command job running src/model/train.py on the environment's
compute; the software environment and the training data are registered as
assets versioned by content hash, so unchanged files are never registered
again. Models are registered from the job's output with the lineage tags and
shared into the registry. Online endpoints are managed online endpoints;
traffic is always changed on the endpoint as read live.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from mlops import lineage
from mlops.backends.azure.batch import AzureBatch
from mlops.backends.azure.connection import AzureSettings, check_credential, credential
from mlops.backends.base import (
    TAG_ARTIFACT,
    TAG_GIT,
    Deployment,
    DeploymentFailed,
    Endpoint,
    Job,
    ModelVersion,
    Response,
    TrainingSpec,
)
from mlops.config import EnvConfig
from mlops.errors import MlopsError
from mlops.paths import MODEL_CODE
from mlops.progress import Progress

# A dated tag, not :latest, so a rebuilt image is the same image (newer tags: MCR).
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20250601.v1"
CONDA_FILE = MODEL_CODE / "environment" / "conda.yml"
# Where waiting ends (REST spec JobStatus): a paused job waits for a person, not for us.
TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding", "Paused"}


def content_version(path: Path) -> str:
    """An asset version that changes exactly when the file's bytes do."""
    return lineage.sha256_of(path)[:16]


class AzureBackend(AzureBatch):
    def __init__(
        self,
        config: EnvConfig,
        root: Path,
        home: Path,
        *,
        azure_credential=None,
        transport=None,
        settings: AzureSettings | None = None,
        poll_seconds: float = 20.0,
        progress: Progress | None = None,
    ):
        from azure.ai.ml import MLClient

        self.config, self.env, self.root, self.home = config, config.name, root, home
        self.settings = settings or AzureSettings.resolve(config)
        if azure_credential is None:
            azure_credential = credential()
            check_credential(azure_credential)
        self.credential = azure_credential
        self._client_options = {"transport": transport} if transport is not None else {}
        s = self.settings
        self.ml = MLClient(
            azure_credential,
            s.subscription_id,
            s.resource_group,
            s.workspace,
            **self._client_options,
        )
        self._registry_client = None
        self.poll_seconds = poll_seconds
        self.say = (progress or Progress()).say

    @property
    def registry(self):
        from azure.ai.ml import MLClient

        if self._registry_client is None:
            self._registry_client = MLClient(
                self.credential, registry_name=self.settings.registry, **self._client_options
            )
        return self._registry_client

    # ---- assets versioned by content ---------------------------------------------

    def ensure_environment(self):
        from azure.ai.ml.entities import Environment
        from azure.core.exceptions import ResourceNotFoundError

        conda = self.root / CONDA_FILE
        name, version = f"{self.config.model_name}-env", content_version(conda)
        try:
            return self.ml.environments.get(name, version)
        except ResourceNotFoundError:
            self.say(f"registering environment {name}:{version} from {CONDA_FILE}")
            return self.ml.environments.create_or_update(
                Environment(name=name, version=version, image=BASE_IMAGE, conda_file=str(conda))
            )

    def ensure_data(self, path: Path, name: str):
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data
        from azure.core.exceptions import ResourceNotFoundError

        version = content_version(path)
        try:
            return self.ml.data.get(name, version)
        except ResourceNotFoundError:
            self.say(f"registering data {name}:{version} from {path.name}")
            return self.ml.data.create_or_update(
                Data(name=name, version=version, path=str(path), type=AssetTypes.URI_FILE)
            )

    # ---- training -----------------------------------------------------------------

    def run_training_job(self, spec: TrainingSpec) -> Job:
        from azure.ai.ml import Input, Output, command
        from azure.ai.ml.constants import AssetTypes

        environment = self.ensure_environment()
        data = self.ensure_data(Path(spec.data_path), f"{spec.experiment}-data")
        flags = "".join(f" --{k.replace('_', '-')}={v}" for k, v in spec.params.items())
        job = command(
            code=spec.code_dir,
            command="python train.py --data ${{inputs.data}} --output ${{outputs.model}}" + flags,
            inputs={
                "data": Input(type=AssetTypes.URI_FILE, path=f"azureml:{data.name}:{data.version}")
            },
            outputs={"model": Output(type=AssetTypes.URI_FOLDER)},
            environment=f"azureml:{environment.name}:{environment.version}",
            compute=self.settings.compute,
            experiment_name=spec.experiment,
            tags={TAG_GIT: spec.git_commit},
        )
        submitted = self.ml.jobs.create_or_update(job)
        self.say(f"submitted job {submitted.name}: {submitted.studio_url}")
        final = self._wait(submitted.name)
        if _status(final) != "Completed":
            raise MlopsError(
                f"training job {final.name} ended {_status(final)}; its logs are at "
                f"{final.studio_url} (or: az ml job stream --name {final.name})"
            )
        return self.get_job(final.name)

    def _wait(self, name: str):
        """Poll in short steps: each call fetches a token, so no login outlives its assertion."""
        started, last = time.monotonic(), None
        while True:
            job = self.ml.jobs.get(name)
            status = _status(job)
            if status != last:
                self.say(f"job {name}: {status} after {time.monotonic() - started:.0f}s")
                last = status
            if status in TERMINAL:
                return job
            time.sleep(self.poll_seconds)

    def get_job(self, job_id: str) -> Job:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            job = self.ml.jobs.get(job_id)
        except ResourceNotFoundError:
            raise MlopsError(f"no job {job_id!r} in {self.env}") from None
        if _status(job) != "Completed":
            raise MlopsError(
                f"job {job_id} is {_status(job)}; only completed jobs can be registered"
            )
        # an Azure ML job is its MLflow run: the run's tags are the job's tags
        return lineage.job_from_run_tags(job.name, job.name, dict(job.tags or {}))

    # ---- models ---------------------------------------------------------------------

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return [_model_version(found) for found in self.ml.models.list(name=name)]

    def create_model_version(self, job: Job, name: str, tags: dict[str, str]) -> ModelVersion:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        created = self.ml.models.create_or_update(
            Model(
                name=name,
                path=f"azureml://jobs/{job.id}/outputs/model/paths/model/",
                type=AssetTypes.MLFLOW_MODEL,
                tags=tags,
                description=f"trained by job {job.id}",
            )
        )
        return _model_version(created)

    def get_registered_model(self, name: str, version: int) -> ModelVersion | None:
        return _get_model(self.ml, name, version)

    def share_model(self, model: ModelVersion) -> ModelVersion:
        self.ml.models.share(
            name=model.name,
            version=str(model.version),
            registry_name=self.settings.registry,
            share_with_name=model.name,
            share_with_version=str(model.version),
        )
        shared = self.get_shared_model(model.name, model.version)
        if shared is None:
            raise MlopsError(f"sharing {model.ref} to {self.settings.registry} did not create it")
        return shared

    def get_shared_model(self, name: str, version: int) -> ModelVersion | None:
        return _get_model(self.registry, name, version)

    def download_model(self, model: ModelVersion, folder: Path) -> Path:
        from azure.core.exceptions import AzureError

        target = folder / model.name / str(model.version)
        try:
            self.registry.models.download(model.name, str(model.version), download_path=target)
        except AzureError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MlopsError(
                f"downloading {model.ref} from the registry failed: {reason}"
            ) from None
        return lineage.checked_artifact(target, model)

    # ---- online endpoints ---------------------------------------------------------------

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

    def collected_rows(
        self, endpoint: str, model: str | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, float]]:
        """Stream the data collector's model_inputs, blob by blob, chunk by chunk.

        The collector writes JSON Lines under modelDataCollector/<endpoint>/<deployment>/
        model_inputs/YYYY/MM/DD/HH/ in the workspace's default blob store; each
        line's `data` holds the collected rows. model keeps the blobs of the deployments
        now serving it; since keeps the hours from its hour on."""
        from azure.storage.blob import ContainerClient

        store = self.ml.datastores.get_default()
        container = ContainerClient(
            f"https://{store.account_name}.blob.{store.endpoint}",
            store.container_name,
            credential=self.credential,
            **self._client_options,
        )
        serving = None
        if model:
            live = self.get_endpoint(endpoint)
            serving = {
                d.name for d in (live.deployments if live else {}).values() if d.model == model
            }
        hour = f"{since:%Y/%m/%d/%H}" if since else ""
        from azure.core.exceptions import HttpResponseError

        try:
            names = sorted(
                blob.name
                for blob in container.list_blobs(name_starts_with=f"modelDataCollector/{endpoint}/")
                if "/model_inputs/" in blob.name
                and blob.name.endswith(".jsonl")
                and (serving is None or blob.name.split("/")[2] in serving)
                and blob.name.split("/model_inputs/")[1][:13] >= hour
            )
        except HttpResponseError as failure:
            if failure.status_code != 403:
                raise
            raise MlopsError(
                f"this identity may not read blobs in storage account {store.account_name} "
                f"({failure.error_code}): it needs a Storage Blob Data role there, e.g. "
                "Storage Blob Data Reader (infra/mlops_infra/access.py)"
            ) from None
        for name in names:
            pending = b""
            for chunk in container.download_blob(name).chunks():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    yield from _collected_inputs(line)
            yield from _collected_inputs(pending)

    def list_endpoints(self) -> list[Endpoint]:
        found = [self.get_endpoint(e.name) for e in self.ml.online_endpoints.list()]
        return [e for e in found if e is not None]

    def delete_endpoint(self, name: str) -> None:
        self.ml.online_endpoints.begin_delete(name=name).result()


def _collected_inputs(line: bytes) -> Iterator[dict[str, float]]:
    if not line.strip():
        return
    data = json.loads(line).get("data")
    if isinstance(data, str):  # some collector versions nest the records as a JSON string
        data = json.loads(data)
    yield from data if isinstance(data, list) else [data] if isinstance(data, dict) else []


def _status(job) -> str:
    """The job's status as Azure spells it (the SDK hands back an enum whose str() is its name)."""
    return str(getattr(job.status, "value", job.status))


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


def _get_model(client, name: str, version: int) -> ModelVersion | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        found = client.models.get(name=name, version=str(version))
    except ResourceNotFoundError:
        return None
    return _model_version(found)


def _model_version(model) -> ModelVersion:
    tags = dict(model.tags or {})
    return ModelVersion(
        name=model.name,
        version=int(model.version),
        tags=tags,
        artifact_sha256=tags.get(TAG_ARTIFACT, ""),
        location=model.id or "",
    )

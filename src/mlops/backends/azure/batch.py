"""Batch endpoints on Azure ML: a batch deployment runs src/model/batch_score.py on the
environment's compute cluster (which scales to zero between jobs); a job is the endpoint
invoked on an input, followed until it ends.

The default deployment is changed on the endpoint as read live, like online traffic,
so nothing else set on it (tags, description) is lost.
"""

from __future__ import annotations

from pathlib import Path

from mlops.backends.azure.jobs import _status
from mlops.backends.azure.online import deployments_of, first_line
from mlops.backends.base import TAG_ARTIFACT, BatchEndpoint, BatchJob, Deployment, ModelVersion
from mlops.errors import MlopsError

ENTRY_SCRIPT = "batch_score.py"  # in src/model, beside score.py
MODEL_ENV = "MLOPS_MODEL"  # batch_score.MODEL_ENV: NAME:VERSION for the outputs' lineage
OUTPUT = "score"  # the name of a batch job's output (docs how-to-use-batch-model-deployments)


class AzureBatch:
    """The batch part of AzureBackend (which provides ml, settings, root and its helpers)."""

    def get_batch_endpoint(self, name: str) -> BatchEndpoint | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            endpoint = self.ml.batch_endpoints.get(name)
        except ResourceNotFoundError:
            return None
        deployments = deployments_of(self.ml.batch_deployments.list(endpoint_name=name))
        return BatchEndpoint(name, endpoint.defaults.deployment_name or None, deployments)

    def create_batch_endpoint(self, name: str) -> BatchEndpoint:
        from azure.ai.ml.entities import BatchEndpoint as AzureBatchEndpoint

        self.ml.batch_endpoints.begin_create_or_update(
            AzureBatchEndpoint(name=name, description=f"batch scoring in {self.env}")
        ).result()
        return self.get_batch_endpoint(name)

    def create_batch_deployment(
        self, endpoint: str, deployment: str, model: ModelVersion
    ) -> Deployment:
        from azure.ai.ml.constants import BatchDeploymentOutputAction
        from azure.ai.ml.entities import (
            BatchRetrySettings,
            ModelBatchDeployment,
            ModelBatchDeploymentSettings,
        )
        from azure.core.exceptions import HttpResponseError

        spec = ModelBatchDeployment(
            name=deployment,
            endpoint_name=endpoint,
            **self.serving_parts(model, ENTRY_SCRIPT),
            compute=self.settings.compute,
            settings=ModelBatchDeploymentSettings(
                mini_batch_size=1,  # one file per run(): the script chunks inside the file
                instance_count=1,
                max_concurrency_per_instance=1,
                # the script writes its own files (predictions, errors) to the job's output
                output_action=BatchDeploymentOutputAction.SUMMARY_ONLY,
                retry_settings=BatchRetrySettings(max_retries=2, timeout=3600),
                error_threshold=0,  # a file that cannot be read at all fails the job
                logging_level="info",
                environment_variables={MODEL_ENV: model.ref},
            ),
            tags={"model": model.ref, TAG_ARTIFACT: model.artifact_sha256},
        )
        try:
            self.ml.batch_deployments.begin_create_or_update(spec).result()
        except HttpResponseError as failure:
            raise MlopsError(  # the first line: "(Code) sentence"; the rest repeats it
                f"batch deployment {endpoint}/{deployment} failed: {first_line(failure)}"
            ) from None
        return Deployment(deployment, model.ref, model.artifact_sha256, "Succeeded")

    def set_batch_default(self, endpoint: str, deployment: str) -> BatchEndpoint:
        live = self.ml.batch_endpoints.get(endpoint)
        live.defaults.deployment_name = deployment
        self.ml.batch_endpoints.begin_create_or_update(live).result()
        return self.get_batch_endpoint(endpoint)

    def invoke_batch(self, endpoint: str, source: str, deployment: str | None = None) -> BatchJob:
        from azure.ai.ml import Input
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.exceptions import ValidationException
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        if source.startswith("azureml:") and not source.startswith("azureml://"):
            name, _, version = source.removeprefix("azureml:").partition(":")
            try:
                asset = self.ml.data.get(name, version) if version else None
            except ResourceNotFoundError:
                asset = None
            if asset is None:
                raise MlopsError(f"{self.env} has no data asset {source} (write azureml:NAME:VER)")
            data = Input(type=asset.type, path=source)
        else:
            if "://" not in source and not Path(source).exists():
                raise MlopsError(f"{source} is neither a file nor a URI nor azureml:NAME:VER")
            folder = source.endswith("/") or Path(source).is_dir()
            data = Input(type=AssetTypes.URI_FOLDER if folder else AssetTypes.URI_FILE, path=source)
        # Always name the deployment: the SDK keeps the header of an earlier call in a shared
        # dict (operations/_batch_endpoint_operations.py, invoke: headers = DEFAULT_HEADER), so
        # "no name" may still route to the last one named. The default is read live here.
        chosen = deployment or self.ml.batch_endpoints.get(endpoint).defaults.deployment_name
        if not chosen:
            raise MlopsError(f"batch endpoint {endpoint} has no default deployment to run a job")
        try:
            job = self.ml.batch_endpoints.invoke(
                endpoint_name=endpoint, deployment_name=chosen, input=data
            )
        except ValidationException as refused:
            # a local input is uploaded with this identity's own token (the datastore is
            # identity-based): the SDK turns storage's 403 into this (_blob_storage_helper.py)
            if "permission" not in refused.message:
                raise MlopsError(f"invoking batch endpoint {endpoint}: {refused.message}") from None
            raise MlopsError(
                f"uploading {source} to {self.env}'s workspace storage was refused: this identity "
                "needs Storage Blob Data Contributor on that storage account "
                "(infra/mlops_infra/access.py)"
            ) from None
        except HttpResponseError as failure:
            raise MlopsError(
                f"invoking batch endpoint {endpoint} failed: {first_line(failure)}"
            ) from None
        self.say(f"batch job {job.name} started on {endpoint}/{chosen}")
        final = self._wait(job.name)

        outputs = (
            f"the job's {OUTPUT!r} output: az ml job download --name {job.name} "
            f"--output-name {OUTPUT} (studio: {final.studio_url})"
        )
        return BatchJob(job.name, _status(final), chosen, outputs)

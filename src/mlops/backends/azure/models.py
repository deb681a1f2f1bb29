"""Model versions on Azure ML: registered in the workspace from a job's output with the
lineage tags, shared into the registry, downloaded from it."""

from __future__ import annotations

from pathlib import Path

from mlops import lineage
from mlops.backends.base import TAG_ARTIFACT, Job, ModelVersion
from mlops.errors import MlopsError


class AzureModels:
    """The model registry part of AzureBackend (which provides ml, registry and settings)."""

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return [_model_version(found) for found in self.ml.models.list(name=name)]
        except ResourceNotFoundError:  # Azure answers 404 ModelNotFound for a model with none
            return []

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

    def list_shared_models(self, name: str) -> list[ModelVersion]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            return [_model_version(found) for found in self.registry.models.list(name=name)]
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MlopsError(
                f"listing {name}'s versions in the registry failed: {reason}"
            ) from None

    def tag_shared_model(self, model: ModelVersion, tags: dict[str, str]) -> ModelVersion:
        """A registry version's tags can change, its files cannot: the SDK's update is a PUT of
        the same version with the new tags (RegistryModelVersions_CreateOrUpdate, REST spec
        stable/2024-04-01 registries.json; the SDK's registry archive is the same GET-then-PUT,
        azure/ai/ml/_utils/_asset_utils.py _archive_or_restore)."""
        from azure.core.exceptions import AzureError

        try:
            # The PUT replaces every tag: two commands tagging the version at once could drop
            # one's tags, so each checks its tags are there afterwards and tries again if not.
            for _ in range(3):
                found = self.registry.models.get(name=model.name, version=str(model.version))
                found.tags = {**(found.tags or {}), **tags}
                self.registry.models.create_or_update(found)
                tagged = self.get_shared_model(model.name, model.version)
                if tagged is not None and tags.items() <= tagged.tags.items():
                    return tagged
        except AzureError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MlopsError(f"tagging {model.ref} in the registry failed: {reason}") from None
        raise MlopsError(f"tagging {model.ref} in the registry failed: its tags kept changing")

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

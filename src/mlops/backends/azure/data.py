"""Data asset versions on Azure ML (the SDK's DataOperations): one uri_file version per file,
numbered 1, 2, 3 as the policy in mlops.data decides, with the file's sha256 and rows as tags;
shared into the registry with the model trained on them (DataOperations.share, as models are)."""

from __future__ import annotations

from pathlib import Path

from mlops import lineage
from mlops.backends.base import DataVersion
from mlops.errors import MlopsError

REGISTRY_IDS = "azureml://registries/"  # how a registry asset's id starts (SDK REGISTRY_ASSET_ID)


class AzureData:
    """The data asset part of AzureBackend (which provides ml, registry, settings and env)."""

    def list_data_versions(self, name: str) -> list[DataVersion]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            found = [_data_version(data) for data in self.ml.data.list(name=name)]
        except ResourceNotFoundError:  # no container: the asset has no version yet
            return []
        except AzureError as exc:  # e.g. no read access to this workspace
            raise MlopsError(f"listing data {name} in {self.env} failed: {_reason(exc)}") from None
        return sorted((d for d in found if d is not None), key=lambda d: d.version)

    def get_data_version(self, name: str, version: int) -> DataVersion | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            return _data_version(self.ml.data.get(name, version=str(version)))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise MlopsError(
                f"reading data {name}:{version} in {self.env} failed: {_reason(exc)}"
            ) from None

    def create_data_version(
        self, name: str, version: int, path: Path, tags: dict[str, str]
    ) -> DataVersion:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data
        from azure.core.exceptions import AzureError

        try:
            created = self.ml.data.create_or_update(
                Data(
                    name=name,
                    version=str(version),
                    path=str(path),
                    type=AssetTypes.URI_FILE,
                    tags=tags,
                    description=f"registered by mlops data register from {path.name}",
                )
            )
        except AzureError as exc:
            raise MlopsError(f"registering data {name}:{version} failed: {_reason(exc)}") from None
        return _data_version(created)

    def download_data(self, data: DataVersion, folder: Path) -> Path:
        from azure.ai.ml._artifacts._artifact_utilities import download_artifact_from_aml_uri
        from azure.core.exceptions import AzureError

        shared = data.location.startswith(REGISTRY_IDS)
        where = f"the registry {self.settings.registry}" if shared else self.env
        target = folder / data.name / str(data.version)
        try:
            if shared:
                self._download_shared(data, target)
            else:
                found = self.ml.data.get(data.name, version=str(data.version))
                download_artifact_from_aml_uri(found.path, str(target), self.ml.datastores)
        except AzureError as exc:
            raise MlopsError(
                f"downloading data {data.ref} from {where} failed: {_reason(exc)}"
            ) from None
        files = [p for p in target.rglob("*") if p.is_file()]
        if len(files) != 1 or lineage.sha256_of(files[0]) != data.sha256:
            raise MlopsError(f"data {data.ref} in {where}: its file does not match its sha256")
        return files[0]

    def _download_shared(self, data: DataVersion, target: Path) -> None:
        """A registry's files, as the SDK's ModelOperations.download reads a registry model's:
        a SAS from the registry (datarefs), then the blobs under the asset's path with it."""
        from azure.ai.ml._utils._registry_utils import get_storage_details_for_registry_assets
        from azure.ai.ml._utils._storage_utils import (
            get_ds_name_and_path_prefix,
            get_storage_client,
        )

        operations = self.registry.data
        uri = operations.get(data.name, version=str(data.version)).path
        _, prefix = get_ds_name_and_path_prefix(uri, self.settings.registry)
        sas_uri, _ = get_storage_details_for_registry_assets(
            service_client=operations._registry_service_client,
            asset_type="data",
            asset_name=data.name,
            asset_version=str(data.version),
            rg_name=operations._resource_group_name,
            reg_name=self.settings.registry,
            uri=uri,
        )
        storage = get_storage_client(credential=None, storage_account=None, account_url=sas_uri)
        storage.download(starts_with=prefix, destination=str(target))

    def share_data(self, data: DataVersion) -> DataVersion:
        from azure.core.exceptions import AzureError

        registry = self.settings.registry
        try:
            self.ml.data.share(
                name=data.name,
                version=str(data.version),
                registry_name=registry,
                share_with_name=data.name,
                share_with_version=str(data.version),
            )
        except AzureError as exc:  # MlException (e.g. already there) is an AzureError too
            raise MlopsError(
                f"sharing data {data.ref} to the registry {registry} failed: {_reason(exc)}"
            ) from None
        shared = self.get_shared_data(data.name, data.version)
        if shared is None:
            raise MlopsError(f"sharing data {data.ref} to the registry {registry} made nothing")
        return shared

    def get_shared_data(self, name: str, version: int) -> DataVersion | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            return _data_version(self.registry.data.get(name, version=str(version)))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:  # e.g. no read access to the registry
            raise MlopsError(
                f"reading data {name}:{version} in the registry {self.settings.registry} "
                f"failed: {_reason(exc)}"
            ) from None


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _data_version(data) -> DataVersion | None:
    """A version numbered as this project numbers them; others (e.g. hashes) are not ours."""
    if not str(data.version).isdigit():
        return None
    return DataVersion(data.name, int(data.version), dict(data.tags or {}), data.id or "")

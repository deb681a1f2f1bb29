"""Data asset versions on Azure ML (the SDK's DataOperations): one uri_file version per file,
numbered 1, 2, 3 as the policy in mlops.data decides, with the file's sha256 and rows as tags."""

from __future__ import annotations

from pathlib import Path

from mlops import lineage
from mlops.backends.base import DataVersion
from mlops.errors import MlopsError


class AzureData:
    """The data asset part of AzureBackend (which provides ml and env)."""

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

        target = folder / data.name / str(data.version)
        try:
            found = self.ml.data.get(data.name, version=str(data.version))
            download_artifact_from_aml_uri(found.path, str(target), self.ml.datastores)
        except AzureError as exc:
            raise MlopsError(f"downloading data {data.ref} failed: {_reason(exc)}") from None
        files = [p for p in target.rglob("*") if p.is_file()]
        if len(files) != 1 or lineage.sha256_of(files[0]) != data.sha256:
            raise MlopsError(f"data {data.ref} in {self.env}: its file does not match its sha256")
        return files[0]


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _data_version(data) -> DataVersion | None:
    """A version numbered as this project numbers them; others (e.g. hashes) are not ours."""
    if not str(data.version).isdigit():
        return None
    return DataVersion(data.name, int(data.version), dict(data.tags or {}), data.id or "")

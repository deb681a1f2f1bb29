"""Model versions on this machine: the environment's MLflow registry, and the shared registry.

The shared registry is a folder, registry/<model>/<version>/, holding the model files and
meta.json; a version appears there whole or not at all.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from mlops import lineage
from mlops.backends.base import TAG_ARTIFACT, Job, ModelVersion
from mlops.backends.local.meta import read_meta
from mlops.backends.local.state_files import ModelMeta
from mlops.errors import MlopsError
from mlops.lineage import ONNX_FILE
from mlops.state import locked, read_json, write_json


class LocalModels:
    """The model registry part of LocalBackend (which provides env, registry and _mlflow)."""

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        if not self._has_store():
            return []
        client = self._mlflow()
        found = client.search_model_versions(f"name='{name}'")
        return [self._model_version(client, version) for version in found]

    def create_model_version(self, job: Job, name: str, tags: dict[str, str]) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        client = self._mlflow()
        with contextlib.suppress(MlflowException):  # already exists
            client.create_registered_model(name)
        run = client.get_run(job.run_id)
        created = client.create_model_version(
            name, f"{run.info.artifact_uri}/model", run_id=job.run_id, tags=tags
        )
        return self._model_version(client, created)

    def get_registered_model(self, name: str, version: int) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        if not self._has_store():
            return None
        client = self._mlflow()
        try:
            return self._model_version(client, client.get_model_version(name, str(version)))
        except MlflowException:
            return None

    def _model_version(self, client, version) -> ModelVersion:
        location = client.get_model_version_download_uri(version.name, version.version)
        return ModelVersion(
            name=version.name,
            version=int(version.version),
            tags=dict(version.tags),
            artifact_sha256=version.tags.get(TAG_ARTIFACT, ""),
            location=location.removeprefix("file://"),
        )

    # ---- the shared registry -------------------------------------------------------

    def share_model(self, model: ModelVersion) -> ModelVersion:
        source = Path(model.location)
        if lineage.sha256_of(source / ONNX_FILE) != model.artifact_sha256:
            raise MlopsError(
                f"{model.ref} in {self.env}: {ONNX_FILE} does not match its sha256 tag"
            )
        target = self.registry / model.name / str(model.version)
        staging = target.with_name(f".{target.name}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging / "model")
        write_json(staging / "meta.json", {**_as_meta(model), "shared_from": self.env})
        staging.rename(target)  # the version appears whole or not at all
        return self.get_shared_model(model.name, model.version)

    def get_shared_model(self, name: str, version: int) -> ModelVersion | None:
        folder = self.registry / name
        meta = read_meta(folder / str(version) / "meta.json", ModelMeta, name=name, version=version)
        if meta is None:
            return None
        return ModelVersion(
            name=meta.name,
            version=meta.version,
            tags=dict(meta.tags),
            artifact_sha256=meta.artifact_sha256,
            location=str(folder / str(version) / "model"),
        )

    def list_shared_models(self, name: str) -> list[ModelVersion]:
        folder = self.registry / name
        versions = (int(p.name) for p in folder.glob("*") if p.name.isdigit())
        return [found for v in sorted(versions) if (found := self.get_shared_model(name, v))]

    def tag_shared_model(self, model: ModelVersion, tags: dict[str, str]) -> ModelVersion:
        meta_path = self.registry / model.name / str(model.version) / "meta.json"
        with locked(meta_path.with_name(".meta.lock")):  # two commands tagging at once
            if read_meta(meta_path, ModelMeta, name=model.name, version=model.version) is None:
                raise MlopsError(f"{model.ref} is not in the shared registry")
            meta = read_json(meta_path)  # every field kept, the ones this version does not know
            write_json(meta_path, {**meta, "tags": {**meta["tags"], **tags}})
        return self.get_shared_model(model.name, model.version)

    def download_model(self, model: ModelVersion, folder: Path) -> Path:
        target = folder / model.name / str(model.version)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model.location, target)
        return lineage.checked_artifact(target, model)


def _as_meta(model: ModelVersion) -> dict:
    return {
        "name": model.name,
        "version": model.version,
        "tags": model.tags,
        "artifact_sha256": model.artifact_sha256,
    }

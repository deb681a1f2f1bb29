"""Versioned assets (models, data, environments, code) in workspaces and the registry.

Rules, each from its source:
- A version PUT creates its container, which reports latestVersion and nextVersion
  (REST spec stable/2024-04-01/mfe.json, AssetContainer: both read-only); the SDK
  asks the container for nextVersion when no version is given and falls back to "1"
  only when there is no container (azure/ai/ml/_utils/_asset_utils.py,
  _get_next_version_from_container).
- Versions are immutable: a PUT of an existing version may change only its
  description and tags (docs: learn.microsoft.com/azure/machine-learning/
  how-to-manage-models, "you can't change a model version's content"; the error
  code the service answers with is not documented, 409 Conflict is our reading).
  A PUT of the same content is accepted, 200 (recorded: the SDK's archive re-PUTs a
  version, tests/azure/recordings/model_version_put.json); what the service fills in
  itself (flavors of an MLflow model) is no change when the PUT leaves it out.
- A data version's dataType (uri_file, uri_folder, mltable) and dataUri are required and
  writable only at creation (REST spec DataVersionBaseProperties: [Required],
  visibility read/create; the SDK's generated arm_ml_service/models/_models.py), so a PUT
  without them is refused and a PUT of an existing data version pointing at other files is
  the immutable-content conflict above.
- Sharing imports a workspace model or data version into the registry, which keeps a copy of
  its files in its own storage (docs: learn.microsoft.com/azure/machine-learning/
  how-to-share-data-across-workspaces-with-registries, "share data from workspace to registry";
  SDK DataOperations.share and ModelOperations.share both send a WorkspaceAssetReference to
  begin_import_registry_asset); a registry version already there is never replaced, whatever
  its bytes (the SDK refuses it before importing; the double refuses the import itself).
- "latest" is the most recently created version, not the highest number
  (azure/ai/ml/operations/_model_operations.py, _get_latest_version docstring;
  _utils/_asset_utils.py _get_latest orders by createdtime desc, top 1).
"""

from __future__ import annotations

from .http import Reply, error, not_found

ASSET_KINDS = ("models", "data", "environments", "codes")
MUTABLE = {"description", "tags", "isArchived", "stage", "properties"}


def version_path(path: str) -> tuple[str, str, str] | None:
    """(container path, kind, version) when path names an asset version."""
    parts = path.split("/")
    if len(parts) >= 4 and parts[-2] == "versions" and parts[-4] in ASSET_KINDS:
        return "/".join(parts[:-2]), parts[-4], parts[-1]
    return None


def content(resource: dict) -> dict:
    """What a version PUT may not change. A null property is an absent one: the SDK's update of
    a registry version sends `system_metadata: null` (azure/ai/ml/entities/_assets/_artifacts/
    model.py _to_rest_object), which changes nothing."""
    properties = resource.get("properties") or {}
    return {
        k: v
        for k, v in properties.items()
        if k not in MUTABLE | {"provisioningState"} and v is not None
    }


# What the service fills in on a version: a PUT that leaves one out keeps the stored value,
# so an identical re-PUT of the body that created a version is accepted (recorded: the SDK's
# archive re-PUTs version 1 and gets 200, tests/azure/recordings/model_version_put.json).
SERVICE_FILLED = {"flavors", "jobName", "autoDeleteSetting", "intellectualProperty"}


def changes_content(existing: dict, body: dict) -> bool:
    stored, sent = content(existing), content(body)
    kept = {k: v for k, v in stored.items() if k in sent or k not in SERVICE_FILLED}
    return kept != sent


DATA_TYPES = ("uri_file", "uri_folder", "mltable")  # spec DataType


class Assets:
    def put_version(self, path: str, body: dict, container: str) -> Reply:
        refusal = self.model_version_refusal(path, body) if "/models/" in path else None
        if refusal:  # references.py
            return refusal
        if "/data/" in path:
            properties = body.get("properties") or {}
            if properties.get("dataType") not in DATA_TYPES or not properties.get("dataUri"):
                # spec DataVersionBaseProperties: dataType and dataUri are [Required]
                return error(400, "UserError", "a data version needs a dataType and a dataUri")
        existing = self.resources.get(path)
        if existing is not None:
            if changes_content(existing, body):  # how-to-manage-models: versions immutable
                return error(
                    409,
                    "Conflict",
                    f"{path.split('/versions/')[0].rsplit('/', 1)[-1]}:{path.rsplit('/', 1)[-1]} "
                    "already exists with other content; asset versions are immutable",
                )
            stored = self.store(
                path,
                {
                    **existing,
                    **{
                        "properties": {
                            **existing["properties"],
                            **{
                                k: v
                                for k, v in (body.get("properties") or {}).items()
                                if k in MUTABLE
                            },
                        }
                    },
                },
            )
            stored["id"] = existing["id"]  # a registry version keeps its azureml:// id (copy())
            return Reply(200, stored)
        if "/models/" in path and not (body.get("properties") or {}).get("flavors"):
            # Azure reads an MLflow model's flavours from its MLmodel file; a custom model has
            # none: `flavors: {}` (recorded, tests/azure/recordings/model_version_put.json)
            mlflow = body["properties"].get("modelType") == "mlflow_model"
            flavors = {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}}
            body = {
                **body,
                "properties": {**body["properties"], "flavors": flavors if mlflow else {}},
            }
        if "/models/" in path:  # recorded: a new model version is in stage Development
            body = {**body, "properties": {"stage": "Development", **body["properties"]}}
        stored = self.store(path, body, provisioningState="Succeeded")
        self._touch_container(container)  # spec AssetContainer: latestVersion, nextVersion
        # recorded: a version PUT is synchronous, 201 with a Location naming the version
        # (tests/azure/recordings/model_version_put.json)
        return Reply(201, stored, {"Location": f"https://management.azure.com{path}"})

    def _touch_container(self, container: str) -> None:
        versions = self.children(container + "/versions")
        numbers = [int(v["name"]) for v in versions if v["name"].isdigit()]
        newest = max(versions, key=lambda v: v["systemData"]["createdAt"])
        self.store(
            container,
            {"properties": {}},
            latestVersion=newest["name"],
            nextVersion=str(max(numbers, default=0) + 1),
        )

    def list_versions(self, path: str, query: dict) -> Reply:
        container = path.rsplit("/", 1)[0]
        workspace_model = "/workspaces/" in path and "/models/" in path
        if workspace_model and "hash" not in query and container not in self.resources:
            # recorded: listing the versions of a workspace model that has none is a 404
            # ModelNotFound, not an empty list (tests/azure/recordings/model_version_mlflow.json;
            # a registry's answer is not recorded: the SDK reads its 404 as an error there)
            name = container.rsplit("/", 1)[-1]
            return Reply(
                404,
                {
                    "error": {
                        "code": "UserError",
                        "message": "The specified resource was not found.",
                        "details": [
                            {
                                "code": "ModelNotFound",
                                "message": f"Model container with name: {name} not found.",
                            }
                        ],
                    }
                },
            )
        versions = self.children(path)
        if "hash" in query:  # code snapshots are looked up by content hash, workspace-wide: the
            # SDK asks under a name it just made up and reuses the match's own name and version
            # (azure/ai/ml/operations/_code_operations.py create_or_update)
            codes = path.rsplit("/", 2)[0]
            versions = [
                v
                for key, v in self.resources.items()
                if key.startswith(codes + "/")
                and "/versions/" in key
                and (v["properties"].get("properties") or {}).get("hash_sha256") == query["hash"]
            ]
        order = query.get("$orderBy") or query.get("orderBy") or ""
        if order.lower().startswith("createdtime"):
            versions.sort(key=lambda v: v["systemData"]["createdAt"], reverse="desc" in order)
        top = query.get("$top") or query.get("top")
        return Reply(200, {"value": versions[: int(top)] if top else versions})

    def latest(self, container: str) -> Reply:  # SDK _get_latest_version: newest created
        versions = self.children(container + "/versions")
        if not versions:
            return not_found(container)
        return Reply(200, max(versions, key=lambda v: v["systemData"]["createdAt"]))

    def import_into_registry(self, registry: str, order: dict) -> Reply:
        """Sharing: the registry copies a workspace asset, named by its azureml:// id (an LRO:
        the SDK's begin_import_registry_asset accepts 200/201/202 and polls with ARMPolling,
        azure/ai/ml/_utils/_registry_utils.py)."""
        kind, name, _, version = order["sourceAssetId"].split("/")[-4:]
        suffix = f"/{kind}/{name}/versions/{version}"
        source = next(
            (v for k, v in self.resources.items() if "/workspaces/" in k and k.endswith(suffix)),
            None,
        )
        if source is None:
            return not_found(order["sourceAssetId"])
        container = f"{registry}/{kind}/{order['destinationName']}"
        target = f"{container}/versions/{order['destinationVersion']}"
        if target in self.resources:
            return error(409, "Conflict", f"{target} already exists; asset versions are immutable")

        def copy():
            # the registry keeps its own copy of the files, in its own storage account
            files = self.registry_files(
                registry, order["destinationName"], order["destinationVersion"], kind
            )
            if kind == "data":
                properties = {**source["properties"], "dataUri": self._copy_data(source, files)}
            else:
                properties = {**source["properties"], "modelUri": self._copy_model(source, files)}
                self.copied_from_job[target] = (
                    source["properties"]["modelUri"].split("azureml://jobs/")[1].split("/")[0]
                )
            copied = self.store(target, {**source, "properties": properties})
            copied["id"] = (
                f"azureml://registries/{registry.rsplit('/', 1)[-1]}/{target[len(registry) + 1 :]}"
            )
            self._touch_container(container)

        op = self.begin(copy)
        return Reply(202, b"", self.lro_headers(op, location=True))

    def temporary_data_reference(self, path: str) -> Reply:
        """Where to upload a new registry version's files. For a version that exists the service
        answers 409 and the SDK skips the upload, then PUTs the version (its tags) as given
        (azure/ai/ml/_utils/_registry_utils.py, get_sas_uri_for_registry_asset)."""
        registry, rest = path.split("/tempdatarefs/")
        name, _, version = rest.split("/")
        if f"{registry}/models/{name}/versions/{version}" in self.resources:
            return error(409, "Conflict", f"{name}:{version} already exists in the registry")
        return self.blob_reference(f"{registry}/datarefs/{name}/versions/{version}")

    def _copy_model(self, source: dict, files: str) -> str:
        job = source["properties"]["modelUri"].split("azureml://jobs/")[1].split("/")[0]
        model_dir = self.job_runs[job].model_dir
        for file in model_dir.rglob("*"):
            if file.is_file():
                key = f"{files.split('/', 3)[3]}/{file.relative_to(model_dir).as_posix()}"
                self.blobs[key] = file.read_bytes()
        return files

    def _copy_data(self, source: dict, files: str) -> str:
        """A data version's blobs (azureml://.../datastores/<store>/paths/<path>) copied under
        the registry's folder; a uri_file's new URI names the copied file."""
        path = source["properties"]["dataUri"].split("/paths/", 1)[1].rstrip("/")
        prefix = f"azureml-blobstore/{path}"  # the workspace's default datastore container
        found = {k: v for k, v in self.blobs.items() if k == prefix or k.startswith(prefix + "/")}
        base = prefix.rsplit("/", 1)[0] if prefix in found else prefix
        for key, data in found.items():
            self.blobs[f"{files.split('/', 3)[3]}/{key[len(base) + 1 :]}"] = data
        single = source["properties"].get("dataType") == "uri_file" and prefix in found
        return f"{files}/{path.rsplit('/', 1)[-1]}" if single else files

    def registry_files(self, registry: str, name: str, version: str, kind: str = "models") -> str:
        """Where a registry keeps an asset's files: a container of its own storage account."""
        account = "st" + "".join(c for c in registry.rsplit("/", 1)[-1] if c.isalnum())
        where = f"data/{name}/{version}" if kind == "data" else f"{name}/{version}/model"
        return f"https://{account}.blob.core.windows.net/registry-assets/{where}"

    def read_reference(self, path: str, call) -> Reply:
        """A SAS for reading an existing registry asset's files (REST spec stable/2024-04-01
        mfe.json, Registries DataReferences getBlobReferenceSAS; the SDK's get_storage_details_
        for_registry_assets, azure/ai/ml/_utils/_registry_utils.py, names the asset by its id)."""
        registry, rest = path.split("/datarefs/")
        name, _, version = rest.split("/")
        asset_id = (call.json() or {}).get("assetId", "")  # azureml://registries/R/KIND/N/...
        kind = asset_id.split("/")[4] if asset_id.count("/") >= 5 else "models"
        if f"{registry}/{kind}/{name}/versions/{version}" not in self.resources:
            return not_found(asset_id or path)
        return self.blob_reference(path, kind)

    def blob_reference(self, path: str, kind: str = "models") -> Reply:
        """A SAS for a registry asset's files: to read them, or to upload a new version's."""
        registry, rest = path.split("/datarefs/")
        name, _, version = rest.split("/")
        files = self.registry_files(registry, name, version, kind)
        container = "/".join(files.split("/")[:4])  # https://account.blob.../container
        return Reply(
            200,
            {
                "blobReferenceForConsumption": {
                    "blobUri": files,
                    "credential": {
                        "credentialType": "SAS",
                        "sasUri": self.user_delegation_sas(container),
                    },
                }
            },
        )

"""An HTTP transport that answers the real azure-ai-ml SDK the way Azure does, in shape.

It keeps ARM resources in a dict keyed by their path, so a GET returns what a
PUT stored and a collection lists its children; it also answers the registry
discovery service, blob storage (uploads) and endpoint scoring URIs. Every
request is recorded for the tests to assert on. Nothing leaves the process.
"""

from __future__ import annotations

import io
import json
import re
import urllib.parse
from dataclasses import dataclass, field

import requests
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from azure.core.rest import HttpRequest as RestRequest
from azure.core.rest._requests_basic import RestRequestsTransportResponse

SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"
REGION = "westeurope"
_AZURE_HOSTS = re.compile(
    r"(management\.azure\.com|\.api\.azureml\.ms|blob\.core\.windows\.net|inference\.ml\.azure\.com)$"
)
_LEAVES = re.compile(r"/(listSecrets|listKeys|getLogs|token|import|startPendingUpload)$", re.I)


class FakeCredential:
    """Stands in for an Entra identity: always has a token."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken("fake-token", 4102444800)

    def get_token_info(self, *scopes, **kwargs):
        return AccessTokenInfo("fake-token", 4102444800)


@dataclass
class Call:
    method: str
    url: str
    path: str
    query: dict
    headers: dict
    body: object

    def json(self) -> dict:
        return self.body if isinstance(self.body, dict) else {}


@dataclass
class FakeAzure(HttpTransport):
    registry_group: str = "rg-mlops-shared"
    resources: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    job_tags: dict = field(default_factory=dict)  # what train.py would have tagged its run with
    broken_deployments: set = field(default_factory=set)  # deployments whose scoring is wrong
    blobs: dict = field(default_factory=dict)  # "container/blob name" -> bytes
    logs: str = "2026-11-21 12:00:00 E scoring failed: model output has the wrong shape"

    # -- transport plumbing ------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def open(self):
        pass

    def close(self):
        pass

    def send(self, request, **kwargs):
        url = urllib.parse.urlsplit(request.url)
        query = dict(urllib.parse.parse_qsl(url.query))
        raw = request.content if isinstance(request, RestRequest) else request.body
        body = _decode(raw)
        headers = {k.lower(): v for k, v in request.headers.items()}
        call = Call(request.method, request.url, url.path, query, headers, body)
        self.calls.append(call)
        status, payload = self._answer(url.netloc, call)
        response = _response(request, status, payload)
        if isinstance(request, RestRequest) and not kwargs.get("stream", False):
            response.read()  # as RequestsTransport does for a non-streamed response
        return response

    # -- what the tests read -------------------------------------------------------------------
    def made(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.search(pattern, c.path)]

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> list[Call]:
        return self.calls[mark:]

    # -- Azure, in shape -------------------------------------------------------------------------
    def _answer(self, host: str, call: Call):
        if not _AZURE_HOSTS.search(
            host
        ):  # e.g. the managed identity endpoint: nothing listens here
            raise ServiceRequestError(f"connection refused by {host} (fake network)")
        if host.endswith("blob.core.windows.net"):
            return self._blob(call)
        if call.path.endswith("/discovery") and "registrymanagement" in call.path:
            name = call.path.split("/registries/")[1].split("/")[0]
            return 200, {
                "registryName": name,
                "primaryRegion": REGION,
                "primaryRegionResourceProviderUri": f"https://{REGION}.api.azureml.ms/",
                "subscriptionId": SUBSCRIPTION,
                "resourceGroup": self.registry_group,
                "regions": [REGION],
            }
        if host.endswith("inference.ml.azure.com"):
            return self._score(host.split(".")[0], call)
        path = _canonical(call.path)
        if call.method == "POST" and _LEAVES.search(path):
            return self._action(path, call)
        if call.method == "GET":
            return self._get(path, call)
        if call.method == "PUT":
            return self._put(path, call)
        if call.method == "DELETE":
            removed = [key for key in self.resources if key == path or key.startswith(path + "/")]
            for key in removed:
                del self.resources[key]
            return (200, {}) if removed else (404, _not_found(path))
        return 404, _not_found(path)

    def _get(self, path: str, call: Call):
        if path in self.resources:
            return 200, self.resources[path]
        if path.endswith("/workspaces/" + path.rsplit("/", 1)[-1]):
            return 200, self._workspace(path)
        if "/datastores" in path:
            return 200, self._datastore(path, listing=path.endswith("/datastores"))
        children = [v for k, v in self.resources.items() if k.rsplit("/", 1)[0] == path]
        collections = ("versions", "onlineEndpoints", "deployments", "models", "jobs", "codes")
        if path.rsplit("/", 1)[-1] in collections:
            if "hash" in call.query:  # code snapshots are looked up by content hash
                children = [
                    c for c in children if c["properties"].get("hash") == call.query["hash"]
                ]
            if (
                path.endswith("/versions")
                and call.query.get("$orderBy")
                or call.query.get("orderBy")
            ):
                children = sorted(children, key=lambda c: int(c["name"]), reverse=True)
            return 200, {"value": children}
        if path.endswith("/versions/latest") or call.query.get("label") == "latest":
            versions = [
                v
                for k, v in self.resources.items()
                if k.rsplit("/", 1)[0] == path.rsplit("/", 1)[0]
            ]
            if versions:
                return 200, max(versions, key=lambda v: int(v["name"]))
        return 404, _not_found(path)

    def _put(self, path: str, call: Call):
        body = call.json()
        existed = path in self.resources
        parts = path.strip("/").split("/")
        resource = {
            **body,
            "id": path,
            "name": parts[-1],
            "type": "/".join(parts[5:-1:2]) if len(parts) > 6 else parts[-2],
            "systemData": {
                "createdBy": "fake@example.com",
                "createdByType": "User",
                "createdAt": "2026-11-21T12:00:00Z",
                "lastModifiedBy": "fake@example.com",
                "lastModifiedByType": "User",
                "lastModifiedAt": "2026-11-21T12:00:00Z",
            },
        }
        properties = dict(body.get("properties") or {})
        properties["provisioningState"] = "Succeeded"
        if "/jobs/" in path:
            properties["status"] = "Completed"
            properties["tags"] = {**(properties.get("tags") or {}), **self.job_tags}
            properties.setdefault(
                "services", {"Studio": {"endpoint": f"https://ml.azure.com/runs/{parts[-1]}"}}
            )
        if path.split("/")[-2] == "deployments":  # what Azure fills in for a managed deployment
            properties.setdefault("scaleSettings", {"scaleType": "Default"})
            properties.setdefault("endpointComputeType", "Managed")
            resource.setdefault("sku", {"name": "Default", "capacity": 1})
        if "/models/" in path and not properties.get("flavors"):
            # Azure reads an MLflow model's flavours from its MLmodel file
            properties["flavors"] = {
                "python_function": {"data": {"loader_module": "mlflow.sklearn"}}
            }
        if path.split("/")[-2] == "onlineEndpoints":
            properties["scoringUri"] = f"https://{parts[-1]}.{REGION}.inference.ml.azure.com/score"
            properties.setdefault("traffic", {})
            properties.setdefault("properties", {})
        resource["properties"] = properties
        self.resources[path] = resource
        return (200 if existed else 201), resource

    def _action(self, path: str, call: Call):
        if path.endswith("/listSecrets"):
            return 200, {"secretsType": "AccountKey", "key": "ZmFrZS1rZXk="}
        if path.endswith("/listKeys"):
            return 200, {"primaryKey": "primary", "secondaryKey": "secondary"}
        if path.endswith("/token"):
            return 200, {"accessToken": "endpoint-token", "expiryTimeUtc": 4102444800}
        if path.endswith("/getLogs"):
            return 200, {"content": self.logs}
        if path.endswith("/import"):  # sharing: the registry copies a workspace asset
            return self._import(path.rsplit("/", 1)[0], call.json()["properties"])
        if path.endswith("/startPendingUpload"):
            blob = (
                f"https://stfake.blob.core.windows.net/azureml-blobstore/uploads/{len(self.calls)}"
            )
            return 200, {
                "pendingUploadId": str(len(self.calls)),
                "pendingUploadType": "TemporaryBlobReference",
                "blobReferenceForConsumption": {
                    "blobUri": blob,
                    "storageAccountArmId": "/subscriptions/x/resourceGroups/x/providers/Microsoft.Storage/storageAccounts/stfake",
                    "credential": {"credentialType": "SAS", "sasUri": f"{blob}?sig=fake"},
                },
            }
        return 404, _not_found(path)

    def _import(self, registry: str, order: dict):
        """Sharing: the registry copies a workspace asset, named by its azureml:// id."""
        kind, name, _, version = order["sourceAssetId"].split("/")[-4:]
        suffix = f"/{kind}/{name}/versions/{version}"
        source = next(
            (v for k, v in self.resources.items() if "/workspaces/" in k and k.endswith(suffix)),
            None,
        )
        if source is None:
            return 404, _not_found(order["sourceAssetId"])
        asset = f"{kind}/{order['destinationName']}/versions/{order['destinationVersion']}"
        self.resources[f"{registry}/{asset}"] = {
            **source,
            "id": f"azureml://registries/{registry.rsplit('/', 1)[-1]}/{asset}",
            "name": order["destinationVersion"],
        }
        return 200, b""  # the import ends with no body; the SDK then reads the copy

    def _score(self, endpoint: str, call: Call):
        state = next(
            (v for k, v in self.resources.items() if k.endswith(f"/onlineEndpoints/{endpoint}")),
            None,
        )
        if state is None:
            return 404, {"error": "no such endpoint"}
        deployment = call.headers.get("azureml-model-deployment")
        if not deployment:
            traffic = state["properties"].get("traffic") or {}
            live = [name for name, share in traffic.items() if share > 0]
            if not live:
                return 503, {"error": "no deployment takes traffic"}
            deployment = max(live, key=traffic.get)
        rows = call.body.get("data") if isinstance(call.body, dict) else None
        if not rows:
            return 400, {"error": '"data" is empty: send at least one row'}
        if deployment in self.broken_deployments:
            return 200, {"predictions": [], "probabilities": []}
        return 200, {"predictions": [1] * len(rows), "probabilities": [0.9] * len(rows)}

    def _blob(self, call: Call):
        if call.method == "PUT":
            return (200 if call.query.get("comp") == "metadata" else 201), b""
        if call.query.get("comp") == "list":
            container = call.path.strip("/")
            prefix = f"{container}/{call.query.get('prefix', '')}"
            items = "".join(
                f"<Blob><Name>{key[len(container) + 1 :]}</Name><Properties>"
                f"<Content-Length>{len(data)}</Content-Length><BlobType>BlockBlob</BlobType>"
                "</Properties></Blob>"
                for key, data in sorted(self.blobs.items())
                if key.startswith(prefix)
            )
            xml = (
                '<?xml version="1.0" encoding="utf-8"?><EnumerationResults '
                f'ServiceEndpoint="https://stfake.blob.core.windows.net/" ContainerName="c">'
                f"<Prefix>{prefix}</Prefix><Blobs>{items}</Blobs><NextMarker /></EnumerationResults>"
            )
            return 200, ("xml", xml.encode())
        key = urllib.parse.unquote(call.path.lstrip("/"))
        if call.method == "GET" and key in self.blobs:
            data = self.blobs[key]
            asked = call.headers.get("x-ms-range") or call.headers.get("range")
            if not asked:
                return 200, ("blob", data)
            first, last = (int(x) for x in asked.removeprefix("bytes=").split("-"))
            last = min(last, len(data) - 1)  # storage answers ranged reads with 206
            return 206, (
                "blob",
                data[first : last + 1],
                {"content-range": f"bytes {first}-{last}/{len(data)}"},
            )
        return 404, b""

    def _workspace(self, path: str) -> dict:
        return {
            "id": path,
            "name": path.rsplit("/", 1)[-1],
            "location": REGION,
            "properties": {
                "discoveryUrl": f"https://{REGION}.api.azureml.ms/discovery",
                "mlFlowTrackingUri": f"azureml://{REGION}.api.azureml.ms/mlflow/v1.0{path}",
                "workspaceId": "00000000-0000-0000-0000-0000000000ff",
            },
        }

    def _datastore(self, path: str, listing: bool) -> dict:
        base = path if listing else path.rsplit("/", 1)[0]
        store = {
            "id": f"{base}/workspaceblobstore",
            "name": "workspaceblobstore",
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": "stfake",
                "containerName": "azureml-blobstore",
                "endpoint": "core.windows.net",
                "protocol": "https",
                "credentials": {"credentialsType": "AccountKey"},
                "isDefault": True,
            },
        }
        return {"value": [store]} if listing else store


def _canonical(path: str) -> str:
    """ARM paths, whichever host serves them (management.azure.com or a regional front end)."""
    start = path.find("/subscriptions/")
    return path[start:].rstrip("/") if start >= 0 else path


def _decode(raw) -> object:
    if raw is None:
        return None
    if isinstance(raw, bytes | bytearray):
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return bytes(raw)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if hasattr(raw, "read"):
        return _decode(raw.read())
    return raw


def _not_found(path: str) -> dict:
    return {"error": {"code": "ResourceNotFound", "message": f"{path} was not found"}}


def _response(request, status: int, payload):
    kind = "application/json"
    extra = {}
    if isinstance(payload, tuple):  # ("xml" | "blob", bytes[, headers])
        kind = {"xml": "application/xml", "blob": "application/octet-stream"}[payload[0]]
        extra = payload[2] if len(payload) > 2 else {}
        payload = payload[1]
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    raw = requests.Response()
    raw.status_code = status
    raw._content = content
    raw._content_consumed = True
    raw.raw = io.BytesIO(content)
    raw.headers["content-type"] = kind
    raw.headers["content-length"] = str(len(content))
    raw.headers.update(extra)
    raw.request = requests.Request(request.method, request.url).prepare()
    raw.url = request.url
    if isinstance(request, RestRequest):
        return RestRequestsTransportResponse(request=request, internal_response=raw)
    return RequestsTransportResponse(request, raw)

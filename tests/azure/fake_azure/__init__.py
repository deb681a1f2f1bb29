"""An HTTP transport that answers the real azure-ai-ml SDK as Azure does, rules included.

It keeps ARM resources by path (arm.py) with long-running operations, versioned assets
(assets.py), endpoints, deployments and scoring (endpoints.py), their Azure Monitor
autoscale settings (autoscale.py), jobs (jobs.py), batch jobs run as Azure runs them (batch.py),
the references resolved at submission (references.py), each deployment's scoring container and
data collector (collector.py) and blob storage without keys (storage.py); every request is
checked against the caller's roles (identity.py) and recorded for the tests to assert on. Each
rule names its source in its module.
Nothing leaves the process.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path

from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest as RestRequest

from .arm import REGION, SUBSCRIPTION, ArmStore, arm_action
from .assets import ASSET_KINDS, Assets, version_path
from .autoscale import Autoscale, is_autoscale
from .batch import Batch
from .collector import Collected
from .endpoints import KEYS, Endpoints
from .http import Call, Reply, error, not_found, response
from .identity import (
    AUTOSCALE_SETTINGS,
    CI_PERSONA,
    MONITOR_PERSONA,
    FakeCredential,
    Identity,
    access,
    allowed,
    arm_denied,
    granted_roles,
)
from .jobs import Jobs, StagedFile, StepRun, TrainedRun
from .references import References
from .storage import Storage, account_of, collector_blob

__all__ = [
    "CI_PERSONA",
    "MONITOR_PERSONA",
    "REGION",
    "SUBSCRIPTION",
    "Call",
    "FakeAzure",
    "FakeCredential",
    "Identity",
    "StagedFile",
    "StepRun",
    "TrainedRun",
    "account_of",
    "collector_blob",
    "granted_roles",
]

_AZURE_HOSTS = re.compile(
    r"(management\.azure\.com|\.api\.azureml\.ms|blob\.core\.windows\.net|inference\.ml\.azure\.com)$"
)
_ACTIONS = re.compile(r"/(listSecrets|listKeys|getLogs|token|import|startPendingUpload)$", re.I)


class FakeAzure(
    Assets,
    Endpoints,
    Autoscale,
    Batch,
    Jobs,
    Collected,
    References,
    Storage,
    ArmStore,
    HttpTransport,
):
    def __init__(self, runner=None, registry_group: str = "rg-mlops-shared"):
        ArmStore.__init__(self)
        self.registry_group = registry_group
        self.runner = runner  # (key, component, inputs) -> StepRun: a real run of a step
        self.runs: dict[str, dict] = {}  # run history: pipeline steps' child runs by id
        self.step_runs: dict[str, StepRun] = {}  # child run id -> the real run that made it
        self.pipeline_outputs: dict[tuple[str, str], Path] = {}  # (job, output) -> folder
        self.calls: list[Call] = []
        self.blobs: dict[str, bytes] = {}  # "container/blob name" -> bytes
        self.issued_sas: dict[str, str] = {}  # SAS signature -> "account/container" it opens
        self.workspace_env: dict[str, str] = {}  # workspace name -> environment
        self.group_env: dict[str, str] = {}  # resource group name (lower case) -> environment
        self.storage_env: dict[str, str] = {}  # storage account -> environment
        self.grants: dict[Identity, list[tuple[str, str]]] = {}  # granted beyond the matrix
        self.job_runs: dict[str, TrainedRun] = {}  # pipeline job -> its lineage and model
        self.copied_from_job: dict[str, str] = {}  # registry model version -> its job
        self.next_job_ends: list[str] = []  # injected terminal states, e.g. ["Failed"]
        self.failing_deployments: dict[str, str] = {}  # deployment -> provisioning error
        self.broken_deployments: set[str] = set()  # deployments whose scoring is wrong
        self.mirrored: list = []  # (deployment, body) copies of mirrored requests
        self.containers = {}  # deployment id -> its scoring container (collector.Container)
        self.collector_pending: dict = {}  # (endpoint, deployment, collection) -> payloads
        self.batch_jobs: list = []  # (job, deployment, inputData) of each batch invocation
        self._requests = 0
        self.logs = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} E scoring failed: model output has the wrong shape"

    def add_workspace(self, name: str, env: str, resource_group: str | None = None) -> None:
        self.workspace_env[name] = env
        self.storage_env[account_of(name)] = env
        if resource_group:
            self.group_env[resource_group.lower()] = env

    def extra_grants(self, identity: Identity) -> list[tuple[str, str]]:
        return self.grants.get(identity, [])

    # ---- transport plumbing -------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def open(self):
        pass

    def close(self):
        pass

    def sleep(self, duration):  # pollers wait through the transport: record, never wait
        self.slept.append(duration)

    def send(self, request, **kwargs):
        call = Call.of(request)
        self.calls.append(call)
        reply = self._answer(call.url.split("/")[2], call)
        call.reply = copy.deepcopy(reply)  # as sent: later writes to the resource don't show
        answer = response(request, reply)
        if isinstance(request, RestRequest) and not kwargs.get("stream", False):
            answer.read()  # as RequestsTransport does for a non-streamed response
        return answer

    # ---- what the tests read ------------------------------------------------------------

    def made(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.search(pattern, c.path)]

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> list[Call]:
        return self.calls[mark:]

    def resource(self, suffix: str) -> dict:
        (found,) = [v for k, v in self.resources.items() if k.endswith(suffix)]
        return found

    # ---- Azure ----------------------------------------------------------------------------

    def _answer(self, host: str, call: Call) -> Reply:
        if not _AZURE_HOSTS.search(host):  # e.g. the managed identity endpoint
            raise ServiceRequestError(f"connection refused by {host} (fake network)")
        if host.endswith("blob.core.windows.net"):
            return self.blob(host, call)
        if host.endswith("inference.ml.azure.com"):
            if call.path == "/jobs":  # a batch endpoint's scoring URI starts jobs
                return self.invoke_batch(host, call)
            return self.score(host, call)
        if call.path.endswith("/discovery") and "registrymanagement" in call.path:
            return self._discovery(call.path)
        if call.path == "/discovery":  # a workspace's discoveryUrl: its services' base URLs
            # (keys: the SDK's WorkspaceDiscoveryUrlKey, azure/ai/ml/constants/_common.py)
            base = f"https://{REGION}.api.azureml.ms"
            return Reply(
                200, {key: base for key in ("api", "catalog", "experimentation", "history")}
            )
        path = _canonical(call.path)
        if call.method == "GET":
            polled = self.poll(path)
            if polled:
                return polled
        refusal = self._authorize(call, path)
        if refusal:
            return refusal
        if call.method == "PUT" and "/tempdatarefs/" in path:
            return self.temporary_data_reference(path)
        if call.method == "POST" and "/datarefs/" in path:
            return self.read_reference(path, call)
        if call.method == "POST" and _ACTIONS.search(path):
            return self._action(path, call)
        return {"GET": self._get, "PUT": self._put, "DELETE": self._delete}.get(
            call.method, lambda path, call: not_found(path)
        )(path, call)

    def _authorize(self, call: Call, path: str) -> Reply | None:
        """Control plane: the caller's roles on the workspace or registry the path names."""
        identity = Identity.from_header(call.headers.get("authorization"))
        if "/workspaces/" in path:
            workspace = path.split("/workspaces/")[1].split("/")[0]
            scope, env = access.WORKSPACE, self.workspace_env.get(workspace, "?")
        elif "/registries/" in path:
            scope, env = access.MODEL_REGISTRY, None
        elif is_autoscale(path):
            # an autoscale setting is a resource of its resource group: writing it needs
            # microsoft.insights/autoscalesettings/write there (learn.microsoft.com/azure/
            # machine-learning/how-to-autoscale-endpoints, "Prerequisites")
            group = path.lower().split("/resourcegroups/")[1].split("/")[0]
            scope, env = AUTOSCALE_SETTINGS, self.group_env.get(group, "?")
        else:
            return None
        # reading a registry asset's files asks for a SAS by POST: a read, as Reader (or
        # registries/read + registries/assets/read) lets one "use the assets" (docs: learn.
        # microsoft.com/azure/machine-learning/how-to-manage-registries; the POST's own action
        # name is not documented)
        reading = call.method == "GET" or "/datarefs/" in path
        action = "read" if reading else "write"
        if identity and allowed(identity, action, scope, env, self.extra_grants(identity)):
            return None
        return Reply(*arm_denied(identity, arm_action(call.method, path), path))

    def _discovery(self, path: str) -> Reply:
        name = path.split("/registries/")[1].split("/")[0]
        return Reply(
            200,
            {
                "registryName": name,
                "primaryRegion": REGION,
                "primaryRegionResourceProviderUri": f"https://{REGION}.api.azureml.ms/",
                "subscriptionId": SUBSCRIPTION,
                "resourceGroup": self.registry_group,
                "regions": [REGION],
            },
        )

    def _get(self, path: str, call: Call) -> Reply:
        if call.path.startswith("/history/") and "/runs/" in path:
            return self.run_history(path)
        if "/jobs/" in path and path in self.resources:
            return self.get_job(path)
        if path in self.resources:
            return Reply(200, self.resources[path])
        if "/datastores" in path:
            return self.datastore(path, listing=path.endswith("/datastores"))
        if re.search(r"/workspaces/[^/]+$", path):
            return Reply(200, self._workspace(path))
        if path.endswith("/versions"):
            return self.list_versions(path, call.query)
        if path.endswith("/versions/latest"):
            return self.latest(path.rsplit("/", 2)[0])
        if path.rsplit("/", 1)[-1] in ("onlineEndpoints", "deployments", "jobs", *ASSET_KINDS):
            return Reply(200, {"value": self.children(path)})
        return not_found(path)

    def _put(self, path: str, call: Call) -> Reply:
        body, kind = call.json(), path.split("/")[-2]
        versioned = version_path(path)
        if versioned:
            return self.put_version(path, body, versioned[0])
        if is_autoscale(path):
            return self.put_autoscale(path, body, call.query)
        if kind == "onlineEndpoints":
            return self.put_endpoint(path, body)
        if kind == "batchEndpoints":
            return self.put_batch_endpoint(path, body)
        if kind == "deployments" and "/batchEndpoints/" in path:
            return self.put_batch_deployment(path, body)
        if kind == "deployments":
            return self.put_deployment(path, body)
        if kind == "jobs":
            return self.put_job(path, body)
        existed = path in self.resources
        return Reply(200 if existed else 201, self.store(path, body, provisioningState="Succeeded"))

    def _delete(self, path: str, call: Call) -> Reply:
        kind = path.split("/")[-2]
        if kind == "deployments":
            return self.delete_deployment(path)
        if kind == "onlineEndpoints":
            return self.delete_endpoint(path)
        if path not in self.resources:
            return Reply(204)
        del self.resources[path]
        return Reply(200)

    def _action(self, path: str, call: Call) -> Reply:
        if path.endswith("/listSecrets"):
            # an identity-based datastore holds no secret to list (storage.py's note); the
            # service's exact answer is not documented (unverified): the SDK, on any error,
            # falls back to the caller's token (_artifact_utilities.get_datastore_info)
            return error(400, "UserError", "the datastore is identity-based: it has no secrets")
        if path.endswith("/listKeys"):
            return Reply(200, KEYS)
        if path.endswith("/token"):
            return Reply(200, {"accessToken": "endpoint-token", "expiryTimeUtc": 4102444800})
        if path.endswith("/getLogs"):
            return Reply(200, {"content": self.logs})
        if path.endswith("/import"):
            return self.import_into_registry(path.rsplit("/", 1)[0], call.json()["properties"])
        if path.endswith("/startPendingUpload"):
            workspace = path.split("/workspaces/")[1].split("/")[0]
            account = account_of(workspace)
            blob = f"https://{account}.blob.core.windows.net/azureml-blobstore/uploads/{len(self.calls)}"
            return Reply(
                200,
                {
                    "pendingUploadId": str(len(self.calls)),
                    "pendingUploadType": "TemporaryBlobReference",
                    "blobReferenceForConsumption": {
                        "blobUri": blob,
                        "storageAccountArmId": f"/subscriptions/x/resourceGroups/x/providers/Microsoft.Storage/storageAccounts/{account}",
                        "credential": {
                            "credentialType": "SAS",
                            "sasUri": self.user_delegation_sas(blob),
                        },
                    },
                },
            )
        return not_found(path)

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


def _canonical(path: str) -> str:
    """ARM paths, whichever host serves them (management.azure.com or a regional front end)."""
    start = path.find("/subscriptions/")
    return path[start:].rstrip("/") if start >= 0 else path

"""Run the program for a stack under Pulumi's mocks: no cloud, no CLI, no network.

The mocks answer like Azure would in shape: resource ids built from the names,
principal and client ids for identities, the shared stack's outputs for a
stack reference. Used by `make infra-plan` and the tests.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pulumi
import yaml

INFRA = Path(__file__).resolve().parents[1]
SUBSCRIPTION_KEY = "mlops:subscriptionId"

_ARM_TYPES = {
    f"azure-native:{module}:{kind}": arm
    for module, kind, arm in (
        ("operationalinsights", "Workspace", "Microsoft.OperationalInsights/workspaces"),
        ("applicationinsights", "Component", "Microsoft.Insights/components"),
        ("keyvault", "Vault", "Microsoft.KeyVault/vaults"),
        ("storage", "StorageAccount", "Microsoft.Storage/storageAccounts"),
        ("containerregistry", "Registry", "Microsoft.ContainerRegistry/registries"),
        ("machinelearningservices", "Workspace", "Microsoft.MachineLearningServices/workspaces"),
        ("machinelearningservices", "Registry", "Microsoft.MachineLearningServices/registries"),
        (
            "managedidentity",
            "UserAssignedIdentity",
            "Microsoft.ManagedIdentity/userAssignedIdentities",
        ),
        ("monitor", "ActionGroup", "Microsoft.Insights/actionGroups"),
        ("monitor", "MetricAlert", "Microsoft.Insights/metricAlerts"),
        ("monitor", "ActivityLogAlert", "Microsoft.Insights/activityLogAlerts"),
        ("eventgrid", "SystemTopic", "Microsoft.EventGrid/systemTopics"),
    )
}
# Azure ML lookups the program makes, answered from the mocks' `deployed` names
_LOOKUPS = {
    "azure-native:machinelearningservices:getOnlineEndpoint": ("endpointName",),
    "azure-native:machinelearningservices:getOnlineDeployment": ("endpointName", "deploymentName"),
}
_NAME_KEYS = (
    "resourceGroupName",
    "containerName",
    "keyName",
    "blobServicesName",
    "accountName",
    "vaultName",
    "registryName",
    "computeName",
    "workspaceName",
    "federatedIdentityCredentialResourceName",
    "roleAssignmentName",
    "resourceName",
    "environment",
    "variableName",
    "actionGroupName",
    "ruleName",
    "activityLogAlertName",
    "eventSubscriptionName",
    "systemTopicName",
)


@dataclass(frozen=True)
class Record:
    type: str
    logical_name: str
    inputs: dict
    id: str

    @property
    def azure_name(self) -> str:
        for key in (
            _NAME_KEYS[1:]
            if self.type != "azure-native:resources:ResourceGroup"
            else _NAME_KEYS[:1]
        ):
            if key in self.inputs:
                return str(self.inputs[key])
        return self.logical_name


def identity_ids(resource_id: str) -> dict[str, str]:
    """The principal and client ids the mocks give the identity with this resource id."""
    return {
        "id": resource_id,
        "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{resource_id}")),
        "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"client/{resource_id}")),
    }


@dataclass(frozen=True)
class Registration:
    """One resource as the engine received it: its URN and the URNs it waits for (its inputs'
    resources and depends_on). The engine runs a resource only after those are done, and runs
    resources with no dependency between them in parallel
    (pulumi.com/docs/iac/concepts/options/dependson)."""

    urn: str
    type: str
    logical_name: str
    dependencies: frozenset[str]


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """The mocks' monitor, also keeping every registration in the order it arrived."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()  # the SDK calls the monitor from a thread pool

    def RegisterResource(self, request):  # noqa: N802 (the gRPC method's name)
        response = super().RegisterResource(request)
        with self._lock:
            self.registrations.append(
                Registration(
                    response.urn, request.type, request.name, frozenset(request.dependencies)
                )
            )
        return response


class AzureShapedMocks(pulumi.runtime.Mocks):
    def __init__(self, subscription: str, shared_outputs: dict, deployed: frozenset = frozenset()):
        self.subscription = subscription
        self.shared_outputs = shared_outputs
        self.deployed = deployed  # "ENDPOINT" and "ENDPOINT/DEPLOYMENT" names that exist
        self.records: list[Record] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            return [args.name, {"name": args.name, "outputs": self.shared_outputs}]
        record = Record(args.typ, args.name, inputs, "")
        resource_id = self._id(args.typ, record.azure_name, inputs)
        self.records.append(Record(args.typ, args.name, inputs, resource_id))
        outputs = {**inputs, "name": record.azure_name, "id": resource_id}
        identity = inputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # asked for as a list of ids, answered by Azure as a map keyed by id
            outputs["identity"] = {
                **identity,
                "userAssignedIdentities": {i: {} for i in identity["userAssignedIdentities"]},
            }
        if args.typ.endswith(":UserAssignedIdentity"):
            outputs.update(identity_ids(resource_id))
        return [resource_id, outputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token in _LOOKUPS:
            name = "/".join(str(args.args[key]) for key in _LOOKUPS[args.token])
            if name not in self.deployed:
                # ARM's code for a missing resource, as the provider relays it
                # (Code="ResourceNotFound": pulumi/pulumi-azure-native#2128)
                return {}, [("name", f'Code="ResourceNotFound" {name} was not found (404)')]
            return {"name": name.rsplit("/", 1)[-1]}
        return {}

    def _id(self, typ: str, name: str, inputs: dict) -> str:
        group = f"/subscriptions/{self.subscription}/resourceGroups"
        if typ == "azure-native:resources:ResourceGroup":
            return f"{group}/{name}"
        if typ == "azure-native:authorization:RoleAssignment":
            return f"{inputs['scope']}/providers/Microsoft.Authorization/roleAssignments/{name}"
        in_group = f"{group}/{inputs.get('resourceGroupName')}/providers"
        nested = _nested_id(typ, in_group, name, inputs)
        if nested:
            return nested
        if typ == "azure-native:machinelearningservices:Compute":
            workspace = _ARM_TYPES["azure-native:machinelearningservices:Workspace"]
            return f"{in_group}/{workspace}/{inputs.get('workspaceName')}/computes/{name}"
        if typ in _ARM_TYPES:
            return f"{in_group}/{_ARM_TYPES[typ]}/{name}"
        return f"mock:{typ}/{name}"


def _nested_id(typ: str, in_group: str, name: str, inputs: dict) -> str:
    """Ids of child resources, in the paths of their REST specs (PUT .../{parent}/{kind}/{name})."""
    if typ == "azure-native:authorization:RoleDefinition":
        # Microsoft.Authorization/roleDefinitions: {scope}/providers/.../roleDefinitions/{id}
        return f"{inputs['scope']}/providers/Microsoft.Authorization/roleDefinitions/{name}"
    account = f"{in_group}/Microsoft.Storage/storageAccounts/{inputs.get('accountName')}"
    parents = {
        # storage blob.json: BlobServices_SetServiceProperties, BlobContainers_Create
        "azure-native:storage:BlobServiceProperties": f"{account}/blobServices",
        "azure-native:storage:BlobContainer": f"{account}/blobServices/default/containers",
        # keyvault keys.json: Keys_CreateIfNotExist
        "azure-native:keyvault:Key": (
            f"{in_group}/Microsoft.KeyVault/vaults/{inputs.get('vaultName')}/keys"
        ),
        # ManagedIdentity: FederatedIdentityCredentials_CreateOrUpdate
        "azure-native:managedidentity:FederatedIdentityCredential": (
            f"{in_group}/Microsoft.ManagedIdentity/userAssignedIdentities/"
            f"{inputs.get('resourceName')}/federatedIdentityCredentials"
        ),
    }
    return f"{parents[typ]}/{name}" if typ in parents else ""


def stack_config(stack: str, infra: Path = INFRA) -> dict[str, str]:
    """Project config from Pulumi.yaml overlaid with Pulumi.<stack>.yaml, as Pulumi reads them."""
    project = yaml.safe_load((infra / "Pulumi.yaml").read_text())
    values = {key: spec["value"] for key, spec in (project.get("config") or {}).items()}
    stack_file = infra / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise FileNotFoundError(f"{stack_file.name}: no such stack file")
    values.update((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {})
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()
    }


def run_stack(
    stack: str,
    infra: Path = INFRA,
    overrides: dict | None = None,
    deployed: frozenset[str] = frozenset(),
) -> list[Record]:
    """Build the stack under mocks; return what it would create. An environment reads the
    outputs the shared stack's own mocked run gives, as a stack reference would; `deployed`
    names the online endpoints and ENDPOINT/DEPLOYMENT slots Azure would find (none: a
    first `pulumi up`, before any `mlops deploy`)."""
    return run_stack_in_order(stack, infra, overrides, deployed)[0]


def run_stack_in_order(
    stack: str,
    infra: Path = INFRA,
    overrides: dict | None = None,
    deployed: frozenset[str] = frozenset(),
) -> tuple[list[Record], list[Registration]]:
    """run_stack, and every registration in the order the engine would receive it."""
    config = {**stack_config(stack, infra), **(overrides or {})}
    shared_outputs = {} if stack == "shared" else shared_stack_outputs(infra, overrides)
    return _run(stack, config, shared_outputs, deployed)


def shared_stack_outputs(infra: Path = INFRA, overrides: dict | None = None) -> dict:
    from mlops_infra import access
    from mlops_infra.settings import ENVIRONMENTS
    from mlops_infra.shared import PREVIEW_LOGICAL_NAME, identity_logical_name

    records = run_stack("shared", infra, overrides)
    by_name = {r.logical_name: r for r in records if r.type.endswith(":UserAssignedIdentity")}
    identities = {
        env: {
            persona: identity_ids(by_name[identity_logical_name(env, spec)].id)
            for persona, spec in access.identities_in(env).items()
        }
        for env in ENVIRONMENTS
    }
    preview = identity_ids(by_name[PREVIEW_LOGICAL_NAME].id)
    return {
        "identities": identities,
        "previewPrincipalId": preview["principalId"],
        "previewClientId": preview["clientId"],
    }


def _run(
    stack: str, config: dict, shared_outputs: dict, deployed: frozenset = frozenset()
) -> tuple[list[Record], list[Registration]]:
    from mlops_infra.program import build

    mocks = AzureShapedMocks(config[SUBSCRIPTION_KEY], shared_outputs, deployed)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(config)
    pulumi.runtime.set_mocks(
        mocks, project="mlops-infra", stack=stack, preview=False, monitor=monitor
    )

    @pulumi.runtime.test  # waits until every resource of the program is registered
    def program():
        build(stack)

    program()
    return mocks.records, monitor.registrations


def stack_settings(stack: str, infra: Path = INFRA, overrides: dict | None = None):
    """The checked settings a stack's program would build from (tests derive names from them)."""
    from mlops_infra.settings import Settings

    config = {**stack_config(stack, infra), **(overrides or {})}
    raw = {key.removeprefix("mlops:"): value for key, value in config.items()}
    return Settings.parse(stack, raw, infra)

"""Who may do what, where, and which GitHub jobs may act as which identity.

Read MATRIX as: persona -> environment -> [(role, scope)]. Scopes name a
resource of that environment (or the shared registry), never a subscription.
No Owner, no User Access Administrator; Contributor appears once per
environment, for the identity that runs `pulumi up` inside its own resource
group. People hold nothing in prod beyond Reader: prod changes only through
the gated workflows (see infra/README.md, "Break glass").

IDENTITIES says where each workload identity's door is: the GitHub
Environment whose jobs it trusts. No two identities share a door. The
identities and their federated credentials live in the shared stack's
resource group, which no infrastructure identity can write to, so no CI job
can add trust to any of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from mlops_infra.settings import ENVIRONMENTS

# Built-in role definition ids (the same in every tenant).
ROLES = {
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "AzureML Compute Operator": "e503ece1-11d0-4e8e-8e2c-7a6c3bf38815",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    # userAssignedIdentities/*/read and */assign/action; no federatedIdentityCredentials/write
    # (learn.microsoft.com built-in roles, "Managed Identity Operator")
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
}
FORBIDDEN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
}
# registries/assets/* includes delete (learn.microsoft.com built-in roles, "AzureML Registry User")
REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"


@dataclass(frozen=True)
class CustomRole:
    description: str
    actions: tuple[str, ...]
    # Where it may be assigned: the shared resource group holding the registry, or (for a role
    # granted inside the environments' resource groups, made after the shared stack) the
    # subscription that holds them.
    assignable: str = "model-registry"


# Sharing needs read and write of registry assets, never delete: the built-in AzureML Registry
# User grants registries/assets/*, so dev automation could delete what prod deploys from.
# Actions: learn.microsoft.com/azure/machine-learning/how-to-manage-registries ("Allow users to
# create and use assets from the registry"); a model version, once written, is immutable.
REGISTRY_PUBLISHER = "Model Registry Publisher"
# The rollout puts an Azure Monitor autoscale setting on each new prod deployment and deletes the
# retired one's (learn.microsoft.com/azure/machine-learning/how-to-autoscale-endpoints: the caller
# needs microsoft.insights/autoscalesettings/write). No built-in role holds exactly these, and
# Contributor would let the release identity change the whole resource group.
AUTOSCALER = "Endpoint Autoscale Operator"
CUSTOM_ROLES = {
    REGISTRY_PUBLISHER: CustomRole(
        "Reads the model registry and adds assets to it; cannot delete assets or change the "
        "registry.",
        (
            "Microsoft.MachineLearningServices/registries/read",
            "Microsoft.MachineLearningServices/registries/assets/read",
            "Microsoft.MachineLearningServices/registries/assets/write",
        ),
    ),
    AUTOSCALER: CustomRole(
        "Reads, writes and deletes autoscale settings; nothing else in the resource group.",
        (
            "Microsoft.Insights/autoscalesettings/read",
            "Microsoft.Insights/autoscalesettings/write",
            "Microsoft.Insights/autoscalesettings/delete",
        ),
        assignable="subscription",
    ),
}

# Scopes, by the resource they name.
WORKSPACE = "workspace"
RESOURCE_GROUP = "resource-group"
STORAGE = "storage"
CONTAINER_REGISTRY = "container-registry"
MODEL_REGISTRY = "model-registry"
COMPUTE_IDENTITY = "compute-identity"  # the training cluster's identity, as a resource
# Scopes outside an environment's resource group: the shared stack (a platform administrator)
# makes these grants, because no environment's infrastructure identity may write there.
SHARED_SCOPES = (MODEL_REGISTRY, COMPUTE_IDENTITY)

# Personas.
DATA_SCIENTISTS = "data-scientists"  # an Entra group
ML_ENGINEERS = "ml-engineers"  # an Entra group
AUTOMATION = "automation"  # GitHub Actions, this environment's ML verbs
INFRA_AUTOMATION = "infra-automation"  # GitHub Actions, this environment's `pulumi up`
MONITOR = "monitor"  # GitHub Actions, the daily drift check of prod
COMPUTE = "compute"  # the training cluster's identity
PREVIEW = "pull-request-preview"  # read-only, for `pulumi preview` on pull requests
# The release's gate and promotion run in preprod's jobs and read the model prod serves (the
# champion) from prod's endpoint: this persona is preprod's automation identity as prod's stack
# grants it. Reader's */read covers workspaces/onlineEndpoints/read and its deployments' read
# (learn.microsoft.com built-in roles, "Reader"; the REST spec's OnlineEndpoints_Get is a GET).
CHAMPION_READER = "champion-reader"
BORROWED = {CHAMPION_READER: ("preprod", AUTOMATION)}  # persona -> (its identity's env, persona)
PEOPLE = (DATA_SCIENTISTS, ML_ENGINEERS)
PEOPLE_IN_PROD = {"Reader"}  # the only role a person may hold in prod


@dataclass(frozen=True)
class Grant:
    role: str
    scope: str


@dataclass(frozen=True)
class Identity:
    """A user-assigned identity of one environment; `door` is the GitHub Environment whose jobs
    it trusts ({env} is replaced), None for one no GitHub job may obtain."""

    suffix: str  # id-<project>-<env>-<suffix>
    door: str | None
    envs: tuple[str, ...] = ENVIRONMENTS

    def door_in(self, env: str) -> str | None:
        return self.door.format(env=env) if self.door else None


IDENTITIES = {
    AUTOMATION: Identity("github", "{env}"),
    INFRA_AUTOMATION: Identity("infra", "{env}-infra"),
    MONITOR: Identity("monitor", "monitor", envs=("prod",)),
    COMPUTE: Identity("compute", None),
}


def identities_in(env: str) -> dict[str, Identity]:
    return {persona: i for persona, i in IDENTITIES.items() if env in i.envs}


def _same_everywhere(*grants: Grant) -> dict[str, list[Grant]]:
    return {env: list(grants) for env in ENVIRONMENTS}


# Who invokes a batch endpoint uploads its local input with its own token (the workspace's
# datastore is identity-based, keys are off), and the job runs as that identity: its outputs
# need blob writes, and the parallel runtime queues and tables with keys off (learn.microsoft.
# com/azure/machine-learning/how-to-authenticate-batch-endpoint; how-to-disable-local-auth-
# storage, "Scenarios for role assignments", Parallel Run Step). No narrower built-in role writes.
BATCH_INVOKER = (
    Grant("Storage Blob Data Contributor", STORAGE),  # uploads the input, writes the outputs
    Grant("Storage Queue Data Contributor", STORAGE),  # the batch runtime's work queue
    Grant("Storage Table Data Contributor", STORAGE),  # the batch runtime's progress tables
)

MATRIX: dict[str, dict[str, list[Grant]]] = {
    # Dev only: the promotion pull request shows prod's champion metrics and the monitor run
    # shows drift, so reading preprod or prod would add exposure and no task.
    DATA_SCIENTISTS: {
        "dev": [
            Grant("AzureML Data Scientist", WORKSPACE),
            Grant("AzureML Compute Operator", WORKSPACE),
            Grant("Storage Blob Data Contributor", STORAGE),
        ],
    },
    # Deploy rights in prod only through deploy-prod.yml behind the prod reviewers.
    ML_ENGINEERS: {
        "dev": [Grant("AzureML Data Scientist", WORKSPACE)],
        "preprod": [Grant("AzureML Data Scientist", WORKSPACE)],
        "prod": [Grant("Reader", WORKSPACE)],
    },
    AUTOMATION: {
        "dev": [
            Grant("AzureML Data Scientist", WORKSPACE),
            Grant("Storage Blob Data Contributor", STORAGE),
            Grant(REGISTRY_PUBLISHER, MODEL_REGISTRY),  # shares models: adds, never deletes
        ],
        # Reader on the registry: the gate reads the challenger and its training data there
        # Publisher, not Reader, in the registry: each deploy, rollback and promotion writes
        # its audit entry as a tag on the model version it served (mlops history); a version's
        # files stay immutable and nothing can be deleted.
        "preprod": [
            Grant("AzureML Data Scientist", WORKSPACE),
            Grant(REGISTRY_PUBLISHER, MODEL_REGISTRY),
            *BATCH_INVOKER,
        ],
        "prod": [
            Grant("AzureML Data Scientist", WORKSPACE),
            Grant(REGISTRY_PUBLISHER, MODEL_REGISTRY),
            Grant(AUTOSCALER, RESOURCE_GROUP),  # prod.yml sets endpoint.autoscale
            *BATCH_INVOKER,
        ],
    },
    INFRA_AUTOMATION: _same_everywhere(
        Grant("Contributor", RESOURCE_GROUP),
        Grant("Role Based Access Control Administrator", RESOURCE_GROUP),
        Grant("Managed Identity Operator", COMPUTE_IDENTITY),  # attach it to the cluster
    ),
    # Reads the live endpoint and workspace, the served model's tags and training data in the
    # registry (Reader there reaches an asset's files through the SAS the registry hands out,
    # docs how-to-manage-registries), and the data collector's blobs: Reader alone reaches no
    # workspace blob data, hence Storage Blob Data Reader.
    MONITOR: {
        "prod": [
            Grant("Reader", WORKSPACE),
            Grant("Storage Blob Data Reader", STORAGE),
            Grant("Reader", MODEL_REGISTRY),
        ],
    },
    # Identity-based datastores: jobs read inputs and, in dev, write outputs as the cluster.
    COMPUTE: {
        "dev": [
            Grant("AcrPull", CONTAINER_REGISTRY),
            Grant("Storage Blob Data Contributor", STORAGE),
        ],
        "preprod": [
            Grant("AcrPull", CONTAINER_REGISTRY),
            Grant("Storage Blob Data Reader", STORAGE),
        ],
        "prod": [Grant("AcrPull", CONTAINER_REGISTRY), Grant("Storage Blob Data Reader", STORAGE)],
    },
    PREVIEW: _same_everywhere(Grant("Reader", RESOURCE_GROUP)),
    # Read only, in prod only: which model prod serves, for the gate in preprod's jobs.
    CHAMPION_READER: {"prod": [Grant("Reader", WORKSPACE)]},
}
# Online endpoints use their system-assigned identity: Azure ML grants it AcrPull and Storage
# Blob Data Reader on the workspace's registry and storage itself; a user-assigned one gets
# nothing automatically (learn.microsoft.com/azure/machine-learning/concept-endpoints-online-auth).

# Roles the Role Based Access Control Administrator may never hand out, even within the matrix.
NOT_DELEGABLE = ("Contributor", "Role Based Access Control Administrator")


def grants_for(env: str) -> list[tuple[str, Grant]]:
    """Every (persona, grant) of the environment, in matrix order, whichever stack makes it."""
    return [(persona, grant) for persona, by_env in MATRIX.items() for grant in by_env.get(env, [])]


def environment_grants(env: str) -> list[tuple[str, Grant]]:
    """The grants the environment's own stack makes (inside its resource group)."""
    return [(p, g) for p, g in grants_for(env) if g.scope not in SHARED_SCOPES]


def shared_grants(env: str) -> list[tuple[str, Grant]]:
    """The environment's grants the shared stack makes (registry, identities)."""
    return [(p, g) for p, g in grants_for(env) if g.scope in SHARED_SCOPES]


def delegable_roles(env: str) -> list[str]:
    """The roles the environment's infrastructure identity may assign: those its stack makes."""
    return sorted(
        {g.role for _, g in environment_grants(env) if g.role not in NOT_DELEGABLE}, key=str
    )


def as_table() -> str:
    """The matrix as a markdown table, for the plan and the README."""
    envs = ENVIRONMENTS
    lines = ["| persona | " + " | ".join(envs) + " |", "| --- | --- | --- | --- |"]
    for persona, by_env in MATRIX.items():
        cells = [
            "<br>".join(f"{g.role} @ {g.scope}" for g in by_env.get(env, [])) or "none"
            for env in envs
        ]
        lines.append(f"| {persona} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def role_guid(role: str, subscription_id: str, project: str) -> str:
    """A role's definition id: fixed for built-in roles; for a custom role, derived from the
    subscription and project, so two forks in one tenant never overwrite each other's role."""
    if role in ROLES:
        return ROLES[role]
    if role not in CUSTOM_ROLES:
        raise KeyError(f"{role!r} is neither a built-in role of ROLES nor one of CUSTOM_ROLES")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subscription_id}/{project}/role/{role}"))


def doors_table() -> str:
    """Which GitHub Environment opens which identity, as a markdown table (plan and README)."""
    lines = ["| identity | trusted GitHub Environment | stacks |", "| --- | --- | --- |"]
    for persona, spec in IDENTITIES.items():
        door = f"`{spec.door.replace('{env}', '<env>')}`" if spec.door else "none (no GitHub job)"
        lines.append(
            f"| `id-<project>-<env>-{spec.suffix}` ({persona}) | {door} | {', '.join(spec.envs)} |"
        )
    lines.append(
        f"| `id-<project>-pr-preview` ({PREVIEW}) | any pull request (`pull_request`) | shared |"
    )
    return "\n".join(lines)

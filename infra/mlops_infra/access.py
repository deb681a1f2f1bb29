"""Who may do what, where: the one matrix every role assignment is made from.

Read it as: persona -> environment -> [(role, scope)]. Scopes name a resource
of that environment (or the shared registry), never a subscription. No Owner,
no User Access Administrator; Contributor appears once, for the identity that
runs `pulumi up` inside its own resource group (see infra/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# Built-in role definition ids (the same in every tenant).
ROLES = {
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "AzureML Compute Operator": "e503ece1-11d0-4e8e-8e2c-7a6c3bf38815",
    "AzureML Registry User": "1823dd4f-9b8c-4ab6-ab4e-7397a3684615",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
}
FORBIDDEN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
}

# Scopes, by the resource they name.
WORKSPACE = "workspace"
RESOURCE_GROUP = "resource-group"
STORAGE = "storage"
CONTAINER_REGISTRY = "container-registry"
MODEL_REGISTRY = "model-registry"
SCOPES = (WORKSPACE, RESOURCE_GROUP, STORAGE, CONTAINER_REGISTRY, MODEL_REGISTRY)

# Personas.
DATA_SCIENTISTS = "data-scientists"  # an Entra group
ML_ENGINEERS = "ml-engineers"  # an Entra group
AUTOMATION = "automation"  # GitHub Actions, this environment's ML verbs
INFRA_AUTOMATION = "infra-automation"  # GitHub Actions, this environment's `pulumi up`
COMPUTE = "compute"  # the training cluster's identity
ENDPOINT = "endpoint"  # the online endpoints' identity
PREVIEW = "pull-request-preview"  # read-only, for `pulumi preview` on pull requests


@dataclass(frozen=True)
class Grant:
    role: str
    scope: str


def _same_everywhere(*grants: Grant) -> dict[str, list[Grant]]:
    return {env: list(grants) for env in ("dev", "preprod", "prod")}


MATRIX: dict[str, dict[str, list[Grant]]] = {
    DATA_SCIENTISTS: {
        "dev": [
            Grant("AzureML Data Scientist", WORKSPACE),
            Grant("AzureML Compute Operator", WORKSPACE),
            Grant("Storage Blob Data Contributor", STORAGE),
        ],
        "preprod": [Grant("Reader", WORKSPACE)],
        "prod": [Grant("Reader", WORKSPACE)],
    },
    ML_ENGINEERS: {
        "dev": [Grant("AzureML Data Scientist", WORKSPACE)],
        "preprod": [Grant("AzureML Data Scientist", WORKSPACE)],
        "prod": [Grant("AzureML Data Scientist", WORKSPACE)],
    },
    AUTOMATION: {
        "dev": [
            Grant("AzureML Data Scientist", WORKSPACE),
            Grant("Storage Blob Data Contributor", STORAGE),
            Grant("AzureML Registry User", MODEL_REGISTRY),  # shares models: writes
        ],
        "preprod": [Grant("AzureML Data Scientist", WORKSPACE), Grant("Reader", MODEL_REGISTRY)],
        "prod": [Grant("AzureML Data Scientist", WORKSPACE), Grant("Reader", MODEL_REGISTRY)],
    },
    INFRA_AUTOMATION: _same_everywhere(
        Grant("Contributor", RESOURCE_GROUP),
        Grant("Role Based Access Control Administrator", RESOURCE_GROUP),
    ),
    COMPUTE: _same_everywhere(
        Grant("AcrPull", CONTAINER_REGISTRY), Grant("Storage Blob Data Reader", STORAGE)
    ),
    ENDPOINT: _same_everywhere(
        Grant("AcrPull", CONTAINER_REGISTRY),
        Grant("Storage Blob Data Reader", STORAGE),
        Grant("Reader", MODEL_REGISTRY),
    ),
    PREVIEW: _same_everywhere(Grant("Reader", RESOURCE_GROUP)),
}


def grants_for(env: str) -> list[tuple[str, Grant]]:
    """Every (persona, grant) the environment's stack creates, in matrix order."""
    return [(persona, grant) for persona, by_env in MATRIX.items() for grant in by_env.get(env, [])]


def as_table() -> str:
    """The matrix as a markdown table, for the plan and the README."""
    envs = ("dev", "preprod", "prod")
    lines = ["| persona | " + " | ".join(envs) + " |", "| --- | --- | --- | --- |"]
    for persona, by_env in MATRIX.items():
        cells = [
            "<br>".join(f"{g.role} @ {g.scope}" for g in by_env.get(env, [])) or "none"
            for env in envs
        ]
        lines.append(f"| {persona} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

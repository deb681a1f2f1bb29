"""Who may use the state backend, and how far.

- Each environment's infrastructure identity writes only its own stack's blobs in the state
  container: Storage Blob Data Contributor with a condition on the blob path (ABAC;
  learn.microsoft.com/azure/storage/blobs/storage-auth-abac-attributes: `blobs:path` on
  write, add, delete and move). Reads stay open: `pulumi up` reads the shared stack's outputs
  through a stack reference. It uses its own stack's key, and shared's, which guards no secret.
- The preview identity reads the container and decrypts no prod secret: it uses the keys of
  the stacks it previews, shared, dev and preprod; never prod's, nor the github stack's, which
  no workflow runs.
- The person (or group) who bootstraps, mlops:bootstrapPrincipalId, writes every stack and
  uses every key: Owner and Contributor carry no data actions (learn.microsoft.com/azure/
  storage/blobs/authorize-access-azure-active-directory), so without these the first
  `pulumi login` and `pulumi stack init --secrets-provider` would answer 403.

No CI identity writes the shared stack's state, so what prod grants (the shared stack's
identities) comes from a source dev cannot write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization

from mlops_infra.settings import ENVIRONMENTS, GITHUB, SHARED, Settings
from mlops_infra.state import CONTAINER as CONTAINER_NAME
from mlops_infra.state import STACKS, StateBackend

ROLES = {
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    # encrypt and decrypt with a key (the azurekeyvault secrets provider needs both)
    "Key Vault Crypto User": "12338af0-0e69-4776-bea7-57ae8d297424",
}
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
# Storage Blob Data Contributor's data actions besides read (learn.microsoft.com built-in roles)
WRITE_ACTIONS = tuple(f"{BLOBS}/{a}" for a in ("write", "add/action", "delete", "move/action"))
PATH = f"@Resource[{BLOBS}:path]"
EVERY_STACK = "*"


def stack_paths(project: str, stack: str) -> list[tuple[str, str]]:
    """(operator, value) for each blob a stack's runs write, in Pulumi's self-managed backend:
    its checkpoint (.json, and .bak, .gz, .zst beside it), history, backups, journal and lock
    (pulumi/pulumi pkg/backend/diy/store.go and lock.go, project layout)."""
    return [
        ("StringLike", f".pulumi/stacks/{project}/{stack}.json*"),
        ("StringStartsWith", f".pulumi/history/{project}/{stack}/"),
        ("StringStartsWith", f".pulumi/backups/{project}/{stack}/"),
        ("StringStartsWith", f".pulumi/journal/{project}/{stack}/"),
        ("StringStartsWith", f".pulumi/locks/organization/{project}/{stack}/"),
    ]


def write_condition(project: str, stack: str) -> str:
    """Every write, add, delete or move only under the stack's own paths; reads untouched."""
    other = " AND ".join(f"!(ActionMatches{{'{action}'}})" for action in WRITE_ACTIONS)
    own = " OR ".join(
        f"{PATH} {operator} '{value}'" for operator, value in stack_paths(project, stack)
    )
    return f"(({other}) OR ({own}))"


@dataclass(frozen=True)
class StateAccess:
    writes: str | None  # a stack, EVERY_STACK, or None (reads only)
    keys: tuple[str, ...]  # the stacks whose secrets key it may use


def infra_access(env: str) -> StateAccess:
    return StateAccess(env, (env, SHARED))


PREVIEW_ACCESS = StateAccess(None, tuple(s for s in STACKS if s not in ("prod", GITHUB)))
BOOTSTRAP_ACCESS = StateAccess(EVERY_STACK, STACKS)


def grant(
    settings: Settings,
    backend: StateBackend,
    name: str,
    principal_id: pulumi.Input[str],
    principal_type: str,
    access: StateAccess,
) -> None:
    """The blob role on the container (conditioned to one stack's paths when it writes one),
    and Key Vault Crypto User on each key it may use. Scopes are the resources' own ids, so ARM
    sees each assignment after its scope exists."""
    project = pulumi.get_project()
    blob_role = (
        "Storage Blob Data Reader" if access.writes is None else "Storage Blob Data Contributor"
    )
    condition = (
        write_condition(project, access.writes)
        if access.writes not in (None, EVERY_STACK)
        else None
    )
    grants = [(blob_role, backend.container, "state-container", condition)] + [
        ("Key Vault Crypto User", backend.keys[stack], f"{stack}-state-key", None)
        for stack in access.keys
    ]
    for role, resource, scope_name, scope_condition in grants:
        authorization.RoleAssignment(
            f"{name}-{role.lower().replace(' ', '-')}-{scope_name}",
            role_assignment_name=str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{settings.stack}/{name}/{role}/{scope_name}")
            ),
            principal_id=principal_id,
            principal_type=principal_type,
            role_definition_id=(
                f"/subscriptions/{settings.subscription_id}/providers/"
                f"Microsoft.Authorization/roleDefinitions/{ROLES[role]}"
            ),
            scope=resource.id,
            condition=scope_condition,
            condition_version="2.0" if scope_condition else None,
        )


def grant_all(settings: Settings, backend: StateBackend, preview_id, infra_ids: dict) -> None:
    """Every grant on the state backend: the bootstrapping principal's, the preview identity's,
    and each environment's infrastructure identity's."""
    grant(
        settings,
        backend,
        "bootstrap",
        settings.bootstrap_principal_id,
        settings.bootstrap_principal_type,
        BOOTSTRAP_ACCESS,
    )
    grant(settings, backend, "pull-request-preview", preview_id, "ServicePrincipal", PREVIEW_ACCESS)
    for env in ENVIRONMENTS:
        grant(
            settings,
            backend,
            f"infra-automation-{env}",
            infra_ids[env],
            "ServicePrincipal",
            infra_access(env),
        )


# ---- read back from a mocked plan: who may write which stack's state, who may decrypt whose ----


def sample_paths(project: str, stack: str) -> list[str]:
    """Blobs a run of the stack writes: its checkpoint, a history entry, a backup, a lock."""
    return [
        f".pulumi/stacks/{project}/{stack}.json",
        f".pulumi/stacks/{project}/{stack}.json.bak",
        f".pulumi/history/{project}/{stack}/{stack}-1700000000.history.json",
        f".pulumi/backups/{project}/{stack}/{stack}.1700000000.json",
        f".pulumi/locks/organization/{project}/{stack}/0d1e.json",
    ]


def writers(records: list, project: str) -> dict[str, list[str]]:
    """principal id -> the stacks whose every state blob it may write, judged by evaluating the
    planned assignments' roles and conditions on each blob Pulumi writes for that stack."""
    from mlops_infra.conditions import allows

    found: dict[str, set[str]] = {}
    for record in records:
        inputs = record.inputs
        if not record.type.endswith(":RoleAssignment") or not inputs["scope"].endswith(
            f"/containers/{CONTAINER_NAME}"
        ):
            continue
        found.setdefault(inputs["principalId"], set())
        if not inputs["roleDefinitionId"].endswith(ROLES["Storage Blob Data Contributor"]):
            continue  # Storage Blob Data Reader holds no write action
        for stack in STACKS:
            if all(
                not inputs.get("condition")
                or allows(inputs["condition"], f"{BLOBS}/write", {PATH: path})
                for path in sample_paths(project, stack)
            ):
                found[inputs["principalId"]].add(stack)
    return {principal: sorted(stacks) for principal, stacks in found.items()}


def key_users(records: list) -> dict[str, list[str]]:
    """stack -> the principal ids that may use (so decrypt with) its secrets key."""
    found: dict[str, list[str]] = {stack: [] for stack in STACKS}
    for record in records:
        inputs = record.inputs
        if record.type.endswith(":RoleAssignment") and inputs["roleDefinitionId"].endswith(
            ROLES["Key Vault Crypto User"]
        ):
            stack = inputs["scope"].rsplit("/keys/pulumi-secrets-", 1)[-1]
            found[stack].append(inputs["principalId"])
    return {stack: sorted(ids) for stack, ids in found.items()}

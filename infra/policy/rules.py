"""The guardrails as plain functions.

RULES: (resource type, properties, stack) -> problems, one resource at a time.
STACK_RULES: (resources as [(type, properties)], stack) -> problems, across a stack.
__main__.py wraps each in a mandatory pulumi-policy Resource/StackValidationPolicy;
tests call them directly on violating and compliant resources, and on mutated plans.
Self-contained on purpose: the pack runs without the Pulumi program on its path.
"""

from __future__ import annotations

import re
from collections.abc import Callable

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"  # registries/assets/*: deletes too
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# repo:OWNER@OWNER_ID/REPO@REPO_ID:CONTEXT (docs.github.com OIDC reference, immutable subjects)
_IMMUTABLE = re.compile(r"^repo:[^/@:]+@\d+/[^/@:]+@\d+:(.+)$")
_NAME_ONLY = re.compile(r"^repo:[^/@:]+/[^/@:]+:(.+)$")
_RESOURCE_GROUP = re.compile(r"^/subscriptions/[^/]+/resourceGroups/([^/]+)$", re.I)
ROLE = "azure-native:authorization:RoleAssignment"
FEDERATION = "azure-native:managedidentity:FederatedIdentityCredential"
_SUBSCRIPTION_OR_WIDER = re.compile(
    r"^(/|/subscriptions/[^/]+/?|/providers/Microsoft\.Management/managementGroups/[^/]+/?)$", re.I
)

Rule = Callable[[str, dict, str], list[str]]
StackRule = Callable[[list[tuple[str, dict]], str], list[str]]


def _role(props: dict) -> str:
    return str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()


def storage_blocks_public_blobs(kind: str, props: dict, stack: str) -> list[str]:
    if (
        kind == "azure-native:storage:StorageAccount"
        and props.get("allowBlobPublicAccess") is not False
    ):
        return ["storage accounts must set allowBlobPublicAccess to false"]
    return []


def storage_requires_tls12_and_https(kind: str, props: dict, stack: str) -> list[str]:
    if kind != "azure-native:storage:StorageAccount":
        return []
    problems = []
    if props.get("minimumTlsVersion") != "TLS1_2":
        problems.append("storage accounts must set minimumTlsVersion to TLS1_2")
    if props.get("enableHttpsTrafficOnly") is not True:
        problems.append("storage accounts must set enableHttpsTrafficOnly to true")
    return problems


def key_vault_uses_rbac_and_soft_delete(kind: str, props: dict, stack: str) -> list[str]:
    if kind != "azure-native:keyvault:Vault":
        return []
    vault = props.get("properties") or {}
    problems = []
    if vault.get("enableRbacAuthorization") is not True:
        problems.append("key vaults must use RBAC authorization (enableRbacAuthorization: true)")
    if vault.get("enableSoftDelete") is False:
        problems.append("key vaults must keep soft delete on")
    return problems


def prod_key_vault_has_purge_protection(kind: str, props: dict, stack: str) -> list[str]:
    protected = (props.get("properties") or {}).get("enablePurgeProtection") is True
    if kind == "azure-native:keyvault:Vault" and stack == "prod" and not protected:
        return ["the prod key vault must enable purge protection"]
    return []


def container_registry_has_no_admin_user(kind: str, props: dict, stack: str) -> list[str]:
    if (
        kind == "azure-native:containerregistry:Registry"
        and props.get("adminUserEnabled") is not False
    ):
        return ["container registries must disable the admin user (adminUserEnabled: false)"]
    return []


def role_assignments_stay_narrow(kind: str, props: dict, stack: str) -> list[str]:
    if kind != "azure-native:authorization:RoleAssignment":
        return []
    problems = []
    scope = str(props.get("scope", ""))
    if _SUBSCRIPTION_OR_WIDER.match(scope):
        problems.append(
            f"role assignments must not be made at subscription scope or wider ({scope})"
        )
    role = _role(props)
    if role in (OWNER, USER_ACCESS_ADMINISTRATOR):
        name = "Owner" if role == OWNER else "User Access Administrator"
        problems.append(f"role assignments must not grant {name}")
    return problems


def storage_disallows_shared_keys(kind: str, props: dict, stack: str) -> list[str]:
    if (
        kind == "azure-native:storage:StorageAccount"
        and props.get("allowSharedKeyAccess") is not False
    ):
        return ["storage accounts must set allowSharedKeyAccess to false (Entra only)"]
    return []


def workspace_uses_identity_datastores(kind: str, props: dict, stack: str) -> list[str]:
    mode = str(props.get("systemDatastoresAuthMode", "")).lower()
    if kind == "azure-native:machinelearningservices:Workspace" and mode != "identity":
        return ["workspaces must set systemDatastoresAuthMode to identity"]
    return []


def compute_has_no_public_ssh(kind: str, props: dict, stack: str) -> list[str]:
    if kind != "azure-native:machinelearningservices:Compute":
        return []
    aml = (props.get("properties") or {}).get("properties") or {}
    problems = []
    if aml.get("remoteLoginPortPublicAccess") != "Disabled":
        problems.append("compute clusters must set remoteLoginPortPublicAccess to Disabled")
    if aml.get("subnet") and aml.get("enableNodePublicIp") is not False:
        problems.append("a compute cluster in a subnet must set enableNodePublicIp to false")
    return problems


def delegation_is_conditioned(kind: str, props: dict, stack: str) -> list[str]:
    """A Role Based Access Control Administrator must be bounded, for writes and deletes, to
    listed roles and to listed principals or principal types, and never list a role that
    grants more rights than the matrix."""
    if kind != ROLE or _role(props) != RBAC_ADMINISTRATOR:
        return []
    condition = str(props.get("condition") or "")
    problems = []
    for source in ("Request", "Resource"):
        attribute = f"@{source}[Microsoft.Authorization/roleAssignments:"
        if attribute + "RoleDefinitionId]" not in condition:
            problems.append(f"the delegation's condition must limit roles in @{source}")
        if not any(attribute + a + "]" in condition for a in ("PrincipalType", "PrincipalId")):
            problems.append(f"the delegation's condition must limit principals in @{source}")
    listed = {
        g
        for g in (OWNER, USER_ACCESS_ADMINISTRATOR, CONTRIBUTOR, RBAC_ADMINISTRATOR)
        if g in condition.lower()
    }
    if listed:
        problems.append(f"the delegation's condition must not allow {', '.join(sorted(listed))}")
    if props.get("conditionVersion") != "2.0":
        problems.append("the delegation's condition must be version 2.0")
    return problems


def contributor_only_on_own_group(kind: str, props: dict, stack: str) -> list[str]:
    if kind != ROLE or _role(props) != CONTRIBUTOR:
        return []
    group = _RESOURCE_GROUP.match(str(props.get("scope", "")))
    if stack == "shared" or not group or not group.group(1).endswith(f"-{stack}"):
        return [
            f"Contributor only on the {stack} stack's own resource group, not {props.get('scope')}"
        ]
    return []


def registry_roles_cannot_delete(kind: str, props: dict, stack: str) -> list[str]:
    if kind == ROLE and _role(props) == REGISTRY_USER:
        return ["AzureML Registry User deletes registry assets; assign the publisher role"]
    if kind == "azure-native:authorization:RoleDefinition":
        actions = [a for p in props.get("permissions") or [] for a in p.get("actions") or []]
        wide = [a for a in actions if a.endswith("*")]
        # registry assets are never deleted; another resource's own delete is named exactly
        wide += [
            a
            for a in actions
            if a.endswith("/delete") and a.startswith("Microsoft.MachineLearningServices/")
        ]
        if wide:
            return [
                "custom roles must not delete registry assets or use wildcards: " + ", ".join(wide)
            ]
    return []


BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
_STATE_CONTAINER = re.compile(r"/blobServices/default/containers/pulumi-state$", re.I)
_STATE_KEY = re.compile(r"/keys/pulumi-secrets-([a-z]+)$")
# a stack's own state paths in Pulumi's self-managed backend, as the write condition lists them
_STATE_PATH = re.compile(
    r"'\.pulumi/(?:stacks|history|backups|journal|locks/organization)/[^/']+/([^/'*]+?)(?:\.json\*|/)'"
)
_BLOB_WRITES = ("blobs/write", "blobs/add/action", "blobs/delete", "blobs/move/action")


def _state_stacks_written(props: dict) -> set[str] | None:
    """The stacks whose state a writer's condition confines it to; None when unconfined."""
    condition = str(props.get("condition") or "")
    if not condition or not all(f"{w}'" in condition for w in _BLOB_WRITES):
        return None
    return set(_STATE_PATH.findall(condition))


def state_writes_stay_in_one_stack(kind: str, props: dict, stack: str) -> list[str]:
    """A CI identity writes one environment's state only: on the state container, a writing
    blob role given to a service principal carries a path condition naming one stack, never
    shared (whose outputs decide what prod grants). Only the bootstrapping person (User or Group)
    writes every stack."""
    if kind != ROLE or not _STATE_CONTAINER.search(str(props.get("scope", ""))):
        return []
    if _role(props) not in (BLOB_DATA_CONTRIBUTOR, BLOB_DATA_OWNER):
        return []
    if props.get("principalType") in ("User", "Group"):
        return []
    stacks = _state_stacks_written(props)
    if stacks is None:
        return ["a CI identity writing the state must be confined to its stack's paths"]
    if len(stacks) != 1 or "shared" in stacks:
        return [f"a CI identity may write one environment's state, not {sorted(stacks)}"]
    return []


def delegation_is_written_as_pairs(kind: str, props: dict, stack: str) -> list[str]:
    """A delegated RBAC Administrator's condition names one principal per clause, each with its
    own roles: a set of principals beside a set of roles allows every cross pair."""
    if kind != ROLE or _role(props) != RBAC_ADMINISTRATOR:
        return []
    condition = str(props.get("condition") or "")
    sets = re.findall(
        r"roleAssignments:PrincipalId\] ForAnyOfAnyValues:GuidEquals \{([^}]*)\}", condition
    )
    if any("," in found for found in sets):
        return ["the delegation's condition must name one principal per clause (matrix pairs)"]
    return []


def people_only_read_prod(kind: str, props: dict, stack: str) -> list[str]:
    people = props.get("principalType") in ("User", "Group")
    if kind == ROLE and stack == "prod" and people and _role(props) != READER:
        return ["people hold nothing in prod beyond Reader: deploy through the gated workflow"]
    return []


GITHUB_STACK = "github"  # the one stack no workflow applies or previews (program.py)


def github_only_in_the_admin_stack(kind: str, props: dict, stack: str) -> list[str]:
    """GitHub resources belong to the github stack: a workflow runs the others with an Azure
    login and no GitHub token, so one there turns infra.yml red (or, given a token, lets a
    dev job change prod's gate)."""
    if kind.startswith("github:") and stack != GITHUB_STACK:
        return [f"{kind} belongs in the {GITHUB_STACK} stack, which only an administrator runs"]
    return []


RULES: dict[str, tuple[str, Rule]] = {
    "github-admin-stack-only": (
        "GitHub resources are made only by the github stack, which no workflow runs.",
        github_only_in_the_admin_stack,
    ),
    "storage-no-public-blob-access": (
        "Storage accounts block public blob access.",
        storage_blocks_public_blobs,
    ),
    "storage-tls12-https-only": (
        "Storage accounts require TLS 1.2 and HTTPS.",
        storage_requires_tls12_and_https,
    ),
    "key-vault-rbac-soft-delete": (
        "Key vaults use RBAC and soft delete.",
        key_vault_uses_rbac_and_soft_delete,
    ),
    "prod-key-vault-purge-protection": (
        "The prod key vault has purge protection.",
        prod_key_vault_has_purge_protection,
    ),
    "container-registry-no-admin-user": (
        "Container registries disable the admin user.",
        container_registry_has_no_admin_user,
    ),
    "role-assignments-narrow": (
        "No role assignment at subscription scope or wider; no Owner or User Access Admin.",
        role_assignments_stay_narrow,
    ),
    "storage-no-shared-key": (
        "Storage accounts refuse shared-key (account key and SAS) authorization.",
        storage_disallows_shared_keys,
    ),
    "workspace-identity-datastores": (
        "Workspaces reach their system datastores with identities, not keys.",
        workspace_uses_identity_datastores,
    ),
    "compute-no-public-ssh": (
        "Compute clusters close public SSH; no public node IPs in a subnet.",
        compute_has_no_public_ssh,
    ),
    "delegation-conditioned": (
        "A delegated RBAC Administrator is limited to the matrix's roles and principals.",
        delegation_is_conditioned,
    ),
    "contributor-own-resource-group": (
        "Contributor only on the stack's own resource group.",
        contributor_only_on_own_group,
    ),
    "registry-no-delete": (
        "No registry role that deletes assets.",
        registry_roles_cannot_delete,
    ),
    "prod-people-read-only": (
        "People hold nothing in prod beyond Reader.",
        people_only_read_prod,
    ),
    "state-writes-one-stack": (
        "A CI identity writes only its own environment's state, never shared's.",
        state_writes_stay_in_one_stack,
    ),
    "delegation-pairs": (
        "A delegated RBAC Administrator's condition is the matrix's (role, principal) pairs.",
        delegation_is_written_as_pairs,
    ),
}


# ---- across a stack ----------------------------------------------------------------------------


def _doors(resources: list[tuple[str, dict]]) -> dict[str, set[str]]:
    """identity name -> the GitHub subjects its federated credentials trust"""
    doors: dict[str, set[str]] = {}
    for kind, props in resources:
        if kind == FEDERATION and props.get("issuer") == GITHUB_ISSUER:
            doors.setdefault(str(props.get("resourceName")), set()).add(str(props.get("subject")))
    return doors


def subjects_are_immutable(resources: list[tuple[str, dict]], stack: str) -> list[str]:
    """Every GitHub door has the immutable subject; a name-only one only beside its twin."""
    problems = []
    for identity, subjects in sorted(_doors(resources).items()):
        immutable = {m.group(1) for s in subjects if (m := _IMMUTABLE.match(s))}
        if not immutable:
            problems.append(f"{identity} trusts no immutable subject (repo:OWNER@ID/REPO@ID:...)")
        for subject in sorted(subjects):
            name_only = _NAME_ONLY.match(subject)
            if name_only and name_only.group(1) not in immutable:
                problems.append(f"{identity} trusts {subject} without its immutable twin")
    return problems


def one_identity_per_subject(resources: list[tuple[str, dict]], stack: str) -> list[str]:
    """Two identities that trust one subject are one identity to whoever runs that job; and the
    infrastructure identities open only from the *-infra environments, which nothing else does."""
    problems = []
    owners: dict[str, set[str]] = {}
    for identity, subjects in _doors(resources).items():
        for subject in subjects:
            owners.setdefault(subject, set()).add(identity)
            infra_door = subject.endswith("-infra")
            if infra_door != identity.endswith("-infra"):
                problems.append(f"{identity} must not trust {subject}")
    problems += [
        f"{subject} is trusted by {', '.join(sorted(ids))}"
        for subject, ids in sorted(owners.items())
        if len(ids) > 1
    ]
    return problems


def _assignments(resources: list[tuple[str, dict]]) -> dict[str, set[tuple[str, str]]]:
    """principal id -> {(role guid, scope)}"""
    held: dict[str, set[tuple[str, str]]] = {}
    for kind, props in resources:
        if kind == ROLE:
            held.setdefault(str(props.get("principalId")), set()).add(
                (_role(props), str(props.get("scope")))
            )
    return held


def contributor_is_only_the_infra_identity(
    resources: list[tuple[str, dict]], stack: str
) -> list[str]:
    """One principal holds Contributor, and only that and the delegation: not an ML identity."""
    holders = {p: h for p, h in _assignments(resources).items() if CONTRIBUTOR in {r for r, _ in h}}
    problems = [
        f"{principal} holds Contributor and other roles: use separate identities"
        for principal, held in sorted(holders.items())
        if {role for role, _ in held} - {CONTRIBUTOR, RBAC_ADMINISTRATOR}
    ]
    if len(holders) > 1:
        problems.append(f"{len(holders)} principals hold Contributor; only the infra identity may")
    return problems


def prod_monitor_can_read_collected_data(
    resources: list[tuple[str, dict]], stack: str
) -> list[str]:
    """Prod has a read-only principal for the drift monitor: Reader on the workspace and
    Storage Blob Data Reader on the storage account, nothing else (Reader reaches no blobs)."""
    if stack != "prod":
        return []
    for held in _assignments(resources).values():
        kinds = {
            (role, "/workspaces/" in scope, "/storageAccounts/" in scope) for role, scope in held
        }
        if kinds == {(READER, True, False), (BLOB_DATA_READER, False, True)}:
            return []
    return ["prod needs a read-only monitor: Reader on the workspace and Storage Blob Data Reader"]


def prod_secrets_only_for_prods_writer(resources: list[tuple[str, dict]], stack: str) -> list[str]:
    """Prod's secrets key is used only by the identity that writes prod's state (and the
    bootstrapping person): the preview identity, and every other environment's, cannot decrypt
    prod's secrets."""
    writers = {
        str(p.get("principalId"))
        for k, p in resources
        if k == ROLE
        and _STATE_CONTAINER.search(str(p.get("scope", "")))
        and _state_stacks_written(p) == {"prod"}
    }
    return [
        f"{p.get('principalId')} may decrypt prod's state secrets but does not write prod's state"
        for k, p in resources
        if k == ROLE
        and _role(p) == KEY_VAULT_CRYPTO_USER
        and (m := _STATE_KEY.search(str(p.get("scope", ""))))
        and m.group(1) == "prod"
        and p.get("principalType") not in ("User", "Group")
        and str(p.get("principalId")) not in writers
    ]


METRIC_ALERT = "azure-native:monitor:MetricAlert"
ACTIVITY_LOG_ALERT = "azure-native:monitor:ActivityLogAlert"
DEPLOYMENT_WRITE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/write"


def _action_groups(kind: str, props: dict) -> list:
    actions = props.get("actions") or ([] if kind == METRIC_ALERT else {})
    return list(actions if kind == METRIC_ALERT else actions.get("actionGroups") or [])


def prod_alerts_page_someone(resources: list[tuple[str, dict]], stack: str) -> list[str]:
    """Prod watches its rollouts: a failed online deployment raises an activity-log alert, and
    every prod alert rule names an action group (a rule without one pages nobody)."""
    if stack != "prod":
        return []
    rules = [(k, p) for k, p in resources if k in (METRIC_ALERT, ACTIVITY_LOG_ALERT)]
    problems = [
        f"prod alert rule {p.get('ruleName') or p.get('activityLogAlertName')} pages nobody"
        for k, p in rules
        if not _action_groups(k, p)
    ]
    watches_rollouts = any(
        k == ACTIVITY_LOG_ALERT
        and any(
            c.get("field") == "operationName" and c.get("equals") == DEPLOYMENT_WRITE
            for c in (p.get("condition") or {}).get("allOf") or []
        )
        for k, p in rules
    )
    if not watches_rollouts:
        problems.append("prod needs an activity-log alert on failed online deployments")
    return problems


STACK_RULES: dict[str, tuple[str, StackRule]] = {
    "github-subjects-immutable": (
        "Every GitHub door trusts the immutable subject.",
        subjects_are_immutable,
    ),
    "one-identity-per-subject": (
        "No GitHub subject opens two identities; infrastructure identities open only from *-infra.",
        one_identity_per_subject,
    ),
    "contributor-separate-identity": (
        "The Contributor identity holds no ML role.",
        contributor_is_only_the_infra_identity,
    ),
    "prod-monitor-read-path": (
        "Prod's monitor can read the workspace and the collected data, and nothing else.",
        prod_monitor_can_read_collected_data,
    ),
    "prod-secrets-own-identity": (
        "Prod's state secrets key is used only by prod's infrastructure identity.",
        prod_secrets_only_for_prods_writer,
    ),
    "prod-alerts-page": (
        "Prod alerts on failed deployments, and every prod alert rule names an action group.",
        prod_alerts_page_someone,
    ),
}


def stack_of(urn: str) -> str:
    """urn:pulumi:STACK::PROJECT::TYPE::NAME -> STACK"""
    return urn.split(":", 3)[2].split("::", 1)[0] if urn.startswith("urn:pulumi:") else ""

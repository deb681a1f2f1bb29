"""The guardrails as plain functions: (resource type, properties, stack) -> problems.

__main__.py wraps each in a mandatory pulumi-policy ResourceValidationPolicy;
tests call them directly on violating and compliant resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
_SUBSCRIPTION_OR_WIDER = re.compile(
    r"^(/|/subscriptions/[^/]+/?|/providers/Microsoft\.Management/managementGroups/[^/]+/?)$", re.I
)

Rule = Callable[[str, dict, str], list[str]]


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
    role = str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
    if role in (OWNER, USER_ACCESS_ADMINISTRATOR):
        name = "Owner" if role == OWNER else "User Access Administrator"
        problems.append(f"role assignments must not grant {name}")
    return problems


RULES: dict[str, tuple[str, Rule]] = {
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
}


def stack_of(urn: str) -> str:
    """urn:pulumi:STACK::PROJECT::TYPE::NAME -> STACK"""
    return urn.split(":", 3)[2].split("::", 1)[0] if urn.startswith("urn:pulumi:") else ""

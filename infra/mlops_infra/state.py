"""Where Pulumi keeps the stacks' state in CI, with no stored secret.

The shared stack creates a blob container (Entra-only: shared keys off) and a
key vault key; Pulumi logs in with `azblob://CONTAINER?storage_account=ACCOUNT`
and encrypts stack secrets with `azurekeyvault://VAULT.vault.azure.net/keys/KEY`.
Both authenticate with the Azure login of the job (OIDC), so workflows need
only two repository variables. CI identities get data access to exactly these
two resources: infrastructure identities write, the preview identity reads.
"""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization, keyvault, storage

from mlops_infra.naming import Names
from mlops_infra.settings import Settings
from mlops_infra.storage_accounts import entra_only_account
from mlops_infra.vaults import rbac_vault

CONTAINER = "pulumi-state"
KEY = "pulumi-secrets"
ROLES = {
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    # encrypt and decrypt with a key (the azurekeyvault secrets provider needs both)
    "Key Vault Crypto User": "12338af0-0e69-4776-bea7-57ae8d297424",
}


def backend_url(settings: Settings) -> str:
    """`pulumi login` URL: Pulumi's azblob backend, authenticated by the Azure login."""
    return f"azblob://{CONTAINER}?storage_account={Names.of(settings, 'shared').storage_account}"


def secrets_provider(settings: Settings) -> str:
    return f"azurekeyvault://{Names.of(settings, 'shared').key_vault}.vault.azure.net/keys/{KEY}"


def _group_id(settings: Settings) -> str:
    shared = Names.of(settings, "shared")
    return f"/subscriptions/{settings.subscription_id}/resourceGroups/{shared.resource_group}"


def container_id(settings: Settings) -> str:
    account = Names.of(settings, "shared").storage_account
    return (
        f"{_group_id(settings)}/providers/Microsoft.Storage/storageAccounts/{account}"
        f"/blobServices/default/containers/{CONTAINER}"
    )


def key_id(settings: Settings) -> str:
    vault = Names.of(settings, "shared").key_vault
    return f"{_group_id(settings)}/providers/Microsoft.KeyVault/vaults/{vault}/keys/{KEY}"


class StateBackend(pulumi.ComponentResource):
    """The state container and the secrets key, in the shared resource group."""

    def __init__(self, settings: Settings, group: pulumi.Input[str], opts=None):
        super().__init__("mlops:infra:StateBackend", "state", None, opts)
        names = Names.of(settings, "shared")
        child = pulumi.ResourceOptions(parent=self)
        account = entra_only_account(
            "state-storage", names.storage_account, group, settings, "Standard_ZRS", child
        )
        storage.BlobServiceProperties(
            "state-versions",
            account_name=account.name,
            resource_group_name=group,
            blob_services_name="default",
            is_versioning_enabled=True,  # every checkpoint Pulumi overwrites stays readable
            delete_retention_policy={"enabled": True, "days": 30},
            opts=child,
        )
        self.container = storage.BlobContainer(
            "state-container",
            account_name=account.name,
            resource_group_name=group,
            container_name=CONTAINER,
            public_access="None",
            opts=child,
        )
        # losing this key loses every stack secret: it can never be purged early
        vault = rbac_vault("state-vault", names.key_vault, group, settings, True, child)
        self.key = keyvault.Key(
            "state-key",
            key_name=KEY,
            vault_name=vault.name,
            resource_group_name=group,
            properties={"kty": "RSA", "key_size": 2048, "key_ops": ["encrypt", "decrypt"]},
            opts=child,
        )
        self.register_outputs({})


def grant(
    settings: Settings,
    backend: StateBackend,
    persona: str,
    principal_id: pulumi.Input[str],
    write: bool,
) -> None:
    """Data access to the state container and use of the secrets key, nothing more. Scopes are
    the container's and the key's own ids, so ARM sees each assignment after its scope exists."""
    blob_role = "Storage Blob Data Contributor" if write else "Storage Blob Data Reader"
    for role, resource, scope_name, scope in (
        (blob_role, backend.container, "state-container", container_id(settings)),
        ("Key Vault Crypto User", backend.key, "state-key", key_id(settings)),
    ):
        authorization.RoleAssignment(
            f"{persona}-{role.lower().replace(' ', '-')}-{scope_name}",
            role_assignment_name=str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{settings.stack}/{persona}/{role}/{scope}")
            ),
            principal_id=principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=(
                f"/subscriptions/{settings.subscription_id}/providers/"
                f"Microsoft.Authorization/roleDefinitions/{ROLES[role]}"
            ),
            scope=resource.id,
        )

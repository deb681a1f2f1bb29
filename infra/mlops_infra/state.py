"""Where Pulumi keeps the stacks' state, with no stored secret.

The shared stack creates one blob container (Entra-only: shared keys off) and one key vault
key per stack; Pulumi logs in with `azblob://CONTAINER?storage_account=ACCOUNT` and encrypts
each stack's secrets with `azurekeyvault://VAULT.vault.azure.net/keys/pulumi-secrets-<stack>`.
Both authenticate with the Azure login (OIDC in CI), so workflows need no token. One container,
because a stack reference reads another stack only in the same backend; who may write which
stack's paths in it, and use which key, is state_access.py's.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import keyvault, storage

from mlops_infra.naming import Names
from mlops_infra.settings import ENVIRONMENTS, GITHUB, SHARED, Settings
from mlops_infra.storage_accounts import entra_only_account
from mlops_infra.vaults import rbac_vault

CONTAINER = "pulumi-state"
KEY_PREFIX = "pulumi-secrets"
STACKS = (SHARED, *ENVIRONMENTS, GITHUB)


def backend_url(settings: Settings) -> str:
    """`pulumi login` URL: Pulumi's azblob backend, authenticated by the Azure login."""
    return f"azblob://{CONTAINER}?storage_account={Names.of(settings, 'shared').storage_account}"


def key_name(stack: str) -> str:
    """Each stack its own key: whoever may decrypt one stack's secrets reads no other's."""
    return f"{KEY_PREFIX}-{stack}"


def secrets_provider(settings: Settings, stack: str) -> str:
    vault = Names.of(settings, "shared").key_vault
    return f"azurekeyvault://{vault}.vault.azure.net/keys/{key_name(stack)}"


def _group_id(settings: Settings) -> str:
    shared = Names.of(settings, "shared")
    return f"/subscriptions/{settings.subscription_id}/resourceGroups/{shared.resource_group}"


def container_id(settings: Settings) -> str:
    account = Names.of(settings, "shared").storage_account
    return (
        f"{_group_id(settings)}/providers/Microsoft.Storage/storageAccounts/{account}"
        f"/blobServices/default/containers/{CONTAINER}"
    )


def key_id(settings: Settings, stack: str) -> str:
    vault = Names.of(settings, "shared").key_vault
    return (
        f"{_group_id(settings)}/providers/Microsoft.KeyVault/vaults/{vault}/keys/{key_name(stack)}"
    )


class StateBackend(pulumi.ComponentResource):
    """The state container and every stack's secrets key, in the shared resource group."""

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
        self.keys = {
            stack: keyvault.Key(
                f"state-key-{stack}",
                key_name=key_name(stack),
                vault_name=vault.name,
                resource_group_name=group,
                properties={"kty": "RSA", "key_size": 2048, "key_ops": ["encrypt", "decrypt"]},
                opts=child,
            )
            for stack in STACKS
        }
        self.register_outputs({})

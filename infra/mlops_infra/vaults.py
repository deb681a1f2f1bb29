"""The key vaults of the estate: each environment's, and the one holding the state's secrets key."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import keyvault

from mlops_infra.settings import Settings


def rbac_vault(
    logical: str,
    name: str,
    group: pulumi.Input[str],
    settings: Settings,
    purge_protection: bool,
    opts: pulumi.ResourceOptions,
) -> keyvault.Vault:
    """A vault that authorises with Azure RBAC (no access policies) and keeps deleted items:
    90 days under purge protection, 7 otherwise."""
    return keyvault.Vault(
        logical,
        vault_name=name,
        resource_group_name=group,
        location=settings.location,
        properties={
            "tenant_id": settings.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enable_rbac_authorization": True,
            "enable_soft_delete": True,
            "soft_delete_retention_in_days": 90 if purge_protection else 7,
            # Azure accepts only true, or leaving it out, for this flag.
            **({"enable_purge_protection": True} if purge_protection else {}),
        },
        opts=opts,
    )

"""The storage accounts of the estate: each environment's, and the one holding Pulumi's state."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import storage

from mlops_infra.settings import Settings


def entra_only_account(
    logical: str,
    name: str,
    group: pulumi.Input[str],
    settings: Settings,
    sku: str,
    opts: pulumi.ResourceOptions,
    **extra,
) -> storage.StorageAccount:
    """A StorageV2 account reached only with Entra tokens over TLS 1.2: no account key (so no
    SAS signed with one), no public blob access."""
    return storage.StorageAccount(
        logical,
        account_name=name,
        resource_group_name=group,
        location=settings.location,
        kind="StorageV2",
        sku={"name": sku},
        allow_blob_public_access=False,
        allow_shared_key_access=False,
        minimum_tls_version="TLS1_2",
        enable_https_traffic_only=True,
        opts=opts,
        **extra,
    )

"""The shared stack: the model registry every environment uses, and the preview identity."""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization, machinelearningservices, managedidentity, resources

from mlops_infra import access
from mlops_infra.environment import GITHUB_AUDIENCE, GITHUB_ISSUER
from mlops_infra.naming import Names
from mlops_infra.settings import Settings


def pull_request_subject(repository: str) -> str:
    return f"repo:{repository}:pull_request"


class Shared(pulumi.ComponentResource):
    def __init__(self, settings: Settings, opts=None):
        super().__init__("mlops:infra:Shared", "shared", None, opts)
        names = Names.of(settings, "shared")
        child = pulumi.ResourceOptions(parent=self)
        group = resources.ResourceGroup(
            "group",
            resource_group_name=names.resource_group,
            location=settings.location,
            opts=child,
        )
        self.registry = machinelearningservices.Registry(
            "registry",
            registry_name=names.registry,
            resource_group_name=group.name,
            location=settings.location,
            identity={"type": "SystemAssigned"},
            region_details=[
                {
                    "location": settings.location,
                    "acr_details": [{"system_created_acr_account": {"acr_account_sku": "Premium"}}],
                    "storage_account_details": [
                        {
                            "system_created_storage_account": {
                                "storage_account_type": "Standard_LRS",
                                "allow_blob_public_access": False,
                                "storage_account_hns_enabled": False,
                            }
                        }
                    ],
                }
            ],
            opts=child,
        )
        self.preview = managedidentity.UserAssignedIdentity(
            "preview-identity",
            resource_name_=f"id-{settings.project}-pr-preview",
            resource_group_name=group.name,
            location=settings.location,
            opts=child,
        )
        managedidentity.FederatedIdentityCredential(
            "preview-federation",
            federated_identity_credential_resource_name="github-pull-requests",
            resource_name_=self.preview.name,
            resource_group_name=group.name,
            issuer=GITHUB_ISSUER,
            subject=pull_request_subject(settings.github_repository),
            audiences=[GITHUB_AUDIENCE],
            opts=child,
        )
        authorization.RoleAssignment(
            f"{access.PREVIEW}-reader-{access.RESOURCE_GROUP}",
            role_assignment_name=str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{names.suffix}/preview-reader")
            ),
            principal_id=self.preview.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=(
                f"/subscriptions/{settings.subscription_id}/providers/"
                f"Microsoft.Authorization/roleDefinitions/{access.ROLES['Reader']}"
            ),
            scope=group.id,
            opts=child,
        )
        self.register_outputs({})

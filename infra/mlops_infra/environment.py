"""One deployment environment (dev, preprod or prod) as one component."""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import (
    applicationinsights,
    authorization,
    containerregistry,
    keyvault,
    machinelearningservices,
    managedidentity,
    operationalinsights,
    resources,
    storage,
)

from mlops_infra import access
from mlops_infra.naming import Names
from mlops_infra.settings import Settings

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "api://AzureADTokenExchange"
COMPUTE_NAME = "cpu-cluster"


def github_subject(repository: str, env: str) -> str:
    """The subject GitHub presents for a job bound to an environment (not the branch ref)."""
    return f"repo:{repository}:environment:{env}"


def registry_id(settings: Settings) -> str:
    shared = Names.of(settings, "shared")
    return (
        f"/subscriptions/{settings.subscription_id}/resourceGroups/{shared.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/registries/{shared.registry}"
    )


def delegation_condition(role_ids: list[str]) -> str:
    """Limit a Role Based Access Control Administrator to assigning the matrix's own roles."""
    allowed = "{" + ", ".join(sorted(role_ids)) + "}"
    attribute = "Microsoft.Authorization/roleAssignments:RoleDefinitionId"

    def only_allowed(action: str, source: str) -> str:
        return (
            f"((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/{action}'}})) OR "
            f"(@{source}[{attribute}] ForAnyOfAnyValues:GuidEquals {allowed}))"
        )

    return only_allowed("write", "Request") + " AND " + only_allowed("delete", "Resource")


class Environment(pulumi.ComponentResource):
    """Resource group, monitoring, key vault, storage, image registry, Azure ML workspace,
    a compute cluster that scales to zero, identities and their role assignments."""

    def __init__(self, settings: Settings, preview_principal_id: pulumi.Input[str], opts=None):
        env = settings.stack
        super().__init__("mlops:infra:Environment", env, None, opts)
        names = Names.of(settings)
        child = pulumi.ResourceOptions(parent=self)
        self.names = names

        group = resources.ResourceGroup(
            "group",
            resource_group_name=names.resource_group,
            location=settings.location,
            opts=child,
        )
        rg = group.name
        logs = operationalinsights.Workspace(
            "logs",
            workspace_name=names.log_analytics,
            resource_group_name=rg,
            location=settings.location,
            sku={"name": "PerGB2018"},
            retention_in_days=30,
            opts=child,
        )
        insights = applicationinsights.Component(
            "insights",
            resource_name_=names.app_insights,
            resource_group_name=rg,
            location=settings.location,
            kind="web",
            application_type="web",
            workspace_resource_id=logs.id,
            opts=child,
        )
        vault = keyvault.Vault(
            "vault",
            vault_name=names.key_vault,
            resource_group_name=rg,
            location=settings.location,
            properties={
                "tenant_id": settings.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": 90 if settings.purge_protection else 7,
                # Azure accepts only true, or leaving it out, for this flag.
                **({"enable_purge_protection": True} if settings.purge_protection else {}),
            },
            opts=child,
        )
        account = storage.StorageAccount(
            "storage",
            account_name=names.storage_account,
            resource_group_name=rg,
            location=settings.location,
            kind="StorageV2",
            sku={"name": "Standard_LRS"},
            allow_blob_public_access=False,
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            opts=child,
        )
        images = containerregistry.Registry(
            "images",
            registry_name=names.container_registry,
            resource_group_name=rg,
            location=settings.location,
            sku={"name": "Basic"},
            admin_user_enabled=False,
            opts=child,
        )
        self.workspace = machinelearningservices.Workspace(
            "workspace",
            workspace_name=names.workspace,
            resource_group_name=rg,
            location=settings.location,
            identity={"type": "SystemAssigned"},
            sku={"name": "Basic", "tier": "Basic"},
            storage_account=account.id,
            key_vault=vault.id,
            application_insights=insights.id,
            container_registry=images.id,
            opts=child,
        )

        def identity(role: str) -> managedidentity.UserAssignedIdentity:
            return managedidentity.UserAssignedIdentity(
                f"{role}-identity",
                resource_name_=names.identity(role),
                resource_group_name=rg,
                location=settings.location,
                opts=child,
            )

        self.automation = identity("github")
        self.infra_automation = identity("infra")
        compute_identity = identity("compute")
        self.endpoint_identity = identity("endpoint")
        subject = github_subject(settings.github_repository, env)
        for role, ident in (("github", self.automation), ("infra", self.infra_automation)):
            managedidentity.FederatedIdentityCredential(
                f"{role}-federation",
                federated_identity_credential_resource_name=f"github-{env}",
                resource_name_=ident.name,
                resource_group_name=rg,
                issuer=GITHUB_ISSUER,
                subject=subject,
                audiences=[GITHUB_AUDIENCE],
                opts=child,
            )

        self.compute = machinelearningservices.Compute(
            "compute",
            compute_name=COMPUTE_NAME,
            workspace_name=self.workspace.name,
            resource_group_name=rg,
            location=settings.location,
            identity={
                "type": "UserAssigned",
                "user_assigned_identities": [compute_identity.id],
            },
            # typed arguments: `properties` is a union, so a plain dict would keep snake_case keys
            properties=machinelearningservices.AmlComputeArgs(
                compute_type="AmlCompute",
                properties=machinelearningservices.AmlComputePropertiesArgs(
                    vm_size=settings.compute_vm_size,
                    vm_priority="Dedicated",
                    scale_settings=machinelearningservices.ScaleSettingsArgs(
                        min_node_count=0,
                        max_node_count=settings.compute_max_nodes,
                        node_idle_time_before_scale_down="PT5M",
                    ),
                ),
            ),
            opts=child,
        )

        principals = {
            access.DATA_SCIENTISTS: (settings.data_scientists_group, "Group"),
            access.ML_ENGINEERS: (settings.ml_engineers_group, "Group"),
            access.AUTOMATION: (self.automation.principal_id, "ServicePrincipal"),
            access.INFRA_AUTOMATION: (self.infra_automation.principal_id, "ServicePrincipal"),
            access.COMPUTE: (compute_identity.principal_id, "ServicePrincipal"),
            access.ENDPOINT: (self.endpoint_identity.principal_id, "ServicePrincipal"),
            access.PREVIEW: (preview_principal_id, "ServicePrincipal"),
        }
        scopes = {
            access.WORKSPACE: self.workspace.id,
            access.RESOURCE_GROUP: group.id,
            access.STORAGE: account.id,
            access.CONTAINER_REGISTRY: images.id,
            access.MODEL_REGISTRY: registry_id(settings),
        }
        delegable = [
            access.ROLES[g.role]
            for _, g in access.grants_for(env)
            if g.role not in ("Contributor", "Role Based Access Control Administrator")
        ]
        for persona, grant in access.grants_for(env):
            principal, kind = principals[persona]
            key = f"{persona}/{grant.role}/{grant.scope}"
            delegating = grant.role == "Role Based Access Control Administrator"
            authorization.RoleAssignment(
                f"{persona}-{grant.role.lower().replace(' ', '-')}-{grant.scope}",
                # a stable name per (stack, persona, role, scope): re-runs update, never duplicate
                role_assignment_name=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{names.suffix}/{key}")),
                principal_id=principal,
                principal_type=kind,
                role_definition_id=(
                    f"/subscriptions/{settings.subscription_id}/providers/"
                    f"Microsoft.Authorization/roleDefinitions/{access.ROLES[grant.role]}"
                ),
                scope=scopes[grant.scope],
                condition=delegation_condition(delegable) if delegating else None,
                condition_version="2.0" if delegating else None,
                opts=child,
            )

        self.register_outputs({})

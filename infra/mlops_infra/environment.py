"""One deployment environment (dev, preprod or prod) as one component."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import (
    applicationinsights,
    containerregistry,
    machinelearningservices,
    operationalinsights,
    resources,
)

from mlops_infra import access, alerts, events
from mlops_infra.assignments import assign, delegation_condition, slug
from mlops_infra.naming import Names
from mlops_infra.settings import Settings
from mlops_infra.storage_accounts import entra_only_account
from mlops_infra.vaults import rbac_vault

COMPUTE_NAME = "cpu-cluster"


class Environment(pulumi.ComponentResource):
    """Resource group, monitoring, key vault, storage, image registry, Azure ML workspace,
    a compute cluster that scales to zero, and the role assignments inside the group.

    `identities` is the shared stack's entry for this environment: per persona of
    access.IDENTITIES, its `id`, `principalId` and `clientId`; `all_identities` holds every
    environment's, for the grants access.BORROWED makes to another environment's identity."""

    def __init__(
        self,
        settings: Settings,
        identities: pulumi.Output,
        preview_principal_id: pulumi.Input[str],
        all_identities: pulumi.Output | None = None,
        opts=None,
    ):
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
        vault = rbac_vault("vault", names.key_vault, rg, settings, settings.purge_protection, child)
        account = entra_only_account(
            "storage",
            names.storage_account,
            rg,
            settings,
            "Standard_LRS",
            child,
            # with no account key the workspace needs identity-based system datastores
            # (learn.microsoft.com/azure/machine-learning/how-to-disable-local-auth-storage,
            # in preview); the portal reaches blobs with Entra too
            default_to_o_auth_authentication=True,
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
            # the system datastores use Entra identities, not the (disabled) account key
            system_datastores_auth_mode="Identity",
            opts=child,
        )

        def of(persona: str, key: str) -> pulumi.Output[str]:
            return identities.apply(lambda found: found[persona][key])

        compute_identity = of(access.COMPUTE, "id")
        self.compute = machinelearningservices.Compute(
            "compute",
            compute_name=COMPUTE_NAME,
            workspace_name=self.workspace.name,
            resource_group_name=rg,
            location=settings.location,
            identity={
                "type": "UserAssigned",
                "user_assigned_identities": [compute_identity],
            },
            # typed arguments: `properties` is a union, so a plain dict would keep snake_case keys
            properties=machinelearningservices.AmlComputeArgs(
                compute_type="AmlCompute",
                properties=machinelearningservices.AmlComputePropertiesArgs(
                    vm_size=settings.compute_vm_size,
                    vm_priority="Dedicated",
                    # SSH closed on every node; NotSpecified opens it on nodes without a VNet
                    remote_login_port_public_access="Disabled",
                    # Nodes without public IPs need a subnet or a managed network, which this
                    # workspace has not; the policy demands it once a subnet is set.
                    enable_node_public_ip=True,
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
            **{
                persona: (of(persona, "principalId"), "ServicePrincipal")
                for persona in access.identities_in(env)
            },
            access.PREVIEW: (preview_principal_id, "ServicePrincipal"),
        }
        for persona, (owner_env, owner) in access.BORROWED.items():  # another env's identity
            if (
                all_identities is not None
                and persona in access.MATRIX
                and env in access.MATRIX[persona]
            ):
                principal = all_identities.apply(
                    lambda found, e=owner_env, o=owner: found[e][o]["principalId"]
                )
                principals[persona] = (principal, "ServicePrincipal")
        scopes = {
            access.WORKSPACE: self.workspace.id,
            access.RESOURCE_GROUP: group.id,
            access.STORAGE: account.id,
            access.CONTAINER_REGISTRY: images.id,
        }
        grants = access.environment_grants(env)
        # the matrix's own (role, principal) pairs of this stack, the only ones it may delegate
        delegable = [(p, g) for p, g in grants if g.role not in access.NOT_DELEGABLE]
        condition = pulumi.Output.all(*[principals[p][0] for p, _ in delegable]).apply(
            lambda ids: delegation_condition(
                _pairs(
                    [
                        (pid, principals[p][1], self._role_id(settings, g.role))
                        for pid, (p, g) in zip(ids, delegable, strict=True)
                    ]
                )
            )
        )
        for persona, grant in grants:
            principal, kind = principals[persona]
            delegating = grant.role == "Role Based Access Control Administrator"
            assign(
                slug(persona, grant),
                f"{names.suffix}/{persona}/{grant.role}/{grant.scope}",
                settings,
                principal,
                kind,
                grant.role,
                scopes[grant.scope],
                child,
                condition=condition if delegating else None,
            )

        # lifecycle events to the team's webhook, and the endpoint's alert rules (prod pages)
        self.events = events.lifecycle_events(
            settings, rg, self.workspace, f"{names.workspace}-events", child
        )
        self.alerts = alerts.environment_alerts(settings, names, group, self.workspace.id, child)

        self.register_outputs({})

    @staticmethod
    def _role_id(settings: Settings, role: str) -> str:
        return access.role_guid(role, settings.subscription_id, settings.project)


def _pairs(triples: list[tuple[str, str, str]]) -> dict[str, tuple[str, list[str]]]:
    """(principal, type, role) triples -> principal: (type, its roles), as delegation wants."""
    found: dict[str, tuple[str, list[str]]] = {}
    for principal, kind, role in triples:
        roles = found.setdefault(principal, (kind, []))[1]
        if role not in roles:
            roles.append(role)
    return found

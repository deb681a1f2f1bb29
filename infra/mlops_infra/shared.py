"""The shared stack: the model registry every environment uses, and every workload identity.

Identities and their federated credentials live here, in a resource group no
environment's infrastructure identity can write to: `pulumi up` from CI can
neither add trust to an identity nor hand it a registry role. A platform
administrator runs this stack (infra/README.md). It also holds where Pulumi keeps
every stack's state, and who may use it (state.py)."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization, machinelearningservices, managedidentity, resources

from mlops_infra import access, federation, state, state_access
from mlops_infra.assignments import assign, slug
from mlops_infra.naming import Names
from mlops_infra.settings import ENVIRONMENTS, Settings


def identity_logical_name(env: str, spec: access.Identity) -> str:
    return f"{env}-{spec.suffix}-identity"


PREVIEW_LOGICAL_NAME = "preview-identity"


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
        custom_roles = [
            authorization.RoleDefinition(
                f"role-{role.lower().replace(' ', '-')}",
                role_definition_id=access.role_guid(
                    role, settings.subscription_id, settings.project
                ),
                role_name=f"{role} ({settings.project}, {names.suffix})",  # unique per tenant
                description=spec.description,
                role_type="CustomRole",
                permissions=[{"actions": list(spec.actions)}],
                assignable_scopes=[scope],
                scope=scope,
                opts=child,
            )
            for role, spec in access.CUSTOM_ROLES.items()
            # a role assignable at a single resource is "not recommended" (learn.microsoft.com/
            # azure/role-based-access-control/custom-roles, "AssignableScopes"): the registry's
            # role is assignable in the shared resource group, and assigned on the registry
            for scope in [
                group.id
                if spec.assignable == access.MODEL_REGISTRY
                else f"/subscriptions/{settings.subscription_id}"
            ]
        ]

        def identity(logical: str, name: str) -> managedidentity.UserAssignedIdentity:
            return managedidentity.UserAssignedIdentity(
                logical,
                resource_name_=name,
                resource_group_name=group.name,
                location=settings.location,
                opts=child,
            )

        self.preview = identity(PREVIEW_LOGICAL_NAME, f"id-{settings.project}-pr-preview")
        federation.trust(
            "preview", self.preview, group.name, settings, federation.PULL_REQUEST, child
        )
        assign(
            f"{access.PREVIEW}-reader-{access.RESOURCE_GROUP}",
            f"{names.suffix}/preview-reader",
            settings,
            self.preview.principal_id,
            "ServicePrincipal",
            "Reader",
            group.id,
            child,
        )

        # Every environment's workload identities, each behind its own GitHub Environment.
        self.identities: dict[str, dict[str, managedidentity.UserAssignedIdentity]] = {}
        after_roles = pulumi.ResourceOptions(parent=self, depends_on=custom_roles)
        for env in ENVIRONMENTS:
            env_names = Names.of(settings, env)
            made = {
                persona: identity(identity_logical_name(env, spec), env_names.identity(spec.suffix))
                for persona, spec in access.identities_in(env).items()
            }
            self.identities[env] = made
            for persona, spec in access.identities_in(env).items():
                door = spec.door_in(env)
                if door:
                    federation.trust(
                        f"{env}-{spec.suffix}",
                        made[persona],
                        group.name,
                        settings,
                        federation.environment_context(door),
                        child,
                    )
            scopes = {
                access.MODEL_REGISTRY: self.registry.id,
                access.COMPUTE_IDENTITY: made[access.COMPUTE].id,
            }
            for persona, grant in access.shared_grants(env):
                assign(
                    f"{slug(persona, grant)}-{env}",
                    f"{names.suffix}/{env}/{persona}/{grant.role}/{grant.scope}",
                    settings,
                    made[persona].principal_id,
                    "ServicePrincipal",
                    grant.role,
                    scopes[grant.scope],
                    after_roles,
                )
        backend = state.StateBackend(settings, group.name, opts=child)
        # the bootstrapping person writes every stack; each infra identity only its own; previews
        # read, and decrypt no prod secret (state_access.py)
        state_access.grant_all(
            settings,
            backend,
            self.preview.principal_id,
            {
                env: made[access.INFRA_AUTOMATION].principal_id
                for env, made in self.identities.items()
            },
        )
        self.register_outputs({})

    def identity_outputs(self) -> dict:
        """What the environment stacks read: per environment and persona, the ids they need."""
        return {
            env: {
                persona: {"id": i.id, "principalId": i.principal_id, "clientId": i.client_id}
                for persona, i in made.items()
            }
            for env, made in self.identities.items()
        }

"""What each stack builds: `shared`, or one environment wired to the shared stack."""

from __future__ import annotations

import json

import pulumi

from mlops_infra import access, github, state
from mlops_infra.environment import Environment
from mlops_infra.naming import Names
from mlops_infra.settings import SHARED, Settings


def build(stack: str) -> None:
    settings = Settings.from_config(stack)  # stops with one sentence on any bad value
    if stack == SHARED:
        build_shared(settings)
    else:
        build_environment(settings)


def build_shared(settings: Settings) -> None:
    from mlops_infra.shared import Shared

    shared = Shared(settings)
    pulumi.export("registryName", shared.registry.name)
    pulumi.export("previewPrincipalId", shared.preview.principal_id)
    pulumi.export("previewClientId", shared.preview.client_id)
    pulumi.export("identities", shared.identity_outputs())
    pulumi.export("stateBackendUrl", state.backend_url(settings))
    providers = {stack: state.secrets_provider(settings, stack) for stack in state.STACKS}
    pulumi.export("secretsProviders", providers)
    if settings.manage_github:
        github.repository(
            settings,
            {
                "AZURE_PREVIEW_CLIENT_ID": shared.preview.client_id,
                "AZURE_TENANT_ID": settings.tenant_id,
                "AZURE_SUBSCRIPTION_ID": settings.subscription_id,
                # where the workflows find the stacks' state and their secrets key
                "PULUMI_BACKEND_URL": state.backend_url(settings),
                # each stack's own key: fromJSON(vars.PULUMI_SECRETS_PROVIDERS)[stack]
                "PULUMI_SECRETS_PROVIDERS": json.dumps(providers, sort_keys=True),
            },
        )


def build_environment(settings: Settings) -> None:
    shared_stack = settings.shared_stack or f"organization/{pulumi.get_project()}/shared"
    shared = pulumi.StackReference(shared_stack)
    env = settings.stack
    all_identities = shared.require_output("identities")
    identities = all_identities.apply(lambda found: found[env])

    def client_id(persona: str) -> pulumi.Output[str]:
        return identities.apply(lambda found: found[persona]["clientId"])

    environment = Environment(
        settings,
        identities,
        preview_principal_id=shared.require_output("previewPrincipalId"),
        all_identities=all_identities,
    )
    common = {
        "AZURE_TENANT_ID": settings.tenant_id,
        "AZURE_SUBSCRIPTION_ID": settings.subscription_id,
        "AZURE_RESOURCE_GROUP": environment.names.resource_group,
        "AZURE_ML_WORKSPACE": environment.names.workspace,
        "AZURE_ML_REGISTRY": Names.of(settings, "shared").registry,  # the name the code reads
    }
    # One GitHub Environment per identity: its variables name only the identity it opens.
    doors = {
        access.IDENTITIES[persona].door_in(env): {
            "AZURE_INFRA_CLIENT_ID" if persona == access.INFRA_AUTOMATION else "AZURE_CLIENT_ID": (
                client_id(persona)
            ),
            **common,
        }
        for persona in access.identities_in(env)
        if access.IDENTITIES[persona].door
    }
    for name, value in doors[env].items():
        pulumi.export(name, value)
    pulumi.export("AZURE_INFRA_CLIENT_ID", doors[f"{env}-infra"]["AZURE_INFRA_CLIENT_ID"])
    if settings.manage_github:
        for door, variables in doors.items():
            github.environment(settings, door, variables)

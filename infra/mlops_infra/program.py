"""What each stack builds: `shared`, or one environment wired to the shared stack."""

from __future__ import annotations

import pulumi

from mlops_infra import access, github
from mlops_infra.environment import Environment
from mlops_infra.naming import Names
from mlops_infra.settings import ENVIRONMENTS, SHARED, Settings


def build(stack: str) -> None:
    settings = Settings.from_config(stack)
    if stack == SHARED:
        build_shared(settings)
    elif stack in ENVIRONMENTS:
        build_environment(settings)
    else:
        raise ValueError(f"stack {stack!r} is none of {SHARED}, {', '.join(ENVIRONMENTS)}")


def build_shared(settings: Settings) -> None:
    from mlops_infra.shared import Shared

    shared = Shared(settings)
    pulumi.export("registryName", shared.registry.name)
    pulumi.export("previewPrincipalId", shared.preview.principal_id)
    pulumi.export("previewClientId", shared.preview.client_id)
    pulumi.export("identities", shared.identity_outputs())
    if settings.manage_github:
        variables = {
            "AZURE_PREVIEW_CLIENT_ID": shared.preview.client_id,
            "AZURE_TENANT_ID": settings.tenant_id,
            "AZURE_SUBSCRIPTION_ID": settings.subscription_id,
        }
        backend = pulumi.Config("mlops").get("pulumiBackendUrl")
        if backend:  # where the workflows find the stacks' state
            variables["PULUMI_BACKEND_URL"] = backend
        github.repository(settings, variables)


def build_environment(settings: Settings) -> None:
    shared_stack = (
        pulumi.Config("mlops").get("sharedStack") or f"organization/{pulumi.get_project()}/shared"
    )
    shared = pulumi.StackReference(shared_stack)
    env = settings.stack
    identities = shared.require_output("identities").apply(lambda found: found[env])

    def client_id(persona: str) -> pulumi.Output[str]:
        return identities.apply(lambda found: found[persona]["clientId"])

    environment = Environment(
        settings, identities, preview_principal_id=shared.require_output("previewPrincipalId")
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

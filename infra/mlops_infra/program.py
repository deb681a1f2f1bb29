"""What each stack builds: `shared`, or one environment wired to the shared stack."""

from __future__ import annotations

import pulumi

from mlops_infra import github
from mlops_infra.environment import Environment, registry_id
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
    env = Environment(settings, preview_principal_id=shared.require_output("previewPrincipalId"))
    outputs = {
        "AZURE_CLIENT_ID": env.automation.client_id,
        "AZURE_INFRA_CLIENT_ID": env.infra_automation.client_id,
        "AZURE_TENANT_ID": settings.tenant_id,
        "AZURE_SUBSCRIPTION_ID": settings.subscription_id,
        "AZURE_RESOURCE_GROUP": env.names.resource_group,
        "AZURE_ML_WORKSPACE": env.names.workspace,
        "AZURE_ML_REGISTRY_ID": registry_id(settings),
        "AZURE_ENDPOINT_IDENTITY_ID": env.endpoint_identity.id,
    }
    for name, value in outputs.items():
        pulumi.export(name, value)
    if settings.manage_github:
        github.environment(settings, outputs)

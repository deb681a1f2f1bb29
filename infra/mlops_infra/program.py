"""What each stack builds: `shared`, one environment wired to the shared stack, or `github`.

Every pulumi_github resource is the github stack's: the environments' stacks are applied by
infra.yml and previewed, like shared, by infra-preview.yml, with an Azure login and no GitHub
token; only an administrator runs the github stack (infra/README.md, "The GitHub side")."""

from __future__ import annotations

import json

import pulumi

from mlops_infra import access, github, state
from mlops_infra.environment import Environment
from mlops_infra.naming import Names
from mlops_infra.settings import ENVIRONMENTS, GITHUB, SHARED, Settings


def build(stack: str) -> None:
    settings = Settings.from_config(stack)  # stops with one sentence on any bad value
    if stack == SHARED:
        build_shared(settings)
    elif stack == GITHUB:
        build_github(settings)
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


def shared_stack(settings: Settings) -> pulumi.StackReference:
    return pulumi.StackReference(
        settings.shared_stack or f"organization/{pulumi.get_project()}/shared"
    )


def doors(
    settings: Settings, env: str, identities: pulumi.Output
) -> dict[str, dict[str, pulumi.Input[str]]]:
    """One GitHub Environment per identity of `env` (identities: the shared stack's output for
    it): its variables name only the identity it opens."""
    names = Names.of(settings, env)
    common = {
        "AZURE_TENANT_ID": settings.tenant_id,
        "AZURE_SUBSCRIPTION_ID": settings.subscription_id,
        "AZURE_RESOURCE_GROUP": names.resource_group,
        "AZURE_ML_WORKSPACE": names.workspace,
        "AZURE_ML_REGISTRY": Names.of(settings, "shared").registry,  # the name the code reads
    }

    def client_id(persona: str) -> pulumi.Output[str]:
        return identities.apply(lambda found: found[persona]["clientId"])

    return {
        access.IDENTITIES[persona].door_in(env): {
            "AZURE_INFRA_CLIENT_ID" if persona == access.INFRA_AUTOMATION else "AZURE_CLIENT_ID": (
                client_id(persona)
            ),
            **common,
        }
        for persona in access.identities_in(env)
        if access.IDENTITIES[persona].door
    }


def build_environment(settings: Settings) -> None:
    shared = shared_stack(settings)
    env = settings.stack
    all_identities = shared.require_output("identities")
    identities = all_identities.apply(lambda found: found[env])
    Environment(
        settings,
        identities,
        preview_principal_id=shared.require_output("previewPrincipalId"),
        all_identities=all_identities,
    )
    own = doors(settings, env, identities)
    for name, value in own[env].items():
        pulumi.export(name, value)
    pulumi.export("AZURE_INFRA_CLIENT_ID", own[f"{env}-infra"]["AZURE_INFRA_CLIENT_ID"])


def build_github(settings: Settings) -> None:
    """The GitHub side of the estate: what the workflows read and the gates they wait for."""
    if not settings.manage_github:
        return
    shared = shared_stack(settings)
    opts = github.provider(settings)  # one provider: a second of the same name is a duplicate URN
    providers = {stack: state.secrets_provider(settings, stack) for stack in state.STACKS}
    github.repository(
        settings,
        opts,
        {
            "AZURE_PREVIEW_CLIENT_ID": shared.require_output("previewClientId"),
            "AZURE_TENANT_ID": settings.tenant_id,
            "AZURE_SUBSCRIPTION_ID": settings.subscription_id,
            # where the workflows find the stacks' state and their secrets key
            "PULUMI_BACKEND_URL": state.backend_url(settings),
            # each stack's own key: fromJSON(vars.PULUMI_SECRETS_PROVIDERS)[stack]
            "PULUMI_SECRETS_PROVIDERS": json.dumps(providers, sort_keys=True),
        },
    )
    all_identities = shared.require_output("identities")
    for env in ENVIRONMENTS:
        identities = all_identities.apply(lambda found, env=env: found[env])
        for door, variables in doors(settings, env, identities).items():
            github.environment(settings, door, variables, opts)

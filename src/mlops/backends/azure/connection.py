"""Where the azure backend connects, and as whom.

Settings come from environments/<env>.yml, overridden by the variables the
infra stacks publish to each GitHub Environment (AZURE_RESOURCE_GROUP, ...).
The credential never stores a secret: in GitHub Actions it exchanges a fresh
GitHub OIDC token for every Azure token it needs, so a job that outlives one
assertion (AADSTS700024) keeps working; elsewhere it is DefaultAzureCredential
(`az login` on a laptop).
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass

from mlops.config import EnvConfig
from mlops.errors import MlopsError

ARM_SCOPE = "https://management.azure.com/.default"
GITHUB_AUDIENCE = "api://AzureADTokenExchange"
VARIABLES_ENV = "MLOPS_VARS_ENV"  # the environment whose names a job's AZURE_* variables hold


@dataclass(frozen=True)
class AzureSettings:
    subscription_id: str
    resource_group: str
    workspace: str
    registry: str
    compute: str
    endpoint_identity_id: str | None

    @staticmethod
    def resolve(config: EnvConfig, environ: dict[str, str] | None = None) -> AzureSettings:
        environ = dict(os.environ if environ is None else environ)
        azure = config.azure
        # A job's variables name the workspace of the environment it is bound to (MLOPS_VARS_ENV,
        # set by the workflow): a verb about another environment, such as the release's gate
        # reading prod's champion from a preprod job, takes that environment's names from its
        # file. The subscription stays: every stack lives in the one infra/Pulumi.yaml names.
        bound = environ.get(VARIABLES_ENV)
        foreign = bool(bound) and bound != config.name

        def setting(variable: str, field: str | None, required: bool = True) -> str | None:
            own = None if foreign and field else environ.get(variable)
            value = own or (azure.get(field) if field else None)
            if required and not value:
                where = f" or `azure.{field}` in {config.path.as_posix()}" if field else ""
                raise MlopsError(f"the azure backend needs {variable}{where}; it is not set")
            return value

        return AzureSettings(
            subscription_id=setting("AZURE_SUBSCRIPTION_ID", None),
            resource_group=setting("AZURE_RESOURCE_GROUP", "resource_group"),
            workspace=setting("AZURE_ML_WORKSPACE", "workspace"),
            registry=setting("AZURE_ML_REGISTRY", "registry"),
            compute=azure.get("compute", "cpu-cluster"),
            endpoint_identity_id=setting("AZURE_ENDPOINT_IDENTITY_ID", None, required=False),
        )


def github_oidc_token() -> str:
    """A fresh GitHub Actions OIDC token for Entra's federated credential exchange."""
    url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"]
    separator = "&" if "?" in url else "?"
    request = urllib.request.Request(
        f"{url}{separator}audience={urllib.parse.quote(GITHUB_AUDIENCE)}",
        headers={"Authorization": f"Bearer {os.environ['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)["value"]


def credential():
    """Re-acquiring GitHub OIDC in Actions, DefaultAzureCredential elsewhere."""
    from azure.identity import ClientAssertionCredential, DefaultAzureCredential

    in_actions = "ACTIONS_ID_TOKEN_REQUEST_URL" in os.environ
    if in_actions and os.environ.get("AZURE_CLIENT_ID") and os.environ.get("AZURE_TENANT_ID"):
        return ClientAssertionCredential(
            tenant_id=os.environ["AZURE_TENANT_ID"],
            client_id=os.environ["AZURE_CLIENT_ID"],
            func=github_oidc_token,
        )
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def check_credential(cred) -> None:
    """Fail early, in one sentence, when no identity is available."""
    from azure.core.exceptions import ClientAuthenticationError

    try:
        cred.get_token(ARM_SCOPE)
    except ClientAuthenticationError:
        raise MlopsError(
            "no Azure credential is available: run `az login`, or in GitHub Actions log in "
            "with OIDC (AZURE_CLIENT_ID, AZURE_TENANT_ID and id-token: write)"
        ) from None

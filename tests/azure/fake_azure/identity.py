"""Who calls, and what their roles let them do: Entra tokens checked against the access matrix.

A FakeCredential is one identity (a persona of infra/mlops_infra/access.py in one
environment); its token names it, so the double knows who sends each request and
refuses what that identity's roles do not grant, with Azure's error shapes.
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass

from azure.core.credentials import AccessToken, AccessTokenInfo
from helpers import ROOT

if str(ROOT / "infra") not in sys.path:
    sys.path.insert(0, str(ROOT / "infra"))
from mlops_infra import access  # noqa: E402

EXPIRES = 4102444800
TENANT = "00000000-0000-0000-0000-0000000000aa"


def granted_roles(persona: str, env: str, scope_env: str | None = None) -> list[tuple[str, str]]:
    """The adapter onto the access matrix: (role, scope) pairs env's persona holds on the
    resources of scope_env (default: its own environment, and the shared registry).

    The one place the double reads infra's matrix; adapt it when the matrix changes shape.
    Another environment's resources are reached only through access.BORROWED personas."""
    if scope_env is None or scope_env == env:
        return [(g.role, g.scope) for g in access.MATRIX.get(persona, {}).get(env, [])]
    return [
        (g.role, g.scope)
        for borrowed, owner in getattr(access, "BORROWED", {}).items()
        if owner == (env, persona)
        for g in access.MATRIX.get(borrowed, {}).get(scope_env, [])
    ]


# Which identity runs each workflow job in CI (.github/workflows): the environment's automation,
# and monitor.yml its own read-only identity where the matrix has one.
CI_PERSONA = access.AUTOMATION
MONITOR_PERSONA = getattr(access, "MONITOR", access.AUTOMATION)


@dataclass(frozen=True)
class Identity:
    persona: str
    env: str

    def token(self, *scopes: str) -> str:
        """An Entra access token is a JWT whose audience is the scope's resource: the SDK reads
        `aud` and `tid` from it without verifying it (a pipeline job is refused unless `aud` is
        Azure ML's, azure/ai/ml/operations/_job_operations.py _set_headers_with_user_aml_token).
        Unsigned here; the double reads who calls from its claims."""
        audience = scopes[0].removesuffix("/.default") if scopes else ""  # resource of scope
        claims = {"aud": audience, "tid": TENANT, "persona": self.persona, "env": self.env}
        return ".".join(
            [_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""]  # no signature
        )

    @staticmethod
    def from_header(authorization: str | None) -> Identity | None:
        token = (authorization or "").removeprefix("Bearer ")
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
            return Identity(claims["persona"], claims["env"])
        except (ValueError, KeyError, TypeError):
            return None


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


class FakeCredential:
    """One Entra identity; its tokens say who it is."""

    def __init__(self, persona: str = CI_PERSONA, env: str = "dev"):
        self.identity = Identity(persona, env)

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.identity.token(*scopes), EXPIRES)

    def get_token_info(self, *scopes, **kwargs):
        return AccessTokenInfo(self.identity.token(*scopes), EXPIRES)


# What each built-in role allows, in the double's terms: control-plane read/write of the
# scope, and blob data read/write. Source: Azure built-in roles (learn.microsoft.com/azure/
# role-based-access-control/built-in-roles): Reader has only */read; Contributor and AzureML
# Data Scientist have control-plane actions and no DataActions; AzureML Registry User may read
# and write registry assets; Storage Blob Data Reader/Contributor hold the blob DataActions,
# Storage Queue/Table Data Contributor the queue and table ones.
CAN = {
    "Reader": {"read"},
    "Contributor": {"read", "write"},
    "AzureML Data Scientist": {"read", "write"},
    "AzureML Compute Operator": {"read"},
    "AzureML Registry User": {"read", "write"},
    "Storage Blob Data Reader": {"blob-read"},
    "Storage Blob Data Contributor": {"blob-read", "blob-write"},
    "Storage Queue Data Contributor": {"queue-write"},
    "Storage Table Data Contributor": {"table-write"},
}
# Custom roles (infra's CUSTOM_ROLES) do what their actions say.
CAN.update(
    {
        name: {a.rsplit("/", 1)[-1] for a in role.actions} & {"read", "write"}
        for name, role in getattr(access, "CUSTOM_ROLES", {}).items()
    }
)
# A role on the resource group reaches the resources inside it (Azure RBAC scope inheritance),
# autoscale settings among them; no role on the workspace reaches those.
AUTOSCALE_SETTINGS = "autoscale-settings"
INHERITS = {access.RESOURCE_GROUP: {access.WORKSPACE, access.STORAGE, AUTOSCALE_SETTINGS}}


def allowed(identity: Identity, action: str, scope: str, scope_env: str | None, extra=()) -> bool:
    """May identity perform action ("read", "write", "blob-read", "blob-write", "queue-write",
    "table-write") on the scope?

    scope_env is the environment owning the resource (None for the shared registry)."""
    # each environment's identities hold roles in that environment only, unless borrowed
    own = scope_env is None or scope_env == identity.env
    granted = granted_roles(identity.persona, identity.env, scope_env)
    for role, where in [*granted, *(extra if own else ())]:
        reaches = where == scope or scope in INHERITS.get(where, set())
        if reaches and action in CAN.get(role, set()):
            return True
    return False


def arm_denied(identity: Identity | None, action: str, scope_id: str) -> tuple[int, dict]:
    """ARM's refusal (source: learn.microsoft.com/azure/role-based-access-control/troubleshooting,
    "AuthorizationFailed ... does not have authorization to perform action"; the full sentence
    as quoted in MicrosoftLearning/mslearn-mlops#29 and microsoft/mlops-template-for-azureml-
    sdk-v2#9)."""
    who = f"{identity.persona}/{identity.env}" if identity else "anonymous"
    return 403, {
        "error": {
            "code": "AuthorizationFailed",
            "message": (
                f"The client '{who}' with object id '{who}' does not have authorization to "
                f"perform action '{action}' over scope '{scope_id}' or the scope is invalid. "
                "If access was recently granted, please refresh your credentials."
            ),
        }
    }

"""Resource names, from project, environment, subscription and a generation number.

Free of Pulumi, so `mlops init` and its consistency check use the same rules.
RULES holds Azure's rule for every kind of name built here, each with its source;
`problems(kind, name)` checks a name against it (tests sweep every project length
`mlops init` accepts and every stack)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Short codes where a name has no room for the whole stack name (key vault, storage).
STACK_CODES = {"dev": "dev", "preprod": "ppd", "prod": "prd", "shared": "shr"}


@dataclass(frozen=True)
class Rule:
    pattern: str  # the whole name must match
    min_length: int
    max_length: int
    scope: str  # where Azure wants the name unique
    source: str


# Azure naming rules ("Naming rules and restrictions for Azure resources", learn.microsoft.com
# azure-resource-manager/management/resource-name-rules, unless another source is named).
RULES = {
    # Microsoft.Resources/resourceGroups: 1-90, letters, digits, . _ - ( ), not ending in a period.
    "resource_group": Rule(r"[\w.()-]*[\w()-]", 1, 90, "subscription", "resource-name-rules"),
    # Microsoft.MachineLearningServices/workspaces: pattern of the REST spec (workspaceName);
    # a soft-deleted workspace keeps its name for 14 days (learn: concept-soft-delete).
    "workspace": Rule(
        r"[a-zA-Z0-9][a-zA-Z0-9_-]*", 3, 33, "resource group", "REST spec workspaceName"
    ),
    # Microsoft.MachineLearningServices/registries: pattern of the REST spec (registryName).
    # Its uniqueness scope is reported as the tenant; not confirmed in the docs at hand, and
    # the suffix covers any scope wider than the resource group.
    "registry": Rule(r"[a-zA-Z0-9][a-zA-Z0-9_-]*", 3, 33, "tenant", "REST spec registryName"),
    # Online endpoints: azure-ai-ml EndpointConfigurations (3-32, a letter first, alphanumeric
    # last); "Endpoint names must be unique within an Azure region" (learn: how-to-deploy-online-
    # endpoints).
    "endpoint": Rule(
        r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?", 3, 32, "region", "azure-ai-ml _endpoint.py"
    ),
    # Microsoft.KeyVault/vaults: 3-24, alphanumerics and hyphens, a letter first, a letter or
    # digit last, no consecutive hyphens; global, and a deleted vault stays soft-deleted.
    "key_vault": Rule(r"[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]", 3, 24, "global", "vaults"),
    # Microsoft.Storage/storageAccounts: 3-24 lowercase letters and digits; global.
    "storage_account": Rule(r"[a-z0-9]+", 3, 24, "global", "storageAccounts"),
    # Microsoft.ContainerRegistry/registries: 5-50 alphanumerics; global.
    "container_registry": Rule(r"[a-zA-Z0-9]+", 5, 50, "global", "ContainerRegistry"),
    # Microsoft.OperationalInsights/workspaces: REST spec pattern, 4-63 (Workspaces - Delete);
    # the name is kept 14 days after deletion and recreating it in the same group recovers it.
    "log_analytics": Rule(
        r"[A-Za-z0-9][A-Za-z0-9-]+[A-Za-z0-9]", 4, 63, "resource group", "REST spec"
    ),
    # Microsoft.Insights/components: 1-260, no % & \ ? / and not ending in a space or period.
    "app_insights": Rule(r"[^%&\\?/]*[^%&\\?/ .]", 1, 260, "resource group", "components"),
    # Microsoft.ManagedIdentity/userAssignedIdentities: 3-128, alphanumerics, - and _,
    # starting with a letter or digit.
    "identity": Rule(r"[a-zA-Z0-9][a-zA-Z0-9_-]*", 3, 128, "resource group", "identities"),
}


def problems(kind: str, name: str) -> list[str]:
    """What Azure would refuse about `name` as a `kind` of resource (empty when valid)."""
    rule = RULES[kind]
    found = []
    if not rule.min_length <= len(name) <= rule.max_length:
        found.append(
            f"{kind} name {name!r} has {len(name)} characters; Azure allows "
            f"{rule.min_length}-{rule.max_length}"
        )
    if not re.fullmatch(rule.pattern, name):
        found.append(f"{kind} name {name!r} does not match Azure's pattern {rule.pattern}")
    return found


@dataclass(frozen=True)
class Names:
    """Resource names: readable, and unique wherever Azure reserves a name.

    The suffix hashes subscription, project, stack and a generation number, so
    a re-run reuses every name. It is carried by every name that is global
    (key vault, storage, container registry), unique per tenant (the registry)
    or per region (endpoints), or held after deletion (workspace: 14 days of
    soft delete; key vault: 7-90). After destroying a stack, raise
    mlops:nameGeneration to get fresh names."""

    project: str
    env: str
    suffix: str
    shared_suffix: str  # the shared stack's, for the registry every environment uses

    @staticmethod
    def of(settings, env: str | None = None) -> Names:
        """Names for a stack's settings (project, subscription_id, name_generation)."""
        env = env or settings.stack
        return Names.build(
            settings.project, env, settings.subscription_id, settings.name_generation
        )

    @staticmethod
    def build(project: str, env: str, subscription_id: str, generation: int = 1) -> Names:
        def suffix(stack: str) -> str:
            seed = f"{subscription_id}/{project}/{stack}/{generation}"
            return hashlib.sha256(seed.encode()).hexdigest()[:6]

        return Names(project, env, suffix(env), suffix("shared"))

    @property
    def code(self) -> str:
        return STACK_CODES[self.env]

    @property
    def resource_group(self) -> str:
        return f"rg-{self.project}-{self.env}"

    @property
    def workspace(self) -> str:  # at most 4 + 12 + 1 + 7 + 1 + 6 = 31
        return f"mlw-{self.project}-{self.env}-{self.suffix}"

    @property
    def endpoint(self) -> str:  # at most 12 + 1 + 7 + 1 + 6 = 27
        return f"{self.project}-{self.env}-{self.suffix}"

    @property
    def log_analytics(self) -> str:
        return f"log-{self.project}-{self.env}"

    @property
    def app_insights(self) -> str:
        return f"appi-{self.project}-{self.env}"

    @property
    def key_vault(self) -> str:  # at most 3 + 10 + 1 + 3 + 1 + 6 = 24
        return f"kv-{self.project[:10]}-{self.code}-{self.suffix}"

    @property
    def storage_account(self) -> str:  # at most 2 + 12 + 3 + 6 = 23
        return f"st{_alnum(self.project)}{self.code}{self.suffix}"

    @property
    def container_registry(self) -> str:  # at most 2 + 12 + 7 + 6 = 27
        return f"cr{_alnum(self.project)}{self.env}{self.suffix}"

    @property
    def registry(self) -> str:  # at most 4 + 12 + 1 + 6 = 23
        return f"mlr-{self.project}-{self.shared_suffix}"

    def identity(self, role: str) -> str:
        return f"id-{self.project}-{self.env}-{role}"

    def all(self) -> dict[str, str]:
        """Every name of this stack, by the kind of resource (the RULES key)."""
        names = {kind: getattr(self, kind) for kind in RULES if kind != "identity"}
        names["identity"] = self.identity("endpoint")  # the longest role
        return names


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())

"""Stack settings from Pulumi config, and the names they give every resource."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pulumi

ENVIRONMENTS = ("dev", "preprod", "prod")
SHARED = "shared"


@dataclass(frozen=True)
class Settings:
    stack: str
    project: str
    location: str
    subscription_id: str
    tenant_id: str
    github_repository: str  # OWNER/REPO
    data_scientists_group: str
    ml_engineers_group: str
    compute_vm_size: str
    compute_max_nodes: int
    manage_github: bool
    purge_protection: bool
    name_generation: int
    prod_reviewer_team_ids: list[int] = field(default_factory=list)

    @staticmethod
    def from_config(stack: str) -> Settings:
        config = pulumi.Config("mlops")
        return Settings(
            stack=stack,
            project=config.require("project"),
            location=config.require("location"),
            subscription_id=config.require("subscriptionId"),
            tenant_id=config.require("tenantId"),
            github_repository=config.require("githubRepository"),
            data_scientists_group=config.require("dataScientistsGroupId"),
            ml_engineers_group=config.require("mlEngineersGroupId"),
            compute_vm_size=config.require("computeVmSize"),
            compute_max_nodes=config.require_int("computeMaxNodes"),
            manage_github=config.get_bool("manageGitHub") or False,
            purge_protection=config.get_bool("purgeProtection") or False,
            name_generation=config.get_int("nameGeneration") or 1,
            prod_reviewer_team_ids=config.get_object("prodReviewerTeamIds") or [],
        )


@dataclass(frozen=True)
class Names:
    """Resource names: readable, and globally unique where Azure requires it.

    The suffix hashes subscription, project, stack and a generation number, so
    a re-run reuses every name; after destroying a stack whose key vault is
    kept soft-deleted (purge protection), raise mlops:nameGeneration."""

    project: str
    env: str
    suffix: str

    @staticmethod
    def of(settings: Settings, env: str | None = None) -> Names:
        env = env or settings.stack
        seed = f"{settings.subscription_id}/{settings.project}/{env}/{settings.name_generation}"
        return Names(settings.project, env, hashlib.sha256(seed.encode()).hexdigest()[:6])

    @property
    def resource_group(self) -> str:
        return f"rg-{self.project}-{self.env}"

    @property
    def workspace(self) -> str:
        return f"mlw-{self.project}-{self.env}"

    @property
    def log_analytics(self) -> str:
        return f"log-{self.project}-{self.env}"

    @property
    def app_insights(self) -> str:
        return f"appi-{self.project}-{self.env}"

    @property
    def key_vault(self) -> str:  # 3-24 letters, digits, dashes
        return f"kv-{self.project[:8]}-{self.env[:7]}-{self.suffix}"

    @property
    def storage_account(self) -> str:  # 3-24 lowercase letters and digits
        return f"st{_alnum(self.project)[:9]}{self.env[:7]}{self.suffix}"

    @property
    def container_registry(self) -> str:  # 5-50 letters and digits
        return f"cr{_alnum(self.project)[:20]}{self.env}{self.suffix}"

    @property
    def registry(self) -> str:
        return f"mlr-{self.project}"

    def identity(self, role: str) -> str:
        return f"id-{self.project}-{self.env}-{role}"


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())

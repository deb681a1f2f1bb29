"""Stack settings from Pulumi config."""

from __future__ import annotations

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
    # GitHub's immutable ids, for OIDC subjects (`gh api repos/OWNER/REPO --jq '.owner.id, .id'`)
    github_owner_id: int = 0
    github_repository_id: int = 0
    github_name_only_subjects: bool = False  # also trust repo:OWNER/REPO:... (old claim format)

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
            github_owner_id=config.require_int("githubOwnerId"),
            github_repository_id=config.require_int("githubRepositoryId"),
            github_name_only_subjects=config.get_bool("githubNameOnlySubjects") or False,
        )

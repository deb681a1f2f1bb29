"""The GitHub side: environments with their gates and variables, and main's protection.

Optional (mlops:manageGitHub), so a fork without a GitHub token can skip it;
the provider reads GITHUB_TOKEN from the environment."""

from __future__ import annotations

import pulumi
import pulumi_github as github

from mlops_infra.settings import Settings


class GitHubConfigError(ValueError):
    pass


def provider(settings: Settings) -> pulumi.ResourceOptions:
    owner = settings.github_repository.split("/")[0]
    return pulumi.ResourceOptions(provider=github.Provider("github", owner=owner))


def environment(
    settings: Settings, variables: dict[str, pulumi.Input[str]]
) -> github.RepositoryEnvironment:
    """The GitHub Environment that jobs bind to; prod's waits for required reviewers."""
    env, repo = settings.stack, settings.github_repository.split("/")[1]
    opts = provider(settings)
    reviewers = None
    if env == "prod":
        if not settings.prod_reviewer_team_ids:
            raise GitHubConfigError(
                "mlops:prodReviewerTeamIds must name at least one team: "
                "without reviewers the prod gate would do nothing"
            )
        reviewers = [{"teams": settings.prod_reviewer_team_ids}]
    created = github.RepositoryEnvironment(
        f"github-environment-{env}",
        repository=repo,
        environment=env,
        reviewers=reviewers,
        prevent_self_review=env == "prod",
        can_admins_bypass=False,
        deployment_branch_policy={"protected_branches": False, "custom_branch_policies": True},
        opts=opts,
    )
    github.RepositoryEnvironmentDeploymentPolicy(
        f"github-environment-{env}-main-only",
        repository=repo,
        environment=created.environment,
        branch_pattern="main",
        opts=opts,
    )
    for name, value in variables.items():
        github.ActionsEnvironmentVariable(
            f"github-variable-{env}-{name}",
            repository=repo,
            environment=created.environment,
            variable_name=name,
            value=value,
            opts=opts,
        )
    return created


def repository(settings: Settings, variables: dict[str, pulumi.Input[str]]) -> None:
    """Repository-wide variables (for previews) and the protection of main."""
    repo = settings.github_repository.split("/")[1]
    opts = provider(settings)
    for name, value in variables.items():
        github.ActionsVariable(
            f"github-variable-{name}", repository=repo, variable_name=name, value=value, opts=opts
        )
    github.BranchProtection(
        "github-main-protection",
        repository_id=repo,
        pattern="main",
        enforce_admins=True,
        allows_force_pushes=False,
        allows_deletions=False,
        required_pull_request_reviews=[
            {
                "required_approving_review_count": 1,
                "require_code_owner_reviews": True,
                "dismiss_stale_reviews": True,
            }
        ],
        opts=opts,
    )

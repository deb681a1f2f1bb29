"""The GitHub side: environments with their gates and variables, the `promotion` label,
and main's protection, all in the github stack (program.build_github), which only an
administrator runs: no workflow holds a token that could change a gate.

Optional (mlops:manageGitHub), so a fork without a GitHub token can skip it;
the provider reads GITHUB_TOKEN from the environment (pulumi/pulumi-github#578). Main's
protection waits for mlops:protectMain (infra/Pulumi.github.yaml), turned on once the first
push is green: protection that requires reviews and binds admins would refuse it."""

from __future__ import annotations

import pulumi
import pulumi_github as github

from mlops_infra.settings import Settings, SettingsError

GitHubConfigError = SettingsError  # settings.py checks the reviewers before anything is built
PROMOTION_LABEL = "promotion"  # release.yml labels the promotion pull requests with it


def provider(settings: Settings) -> pulumi.ResourceOptions:
    owner = settings.github_repository.split("/")[0]
    return pulumi.ResourceOptions(provider=github.Provider("github", owner=owner))


# Each ML environment's gate also guards the door of its infrastructure identity; the monitor's
# environment opens only a read-only identity, so a daily run waits for no one.
REVIEWED = {"prod", "prod-infra"}


def environment(
    settings: Settings,
    name: str,
    variables: dict[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> github.RepositoryEnvironment:
    """A GitHub Environment jobs bind to; prod's and prod-infra's wait for required reviewers.
    Creating them as code matters: a job naming a missing one gets it made unprotected."""
    repo = settings.github_repository.split("/")[1]
    reviewers = None
    if name in REVIEWED:
        if not settings.prod_reviewer_team_ids:
            raise GitHubConfigError(
                "mlops:prodReviewerTeamIds must name at least one team: "
                f"without reviewers the {name} gate would do nothing"
            )
        reviewers = [{"teams": settings.prod_reviewer_team_ids}]
    created = github.RepositoryEnvironment(
        f"github-environment-{name}",
        repository=repo,
        environment=name,
        reviewers=reviewers,
        prevent_self_review=name in REVIEWED,
        can_admins_bypass=False,
        deployment_branch_policy={"protected_branches": False, "custom_branch_policies": True},
        opts=opts,
    )
    github.RepositoryEnvironmentDeploymentPolicy(
        f"github-environment-{name}-main-only",
        repository=repo,
        environment=created.environment,
        branch_pattern="main",
        opts=opts,
    )
    for variable, value in variables.items():
        github.ActionsEnvironmentVariable(
            f"github-variable-{name}-{variable}",
            repository=repo,
            environment=created.environment,
            variable_name=variable,
            value=value,
            opts=opts,
        )
    return created


def repository(
    settings: Settings, opts: pulumi.ResourceOptions, variables: dict[str, pulumi.Input[str]]
) -> None:
    """Repository-wide variables (previews, the state backend), the promotion label and,
    once mlops:protectMain is on, the protection of main."""
    repo = settings.github_repository.split("/")[1]
    for name, value in variables.items():
        github.ActionsVariable(
            f"github-variable-{name}", repository=repo, variable_name=name, value=value, opts=opts
        )
    promotion_label(repo, opts)
    if settings.protect_main:
        main_protection(repo, opts)


def promotion_label(repo: str, opts: pulumi.ResourceOptions) -> github.IssueLabel:
    # made here, with its meaning, rather than left to whichever pull request adds it first
    return github.IssueLabel(
        "github-label-promotion",
        repository=repo,
        name=PROMOTION_LABEL,
        color="1d76db",
        description="Promotes a model version to prod (opened by release.yml)",
        opts=opts,
    )


def main_protection(repo: str, opts: pulumi.ResourceOptions) -> github.BranchProtection:
    return github.BranchProtection(
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

"""GitHub Actions OIDC subjects, and the federated credentials that trust them.

A federated credential matches the token's `sub` claim exactly (case included).
A job bound to a GitHub Environment presents `...:environment:NAME`, not its
branch ref. Repositories created, renamed or transferred since 2026-07-15
present the immutable form `repo:OWNER@OWNER_ID/REPO@REPO_ID:...` (GitHub
changelog 2026-04-23; docs.github.com OIDC reference, "Immutable subject
claims"); older ones present `repo:OWNER/REPO:...` until they opt in.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import managedidentity

from mlops_infra.settings import Settings

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "api://AzureADTokenExchange"
# Entra: at most 20 federated identity credentials per user-assigned identity
# (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations).
MAX_CREDENTIALS = 20


class SubjectError(ValueError):
    pass


def environment_context(name: str) -> str:
    return f"environment:{name}"


PULL_REQUEST = "pull_request"


def subjects(settings: Settings, context: str) -> list[str]:
    """The subjects a job of this repository presents for `context`: the immutable form, and
    the name-only form while the repository still uses it (mlops:githubNameOnlySubjects)."""
    owner, repo = settings.github_repository.split("/", 1)
    owner_id, repo_id = settings.github_owner_id, settings.github_repository_id
    if (
        not (isinstance(owner_id, int) and isinstance(repo_id, int))
        or owner_id <= 0
        or repo_id <= 0
    ):
        raise SubjectError(
            "mlops:githubOwnerId and mlops:githubRepositoryId must be GitHub's positive numeric "
            f"ids (gh api repos/{settings.github_repository} --jq '.owner.id, .id'), "
            f"not {owner_id!r} and {repo_id!r}"
        )
    found = [f"repo:{owner}@{owner_id}/{repo}@{repo_id}:{context}"]
    if settings.github_name_only_subjects:
        found.append(f"repo:{owner}/{repo}:{context}")
    return found


def trust(
    name: str,
    identity: managedidentity.UserAssignedIdentity,
    resource_group: pulumi.Input[str],
    settings: Settings,
    context: str,
    opts: pulumi.ResourceOptions,
) -> list[managedidentity.FederatedIdentityCredential]:
    """One federated credential per subject; names say which format each one trusts. Each waits
    for the one before it: Entra refuses concurrent credential writes on one identity with 409
    (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations,
    "Concurrent updates aren't supported"), and Pulumi would otherwise send them together."""
    made: list[managedidentity.FederatedIdentityCredential] = []
    wanted = subjects(settings, context)
    if len(wanted) > MAX_CREDENTIALS:
        raise SubjectError(f"{name}: {len(wanted)} subjects exceed Entra's {MAX_CREDENTIALS}")
    for subject, form in zip(wanted, ("immutable", "name-only"), strict=False):
        made.append(
            managedidentity.FederatedIdentityCredential(
                f"{name}-federation-{form}",
                federated_identity_credential_resource_name=f"github-{form}",
                resource_name_=identity.name,
                resource_group_name=resource_group,
                issuer=GITHUB_ISSUER,
                subject=subject,
                audiences=[GITHUB_AUDIENCE],
                opts=pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(depends_on=made[-1:])
                ),
            )
        )
    return made

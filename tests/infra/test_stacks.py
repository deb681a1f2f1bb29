"""Every stack, run under mocks: inventory, access matrix, isolation, names, GitHub gates."""

import json
from collections import Counter

import pytest
from mlops_infra import access
from mlops_infra.github import GitHubConfigError
from mlops_infra.naming import Names
from mlops_infra.offline import run_stack
from mlops_infra.settings import Settings

REPO = "your-org/azureml-mlops-template"
ENVS = ("dev", "preprod", "prod")
ROLE_NAMES = {guid: name for name, guid in access.ROLES.items()}


def of_type(records, suffix):
    return [r for r in records if r.type.endswith(suffix)]


def scope_kind(scope: str) -> str:
    if "/registries/" in scope and "MachineLearningServices" in scope:
        return access.MODEL_REGISTRY
    for marker, kind in (
        ("/workspaces/", access.WORKSPACE),
        ("/storageAccounts/", access.STORAGE),
        ("/Microsoft.ContainerRegistry/", access.CONTAINER_REGISTRY),
    ):
        if marker in scope:
            return kind
    assert scope.count("/") == 4, scope  # /subscriptions/S/resourceGroups/RG
    return access.RESOURCE_GROUP


def persona_of(record) -> str:
    return next(p for p in access.MATRIX if record.logical_name.startswith(p + "-"))


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_has_its_inventory(stacks, env):
    counts = Counter(r.type for r in stacks[env])
    assert counts == {
        "mlops:infra:Environment": 1,
        "azure-native:resources:ResourceGroup": 1,
        "azure-native:operationalinsights:Workspace": 1,
        "azure-native:applicationinsights:Component": 1,
        "azure-native:keyvault:Vault": 1,
        "azure-native:storage:StorageAccount": 1,
        "azure-native:containerregistry:Registry": 1,
        "azure-native:machinelearningservices:Workspace": 1,
        "azure-native:machinelearningservices:Compute": 1,
        "azure-native:managedidentity:UserAssignedIdentity": 4,
        "azure-native:managedidentity:FederatedIdentityCredential": 2,
        "azure-native:authorization:RoleAssignment": len(access.grants_for(env)),
    }


def test_the_shared_stack_holds_the_registry_and_the_preview_identity(stacks):
    counts = Counter(r.type for r in stacks["shared"])
    assert counts["azure-native:machinelearningservices:Registry"] == 1
    assert counts["azure-native:managedidentity:UserAssignedIdentity"] == 1
    (federation,) = of_type(stacks["shared"], ":FederatedIdentityCredential")
    assert federation.inputs["subject"] == f"repo:{REPO}:pull_request"
    (reader,) = of_type(stacks["shared"], ":RoleAssignment")
    assert reader.inputs["roleDefinitionId"].endswith(access.ROLES["Reader"])


@pytest.mark.parametrize("env", ENVS)
def test_every_role_assignment_is_in_the_matrix_and_the_matrix_is_complete(stacks, env):
    made = sorted(
        (
            persona_of(r),
            ROLE_NAMES[r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]],
            scope_kind(r.inputs["scope"]),
        )
        for r in of_type(stacks[env], ":RoleAssignment")
    )
    expected = sorted((persona, g.role, g.scope) for persona, g in access.grants_for(env))
    assert made == expected


def test_no_assignment_at_subscription_scope_and_no_owner_anywhere(stacks):
    for records in stacks.values():
        for r in of_type(records, ":RoleAssignment"):
            assert "/resourceGroups/" in r.inputs["scope"], r.inputs["scope"]
            role = r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
            assert role not in access.FORBIDDEN_ROLES, access.FORBIDDEN_ROLES.get(role)


def test_contributor_is_only_for_infra_automation_in_its_own_group(stacks):
    for env in ENVS:
        for r in of_type(stacks[env], ":RoleAssignment"):
            if r.inputs["roleDefinitionId"].endswith(access.ROLES["Contributor"]):
                assert persona_of(r) == access.INFRA_AUTOMATION
                assert r.inputs["scope"].endswith(f"/resourceGroups/rg-mlops-{env}")


def test_delegated_role_assignment_is_limited_to_the_matrix_roles(stacks):
    (delegation,) = [
        r
        for r in of_type(stacks["prod"], ":RoleAssignment")
        if r.inputs["roleDefinitionId"].endswith(
            access.ROLES["Role Based Access Control Administrator"]
        )
    ]
    condition = delegation.inputs["condition"]
    assert access.ROLES["AcrPull"] in condition and access.ROLES["Contributor"] not in condition
    assert "8e3af657" not in condition and delegation.inputs["conditionVersion"] == "2.0"


@pytest.mark.parametrize("env", ENVS)
def test_github_identities_trust_exactly_their_environment(stacks, env):
    federations = of_type(stacks[env], ":FederatedIdentityCredential")
    assert {f.inputs["subject"] for f in federations} == {f"repo:{REPO}:environment:{env}"}
    for f in federations:
        assert f.inputs["issuer"] == "https://token.actions.githubusercontent.com"
        assert f.inputs["audiences"] == ["api://AzureADTokenExchange"]


def principal_ids(records, identity_suffix):
    (identity,) = [
        r
        for r in of_type(records, ":UserAssignedIdentity")
        if r.azure_name.endswith(identity_suffix)
    ]
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{identity.id}"))


@pytest.mark.parametrize("env", ENVS)
def test_an_environments_automation_reaches_only_its_own_environment(stacks, env):
    mine = {principal_ids(stacks[env], suffix) for suffix in ("-github", "-infra")}
    for r in of_type(stacks[env], ":RoleAssignment"):
        if (
            r.inputs["principalId"] in mine
            and scope_kind(r.inputs["scope"]) != access.MODEL_REGISTRY
        ):
            assert f"/resourceGroups/rg-mlops-{env}" in r.inputs["scope"]
    for other in set(ENVS) - {env}:
        assigned = {r.inputs["principalId"] for r in of_type(stacks[other], ":RoleAssignment")}
        assert not mine & assigned, f"{env}'s automation has an assignment in {other}"


def test_only_dev_automation_may_write_to_the_registry(stacks):
    for env in ENVS:
        roles = {
            ROLE_NAMES[r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]]
            for r in of_type(stacks[env], ":RoleAssignment")
            if persona_of(r) == access.AUTOMATION
            and scope_kind(r.inputs["scope"]) == access.MODEL_REGISTRY
        }
        assert roles == ({"AzureML Registry User"} if env == "dev" else {"Reader"})


@pytest.mark.parametrize("env", ENVS)
def test_hardened_settings_and_a_compute_that_scales_to_zero(stacks, env):
    (account,) = of_type(stacks[env], ":StorageAccount")
    assert account.inputs["allowBlobPublicAccess"] is False
    assert (
        account.inputs["minimumTlsVersion"] == "TLS1_2"
        and account.inputs["enableHttpsTrafficOnly"] is True
    )
    (images,) = of_type(stacks[env], "containerregistry:Registry")
    assert images.inputs["adminUserEnabled"] is False
    (vault,) = of_type(stacks[env], ":Vault")
    assert vault.inputs["properties"]["enableRbacAuthorization"] is True
    assert vault.inputs["properties"].get("enablePurgeProtection", False) is (env == "prod")
    (workspace,) = of_type(stacks[env], "machinelearningservices:Workspace")
    assert workspace.inputs["identity"]["type"] == "SystemAssigned"
    (compute,) = of_type(stacks[env], ":Compute")
    scale = compute.inputs["properties"]["properties"]["scaleSettings"]
    assert scale["minNodeCount"] == 0
    assert compute.inputs["properties"]["properties"]["vmSize"] == "Standard_DS2_v2"


def test_global_names_are_stable_unique_and_within_azure_limits(stacks):
    seen = set()
    for env in ENVS:
        again = {r.azure_name for r in run_stack(env)}
        assert again == {r.azure_name for r in stacks[env]}  # a re-run reuses every name
        for suffix, limit in (
            (":StorageAccount", 24),
            (":Vault", 24),
            ("containerregistry:Registry", 50),
        ):
            (record,) = of_type(stacks[env], suffix)
            assert len(record.azure_name) <= limit and record.azure_name not in seen
            seen.add(record.azure_name)


def test_a_new_generation_gives_new_global_names():
    base = dict(
        project="mlops",
        location="x",
        subscription_id="s",
        tenant_id="t",
        github_repository=REPO,
        data_scientists_group="g",
        ml_engineers_group="g",
        compute_vm_size="v",
        compute_max_nodes=1,
        manage_github=False,
        purge_protection=True,
    )
    first = Names.of(Settings(stack="prod", name_generation=1, **base))
    second = Names.of(Settings(stack="prod", name_generation=2, **base))
    assert first.key_vault != second.key_vault and first.resource_group == second.resource_group


def test_environment_files_name_what_the_stacks_create(stacks):
    import yaml
    from helpers import ROOT

    for env in ENVS:
        settings = yaml.safe_load((ROOT / "environments" / f"{env}.yml").read_text())["azure"]
        names = {r.azure_name for r in stacks[env]}
        assert settings["resource_group"] in names and settings["workspace"] in names
        assert settings["registry"] in {r.azure_name for r in stacks["shared"]}


def github(records, kind):
    return [r for r in records if r.type == f"github:index/{kind}"]


def test_prod_github_environment_requires_reviewers_and_main():
    records = run_stack("prod", overrides={"mlops:manageGitHub": "true"})
    (environment,) = github(records, "repositoryEnvironment:RepositoryEnvironment")
    assert environment.inputs["environment"] == "prod"
    assert environment.inputs["reviewers"] == [{"teams": [1234567]}]
    assert (
        environment.inputs["preventSelfReview"] is True
        and environment.inputs["canAdminsBypass"] is False
    )
    assert environment.inputs["deploymentBranchPolicy"] == {
        "protectedBranches": False,
        "customBranchPolicies": True,
    }
    (policy,) = github(
        records, "repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
    )
    assert policy.inputs["branchPattern"] == "main"
    variables = {
        r.inputs["variableName"]
        for r in github(records, "actionsEnvironmentVariable:ActionsEnvironmentVariable")
    }
    assert {
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_INFRA_CLIENT_ID",
    } <= variables


def test_prod_without_reviewers_is_refused():
    with pytest.raises(GitHubConfigError, match="prodReviewerTeamIds must name at least one team"):
        run_stack(
            "prod",
            overrides={"mlops:manageGitHub": "true", "mlops:prodReviewerTeamIds": json.dumps([])},
        )


def test_shared_stack_protects_main_with_code_owner_review():
    records = run_stack("shared", overrides={"mlops:manageGitHub": "true"})
    (protection,) = github(records, "branchProtection:BranchProtection")
    assert protection.inputs["pattern"] == "main"
    (reviews,) = protection.inputs["requiredPullRequestReviews"]
    assert (
        reviews["requireCodeOwnerReviews"] is True and reviews["requiredApprovingReviewCount"] >= 1
    )


def test_github_is_skipped_when_not_managed(stacks):
    assert not any(r.type.startswith("github:") for records in stacks.values() for r in records)


def snake_case_keys(value, path=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            if "_" in key and not key.startswith("__"):
                yield f"{path}.{key}"
            yield from snake_case_keys(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from snake_case_keys(inner, f"{path}[{index}]")


def test_every_property_reaches_the_provider_in_its_wire_name(stacks):
    """A plain dict for a union-typed input keeps Python's snake_case keys, which Azure ignores."""
    for records in stacks.values():
        for record in records:
            if record.type.startswith("azure-native:"):
                assert not list(snake_case_keys(record.inputs)), record.logical_name

"""Every stack, run under mocks: inventory, access matrix, isolation, names, GitHub gates."""

from collections import Counter

import pytest
from mlops_infra import access
from mlops_infra.naming import Names
from mlops_infra.offline import run_stack
from mlops_infra.settings import Settings

REPO = "your-org/azureml-mlops-template"
ENVS = ("dev", "preprod", "prod")
ROLE_NAMES = {guid: name for name, guid in access.ROLES.items()}


def of_type(records, suffix):
    return [r for r in records if r.type.endswith(suffix)]


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
        "azure-native:authorization:RoleAssignment": len(access.environment_grants(env)),
    }


@pytest.mark.parametrize("env", ENVS)
def test_hardened_settings_and_a_compute_that_scales_to_zero(stacks, env):
    (account,) = of_type(stacks[env], ":StorageAccount")
    assert account.inputs["allowBlobPublicAccess"] is False
    assert account.inputs["allowSharedKeyAccess"] is False
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
    assert workspace.inputs["systemDatastoresAuthMode"] == "Identity"
    (compute,) = of_type(stacks[env], ":Compute")
    scale = compute.inputs["properties"]["properties"]["scaleSettings"]
    assert scale["minNodeCount"] == 0
    assert compute.inputs["properties"]["properties"]["remoteLoginPortPublicAccess"] == "Disabled"
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

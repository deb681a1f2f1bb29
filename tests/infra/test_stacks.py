"""Every stack, run under mocks: inventory, access matrix, isolation, names, GitHub gates."""

import json
from collections import Counter

import pytest
from mlops_infra import access, state, state_access
from mlops_infra.naming import Names
from mlops_infra.offline import run_stack, run_stack_in_order, stack_settings

# Every name and value below comes from the stacks' own config, so a fork's tests pass
# right after `mlops init` with any valid answers.
SETTINGS = {stack: stack_settings(stack) for stack in ("shared", "dev", "preprod", "prod")}
ENVS = ("dev", "preprod", "prod")
ROLE_NAMES = {guid: name for name, guid in {**access.ROLES, **state_access.ROLES}.items()}
STATE_SCOPES = {state.container_id(SETTINGS["shared"])} | {
    state.key_id(SETTINGS["shared"], stack) for stack in state.STACKS
}


def of_type(records, suffix):
    return [r for r in records if r.type.endswith(suffix)]


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_has_its_inventory(stacks, env):
    counts = Counter(r.type for r in stacks[env] if "github" not in r.type)
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
        **alerting_inventory(env),
    }


def alerting_inventory(env: str) -> dict[str, int]:
    """Before any deployment: the event topic, the failed-deployment rule where releases deploy,
    and prod's action group. tests/infra/test_alerts.py checks each of them."""
    counts = {
        "azure-native:eventgrid:SystemTopic": 1,
        "azure-native:eventgrid:SystemTopicEventSubscription": int(
            bool(SETTINGS[env].event_webhook_url)
        ),
        "azure-native:monitor:ActivityLogAlert": int(env in ("preprod", "prod")),
        "azure-native:monitor:ActionGroup": int(env == "prod"),
    }
    return {kind: n for kind, n in counts.items() if n}


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
    assert compute.inputs["properties"]["properties"]["vmSize"] == SETTINGS[env].compute_vm_size


def test_names_are_stable_across_runs(stacks):
    for env in ENVS:
        again = {r.azure_name for r in run_stack(env)}
        assert again == {r.azure_name for r in stacks[env]}  # a re-run reuses every name


def test_a_new_generation_gives_new_reserved_names():
    first = Names.of(SETTINGS["prod"])
    second = Names.of(stack_settings("prod", overrides={"mlops:nameGeneration": "2"}))
    for kind in ("key_vault", "storage_account", "workspace", "endpoint", "registry"):
        assert getattr(first, kind) != getattr(second, kind), kind
    assert first.resource_group == second.resource_group


def test_the_shared_stack_holds_the_state_and_a_key_per_stack_with_no_shared_key(stacks):
    accounts = of_type(stacks["shared"], ":StorageAccount")
    (account,) = [a for a in accounts if a.logical_name == "state-storage"]
    assert account.inputs["allowSharedKeyAccess"] is False
    assert account.inputs["allowBlobPublicAccess"] is False
    (container,) = of_type(stacks["shared"], ":BlobContainer")
    assert container.inputs["containerName"] == state.CONTAINER
    assert container.inputs["publicAccess"] == "None"
    (vault,) = of_type(stacks["shared"], ":Vault")
    assert vault.inputs["properties"]["enablePurgeProtection"] is True  # the key outlives mistakes
    keys = of_type(stacks["shared"], ":Key")
    assert len(keys) == len(state.STACKS)
    for key in keys:
        assert {"encrypt", "decrypt"} <= set(key.inputs["properties"]["keyOps"])
    shared = Names.of(SETTINGS["shared"])
    assert state.backend_url(SETTINGS["shared"]) == (
        f"azblob://{state.CONTAINER}?storage_account={shared.storage_account}"
    )
    assert state.secrets_provider(SETTINGS["shared"], "prod") == (
        f"azurekeyvault://{shared.key_vault}.vault.azure.net/keys/{state.key_name('prod')}"
    )


def test_the_state_and_its_keys_are_reached_by_the_listed_principals_only(stacks):
    granted = {}
    for r in of_type(stacks["shared"], ":RoleAssignment"):
        if r.inputs["scope"] in STATE_SCOPES:
            role = ROLE_NAMES[r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]]
            granted.setdefault(r.inputs["principalId"], set()).add(role)
    # the bootstrapping principal, the preview identity, one infrastructure identity per env
    assert len(granted) == 2 + len(ENVS)
    assert sorted(map(sorted, granted.values())) == sorted(
        [["Key Vault Crypto User", "Storage Blob Data Contributor"]] * (1 + len(ENVS))
        + [["Key Vault Crypto User", "Storage Blob Data Reader"]]
    )
    assert all(
        r.inputs["scope"] in STATE_SCOPES or "/keys/" not in r.inputs["scope"]
        for r in of_type(stacks["shared"], ":RoleAssignment")
    )


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


def test_github_stack_creates_the_promotion_label_and_leaves_main_open_until_told():
    records = run_stack("github", overrides={"mlops:manageGitHub": "true"})
    (label,) = github(records, "issueLabel:IssueLabel")
    assert label.inputs["name"] == "promotion"
    # the first push must land: protection (reviews, admins included) waits for protectMain
    assert not github(records, "branchProtection:BranchProtection")
    variables = {
        r.inputs["variableName"]: r.inputs["value"]
        for r in github(records, "actionsVariable:ActionsVariable")
    }
    assert variables["PULUMI_BACKEND_URL"] == state.backend_url(SETTINGS["shared"])
    assert json.loads(variables["PULUMI_SECRETS_PROVIDERS"]) == {
        stack: state.secrets_provider(SETTINGS["shared"], stack) for stack in state.STACKS
    }


def test_github_stack_protects_main_with_code_owner_review():
    records = run_stack(
        "github", overrides={"mlops:manageGitHub": "true", "mlops:protectMain": "true"}
    )
    (protection,) = github(records, "branchProtection:BranchProtection")
    assert protection.inputs["pattern"] == "main"
    (reviews,) = protection.inputs["requiredPullRequestReviews"]
    assert (
        reviews["requireCodeOwnerReviews"] is True and reviews["requiredApprovingReviewCount"] >= 1
    )


def test_github_is_skipped_when_not_managed():
    for stack in ("shared", "prod", "github"):
        records = run_stack(stack, overrides={"mlops:manageGitHub": "false"})
        assert not any(r.type.startswith("github:") for r in records)


@pytest.mark.parametrize("stack", ["shared", "dev", "preprod", "prod", "github"])
def test_no_two_resources_of_a_stack_share_a_urn(stack):
    # the engine refuses a second registration of a URN ("Duplicate resource URN",
    # pulumi/pulumi#13779, by design); the mocks accept it, so count the registrations
    _, registrations = run_stack_in_order(stack, overrides={"mlops:manageGitHub": "true"})
    urns = [r.urn for r in registrations]
    assert len(urns) == len(set(urns)), sorted({u for u in urns if urns.count(u) > 1})


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

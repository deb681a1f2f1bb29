"""Every name the stacks plan fits Azure's rules, for every project `mlops init` accepts.

The rules (length, characters, where the name must be unique) live in
infra/mlops_infra/naming.py with the source of each; these tests sweep every
project length (3-12), both extremes of its characters, and every stack."""

import pytest
from mlops_infra.naming import RULES, STACK_CODES, Names, problems
from mlops_infra.offline import run_stack
from mlops_infra.settings import PROJECT

STACKS = tuple(STACK_CODES)
SUBSCRIPTION = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
# Every length init accepts, all letters and a letter followed by digits only.
PROJECTS = [shape[:n] for n in range(3, 13) for shape in ("abcdefghijkl", "z99999999999")]
# Names Azure holds after deletion, or wants unique beyond the resource group.
RESERVED = ("workspace", "endpoint", "key_vault", "storage_account", "container_registry")
# The resource types of the plan, by the rule their name follows.
KIND_OF_TYPE = {
    "azure-native:resources:ResourceGroup": "resource_group",
    "azure-native:machinelearningservices:Workspace": "workspace",
    "azure-native:machinelearningservices:Registry": "registry",
    "azure-native:keyvault:Vault": "key_vault",
    "azure-native:storage:StorageAccount": "storage_account",
    "azure-native:containerregistry:Registry": "container_registry",
    "azure-native:operationalinsights:Workspace": "log_analytics",
    "azure-native:applicationinsights:Component": "app_insights",
    "azure-native:managedidentity:UserAssignedIdentity": "identity",
}


def test_the_sweep_covers_exactly_what_init_accepts():
    assert all(PROJECT.fullmatch(project) for project in PROJECTS)
    assert {len(project) for project in PROJECTS} == set(range(3, 13))
    assert not PROJECT.fullmatch("ab") and not PROJECT.fullmatch("abcdefghijklm")


@pytest.mark.parametrize("project", PROJECTS)
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("generation", [1, 999])
def test_every_name_fits_azures_rules(project, stack, generation):
    names = Names.build(project, stack, SUBSCRIPTION, generation)
    for kind, name in names.all().items():
        assert problems(kind, name) == [], (kind, name)


@pytest.mark.parametrize("project", ["abc", "abcdefghijkl"])
def test_reserved_names_carry_the_stacks_suffix(project):
    for stack in STACKS:
        names = Names.build(project, stack, SUBSCRIPTION)
        for kind in RESERVED:
            assert names.suffix in getattr(names, kind), (stack, kind)
        # one registry for every environment: the shared stack's suffix
        assert names.registry == Names.build(project, "shared", SUBSCRIPTION).registry


def test_global_names_differ_between_stacks_and_subscriptions():
    for kind in RESERVED:
        seen = {
            getattr(Names.build("abcdefghijkl", stack, subscription), kind)
            for stack in STACKS
            for subscription in (SUBSCRIPTION, "11111111-2222-4333-8444-555555555555")
        }
        assert len(seen) == 2 * len(STACKS), kind


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("key_vault", "kv-abcdefghijkl-ppd-123456"),  # 26 characters
        ("key_vault", "kv--abc"),  # consecutive hyphens
        ("key_vault", "1kv-abc"),  # must start with a letter
        ("key_vault", "kv-abc-"),  # must end with a letter or digit
        ("storage_account", "stAbc123"),  # lowercase only
        ("storage_account", "st-abc"),
        ("storage_account", "st" + "a" * 23),  # 25 characters
        ("container_registry", "cr-abc"),
        ("container_registry", "cr1"),  # 5 at least
        ("workspace", "mlw-" + "a" * 30),  # 34 characters
        ("workspace", "-mlw"),
        ("registry", "mlr." + "a" * 3),
        ("endpoint", "1abc-prod"),  # must start with a letter
        ("endpoint", "abc-prod-"),  # must end with a letter or digit
        ("endpoint", "a" * 33),
        ("log_analytics", "log"),  # 4 at least
        ("identity", "-id"),
    ],
)
def test_the_rules_refuse_what_azure_refuses(kind, name):
    assert problems(kind, name)


@pytest.mark.parametrize("project", ["abc", "abcdefg", "abcdefghijkl"])
def test_every_planned_name_fits_azures_rules(project):
    checked = set()
    for stack in STACKS:
        for record in run_stack(stack, overrides={"mlops:project": project}):
            kind = KIND_OF_TYPE.get(record.type)
            if kind:
                assert problems(kind, record.azure_name) == [], (stack, record.azure_name)
                checked.add(kind)
    assert checked == set(KIND_OF_TYPE.values()) == set(RULES) - {"endpoint"}

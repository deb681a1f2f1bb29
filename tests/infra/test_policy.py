"""Each guardrail refuses a violating resource and accepts a compliant one; the program passes them all."""

import copy
import re

import pytest
from mlops_infra.offline import stack_config
from rules import RULES, STACK_RULES, stack_of

REPOSITORY = stack_config("shared")["mlops:githubRepository"]  # as `mlops init` rendered it

STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
ACR = "azure-native:containerregistry:Registry"
ROLE = "azure-native:authorization:RoleAssignment"
RG_SCOPE = "/subscriptions/s/resourceGroups/rg-mlops-dev"
ROLE_ID = "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"

GOOD_STORAGE = {
    "allowBlobPublicAccess": False,
    "minimumTlsVersion": "TLS1_2",
    "enableHttpsTrafficOnly": True,
    "allowSharedKeyAccess": False,
}
WORKSPACE = "azure-native:machinelearningservices:Workspace"
COMPUTE = "azure-native:machinelearningservices:Compute"
ROLE_DEF = "azure-native:authorization:RoleDefinition"
READER = ROLE_ID + "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = ROLE_ID + "b24988ac-6180-42a0-ab88-20f7382dd24c"
RBAC_ADMIN = ROLE_ID + "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
GOOD_CONDITION = " AND ".join(
    f"((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/{action}'}})) OR "
    f"(@{source}[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{7f951dda-4ed3-4680-a7ca-43fe172d538d}} AND "
    f"@{source}[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {{'ServicePrincipal'}}))"
    for action, source in (("write", "Request"), ("delete", "Resource"))
)
GOOD_DELEGATION = {
    "scope": RG_SCOPE,
    "roleDefinitionId": RBAC_ADMIN,
    "condition": GOOD_CONDITION,
    "conditionVersion": "2.0",
}
GOOD_VAULT = {
    "properties": {
        "enableRbacAuthorization": True,
        "enableSoftDelete": True,
        "enablePurgeProtection": True,
    }
}

CASES = {
    # the same resource: refused in a stack a workflow runs, accepted in the github stack
    "github-admin-stack-only": (
        "github:index/repositoryEnvironment:RepositoryEnvironment",
        {"environment": "prod"},
        {"environment": "prod"},
        ("dev", "github"),
    ),
    "storage-no-public-blob-access": (
        STORAGE,
        {**GOOD_STORAGE, "allowBlobPublicAccess": True},
        GOOD_STORAGE,
        "dev",
    ),
    "storage-tls12-https-only": (
        STORAGE,
        {**GOOD_STORAGE, "minimumTlsVersion": "TLS1_0"},
        GOOD_STORAGE,
        "dev",
    ),
    "key-vault-rbac-soft-delete": (
        VAULT,
        {"properties": {"enableRbacAuthorization": False}},
        GOOD_VAULT,
        "dev",
    ),
    "prod-key-vault-purge-protection": (
        VAULT,
        {"properties": {"enableRbacAuthorization": True}},
        GOOD_VAULT,
        "prod",
    ),
    "container-registry-no-admin-user": (
        ACR,
        {"adminUserEnabled": True},
        {"adminUserEnabled": False},
        "dev",
    ),
    "role-assignments-narrow": (
        ROLE,
        {
            "scope": "/subscriptions/s",
            "roleDefinitionId": ROLE_ID + "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        },
        {"scope": RG_SCOPE, "roleDefinitionId": ROLE_ID + "acdd72a7-3385-48ef-bd42-f606fba81ae7"},
        "dev",
    ),
    "storage-no-shared-key": (
        STORAGE,
        {k: v for k, v in GOOD_STORAGE.items() if k != "allowSharedKeyAccess"},  # null means true
        GOOD_STORAGE,
        "dev",
    ),
    "workspace-identity-datastores": (
        WORKSPACE,
        {"systemDatastoresAuthMode": "AccessKey"},
        {"systemDatastoresAuthMode": "Identity"},
        "dev",
    ),
    "compute-no-public-ssh": (
        COMPUTE,
        {"properties": {"properties": {"remoteLoginPortPublicAccess": "NotSpecified"}}},
        {"properties": {"properties": {"remoteLoginPortPublicAccess": "Disabled"}}},
        "dev",
    ),
    "delegation-conditioned": (
        ROLE,
        {**GOOD_DELEGATION, "condition": GOOD_CONDITION.replace("PrincipalType", "Other")},
        GOOD_DELEGATION,
        "dev",
    ),
    "contributor-own-resource-group": (
        ROLE,
        {"scope": "/subscriptions/s/resourceGroups/rg-mlops-prod", "roleDefinitionId": CONTRIBUTOR},
        {"scope": RG_SCOPE, "roleDefinitionId": CONTRIBUTOR},
        "dev",
    ),
    "registry-no-delete": (
        ROLE,
        {"scope": RG_SCOPE, "roleDefinitionId": ROLE_ID + "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"},
        {"scope": RG_SCOPE, "roleDefinitionId": READER},
        "shared",
    ),
    "prod-people-read-only": (
        ROLE,
        {
            "scope": RG_SCOPE,
            "roleDefinitionId": ROLE_ID + "f6c7c914-8db3-469d-8ca1-694a8f32e121",
            "principalType": "Group",
        },
        {"scope": RG_SCOPE, "roleDefinitionId": READER, "principalType": "Group"},
        "prod",
    ),
}


STATE_SCOPE = (
    "/subscriptions/s/resourceGroups/rg-mlops-shared/providers/Microsoft.Storage/"
    "storageAccounts/st/blobServices/default/containers/pulumi-state"
)
BLOB_CONTRIBUTOR = ROLE_ID + "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def writer(stack):
    from mlops_infra.state_access import write_condition

    return {
        "scope": STATE_SCOPE,
        "roleDefinitionId": BLOB_CONTRIBUTOR,
        "principalType": "ServicePrincipal",
        "condition": write_condition("mlops-infra", stack),
        "conditionVersion": "2.0",
    }


PAIRS = GOOD_DELEGATION["condition"]
CASES["state-writes-one-stack"] = (ROLE, writer("shared"), writer("dev"), "shared")
CASES["delegation-pairs"] = (
    ROLE,
    {
        **GOOD_DELEGATION,
        "condition": "@Request[Microsoft.Authorization/roleAssignments:PrincipalId] "
        "ForAnyOfAnyValues:GuidEquals {a, b}",
    },
    GOOD_DELEGATION,
    "dev",
)


@pytest.mark.parametrize(
    "props",
    [
        {k: v for k, v in writer("dev").items() if k not in ("condition", "conditionVersion")},
        {**writer("dev"), "condition": writer("dev")["condition"].replace("blobs/delete", "x")},
        {
            **writer("dev"),
            "condition": writer("dev")["condition"] + " OR " + writer("prod")["condition"],
        },
    ],
    ids=["unconfined", "deletes-anywhere", "two-stacks"],
)
def test_the_state_rule_covers_each_way_out_of_ones_own_stack(props):
    _, rule = RULES["state-writes-one-stack"]
    assert rule(ROLE, props, "shared")
    assert rule(ROLE, {**props, "principalType": "User"}, "shared") == []  # the bootstrapper


def test_every_rule_has_a_case():
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_rule_refuses_a_violation_and_accepts_compliance(name):
    kind, bad, good, stack = CASES[name]
    bad_stack, good_stack = stack if isinstance(stack, tuple) else (stack, stack)
    _, rule = RULES[name]
    assert rule(kind, bad, bad_stack), f"{name} let a violation through"
    assert rule(kind, good, good_stack) == []


@pytest.mark.parametrize(
    "props",
    [
        {"scope": RG_SCOPE, "roleDefinitionId": ROLE_ID + "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"},
        {"scope": RG_SCOPE, "roleDefinitionId": ROLE_ID + "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"},
        {"scope": "/", "roleDefinitionId": ROLE_ID + "acdd72a7-3385-48ef-bd42-f606fba81ae7"},
        {
            "scope": "/providers/Microsoft.Management/managementGroups/root",
            "roleDefinitionId": ROLE_ID + "x",
        },
    ],
    ids=["owner", "user-access-administrator", "root", "management-group"],
)
def test_role_assignment_rule_covers_each_forbidden_case(props):
    _, rule = RULES["role-assignments-narrow"]
    assert rule(ROLE, props, "dev")


@pytest.mark.parametrize(
    "props",
    [
        {**GOOD_DELEGATION, "condition": None},
        {**GOOD_DELEGATION, "conditionVersion": "1.0"},
        {
            **GOOD_DELEGATION,
            "condition": GOOD_CONDITION.replace(
                "7f951dda", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635 7f951dda"
            ),
        },
        {**GOOD_DELEGATION, "condition": GOOD_CONDITION.split(" AND ((!")[0]},  # deletes unbounded
    ],
    ids=["no-condition", "old-version", "allows-owner", "writes-only"],
)
def test_the_delegation_rule_covers_each_loophole(props):
    _, rule = RULES["delegation-conditioned"]
    assert rule(ROLE, props, "dev")


@pytest.mark.parametrize(
    "kind, props, stack",
    [
        (ROLE, {"scope": RG_SCOPE, "roleDefinitionId": CONTRIBUTOR}, "shared"),
        (
            ROLE,
            {
                "scope": RG_SCOPE + "/providers/Microsoft.Storage/storageAccounts/x",
                "roleDefinitionId": CONTRIBUTOR,
            },
            "dev",
        ),
        (
            ROLE_DEF,
            {
                "permissions": [
                    {"actions": ["Microsoft.MachineLearningServices/registries/assets/*"]}
                ]
            },
            "shared",
        ),
        (
            ROLE_DEF,
            {
                "permissions": [
                    {"actions": ["Microsoft.MachineLearningServices/registries/assets/delete"]}
                ]
            },
            "shared",
        ),
        (
            COMPUTE,
            {
                "properties": {
                    "properties": {"remoteLoginPortPublicAccess": "Disabled", "subnet": {"id": "x"}}
                }
            },
            "dev",
        ),
        (
            ROLE,
            {"scope": RG_SCOPE, "roleDefinitionId": CONTRIBUTOR, "principalType": "User"},
            "prod",
        ),
    ],
    ids=[
        "contributor-in-shared",
        "contributor-on-a-resource",
        "wildcard-role",
        "deleting-role",
        "public-ip-in-subnet",
        "user-contributor-in-prod",
    ],
)
def test_hardening_rules_cover_each_case(kind, props, stack):
    assert any(rule(kind, props, stack) for _, rule in RULES.values())


def test_purge_protection_is_demanded_only_in_prod():
    _, rule = RULES["prod-key-vault-purge-protection"]
    assert rule(VAULT, {"properties": {}}, "dev") == []


def test_the_stack_is_read_from_the_urn():
    assert stack_of("urn:pulumi:prod::mlops-infra::azure-native:keyvault:Vault::vault") == "prod"


def stack_problems(records, stack) -> list[str]:
    resources = [(r.type, r.inputs) for r in records]
    found = [p for _, rule in STACK_RULES.values() for p in rule(resources, stack)]
    for record in records:
        found += [p for _, rule in RULES.values() for p in rule(record.type, record.inputs, stack)]
    return found


def test_the_program_passes_every_rule(stacks):
    for stack, records in stacks.items():
        for record in records:
            for name, (_, rule) in RULES.items():
                assert rule(record.type, record.inputs, stack) == [], (
                    f"{stack}/{record.logical_name}: {name}"
                )
        for name, (_, rule) in STACK_RULES.items():
            assert rule([(r.type, r.inputs) for r in records], stack) == [], f"{stack}: {name}"


# ---- the pack refuses a plan mutated to break each point of the access design ------------------


def mutated(records, pick, change):
    """The plan with one record's inputs changed (a deep copy: the fixture stays intact)."""
    plan = copy.deepcopy(records)
    (target,) = [r for r in plan if pick(r)]
    change(target.inputs)
    return plan


def federation_of(suffix, form="immutable"):
    return lambda r: (
        r.type.endswith(":FederatedIdentityCredential")
        and r.logical_name == f"{suffix}-federation-{form}"
    )


def role_of(persona, role_slug, env=""):
    return lambda r: (
        r.type.endswith(":RoleAssignment")
        and r.logical_name.startswith(f"{persona}-{role_slug}")
        and r.logical_name.endswith(env)
    )


MUTATIONS = {
    "name-only-subject-alone": (
        "shared",
        federation_of("prod-github"),
        lambda i: i.update(subject=f"repo:{REPOSITORY}:environment:prod"),
        "github-subjects-immutable",
    ),
    "infra-trusts-the-ml-environment": (
        "shared",
        federation_of("prod-infra"),
        lambda i: i.update(subject=i["subject"].removesuffix("-infra")),
        "one-identity-per-subject",
    ),
    "monitor-trusts-prod": (
        "shared",
        federation_of("prod-monitor"),
        lambda i: i.update(
            subject=i["subject"].replace(":environment:monitor", ":environment:prod")
        ),
        "one-identity-per-subject",
    ),
    "monitor-loses-blob-read": (
        "prod",
        role_of("monitor", "storage-blob-data-reader"),
        lambda i: i.update(roleDefinitionId=READER),
        "prod-monitor-read-path",
    ),
    "ml-engineers-deploy-in-prod": (
        "prod",
        role_of("ml-engineers", "reader"),
        lambda i: i.update(roleDefinitionId=ROLE_ID + "f6c7c914-8db3-469d-8ca1-694a8f32e121"),
        "prod-people-read-only",
    ),
    "automation-holds-contributor": (
        "prod",
        role_of("automation", "azureml-data-scientist"),
        lambda i: i.update(roleDefinitionId=CONTRIBUTOR, scope=i["scope"].split("/providers/")[0]),
        "contributor-separate-identity",
    ),
    "dev-automation-may-delete-shared-models": (
        "shared",
        role_of("automation", "model-registry-publisher", "-dev"),
        lambda i: i.update(roleDefinitionId=ROLE_ID + "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"),
        "registry-no-delete",
    ),
    "shared-keys-back-on": (
        "prod",
        lambda r: r.type.endswith(":StorageAccount"),
        lambda i: i.update(allowSharedKeyAccess=True),
        "storage-no-shared-key",
    ),
    "key-based-datastores": (
        "prod",
        lambda r: r.type.endswith("machinelearningservices:Workspace"),
        lambda i: i.update(systemDatastoresAuthMode="AccessKey"),
        "workspace-identity-datastores",
    ),
    "public-ssh": (
        "dev",
        lambda r: r.type.endswith(":Compute"),
        lambda i: i["properties"]["properties"].update(remoteLoginPortPublicAccess="Enabled"),
        "compute-no-public-ssh",
    ),
    "dev-infra-writes-shared-state": (
        "shared",
        lambda r: (
            r.logical_name == "infra-automation-dev-storage-blob-data-contributor-state-container"
        ),
        lambda i: i.update(condition=i["condition"].replace("/dev", "/shared")),
        "state-writes-one-stack",
    ),
    "preview-decrypts-prod": (
        "shared",
        lambda r: r.logical_name == "pull-request-preview-key-vault-crypto-user-dev-state-key",
        lambda i: i.update(scope=i["scope"].replace("pulumi-secrets-dev", "pulumi-secrets-prod")),
        "prod-secrets-own-identity",
    ),
    "delegation-cross-product": (
        "prod",
        role_of("infra-automation", "role-based-access-control-administrator"),
        lambda i: i.update(
            condition=re.sub(
                r"(PrincipalId\] ForAnyOfAnyValues:GuidEquals \{)([^}]*)\}",
                r"\1\2, 00000000-0000-4000-8000-000000000001}",
                i["condition"],
            )
        ),
        "delegation-pairs",
    ),
    "delegation-to-anyone": (
        "prod",
        role_of("infra-automation", "role-based-access-control-administrator"),
        # new assignments no longer bounded by principal id or type: any principal, any role
        lambda i: i.update(
            condition=re.sub(
                r"@Request\[Microsoft\.Authorization/roleAssignments:Principal(Id|Type)\] "
                r"ForAnyOfAnyValues:\w+ \{[^}]*\}( AND )?",
                "",
                i["condition"],
            ).replace(" AND )", ")")
        ),
        "delegation-conditioned",
    ),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_the_pack_refuses_a_plan_that_breaks_the_access_design(stacks, case):
    stack, pick, change, policy = MUTATIONS[case]
    plan = mutated(stacks[stack], pick, change)
    problems = stack_problems(plan, stack)
    assert problems, f"{case} passed every policy"
    description, rule = {**RULES, **STACK_RULES}[policy]
    if policy in STACK_RULES:
        assert rule([(r.type, r.inputs) for r in plan], stack), f"{policy} missed {case}"
    else:
        assert any(rule(r.type, r.inputs, stack) for r in plan), f"{policy} missed {case}"


def test_the_policy_pack_registers_every_rule_as_mandatory():
    import importlib.util

    import pulumi_policy
    from helpers import ROOT

    captured = {}
    original = pulumi_policy.PolicyPack.__init__

    def capture(self, name, policies, enforcement_level=None, **kwargs):
        captured.update(name=name, policies=policies, level=enforcement_level)

    pulumi_policy.PolicyPack.__init__ = capture
    try:
        spec = importlib.util.spec_from_file_location(
            "policy_main", ROOT / "infra" / "policy" / "__main__.py"
        )
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    finally:
        pulumi_policy.PolicyPack.__init__ = original
    assert captured["level"] == pulumi_policy.EnforcementLevel.MANDATORY
    assert {p.name for p in captured["policies"]} == set(RULES) | set(STACK_RULES)

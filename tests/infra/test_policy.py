"""Each guardrail refuses a violating resource and accepts a compliant one; the program passes them all."""

import pytest
from rules import RULES, stack_of

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
}
GOOD_VAULT = {
    "properties": {
        "enableRbacAuthorization": True,
        "enableSoftDelete": True,
        "enablePurgeProtection": True,
    }
}

CASES = {
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
}


def test_every_rule_has_a_case():
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_rule_refuses_a_violation_and_accepts_compliance(name):
    kind, bad, good, stack = CASES[name]
    _, rule = RULES[name]
    assert rule(kind, bad, stack), f"{name} let a violation through"
    assert rule(kind, good, stack) == []


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


def test_purge_protection_is_demanded_only_in_prod():
    _, rule = RULES["prod-key-vault-purge-protection"]
    assert rule(VAULT, {"properties": {}}, "dev") == []


def test_the_stack_is_read_from_the_urn():
    assert stack_of("urn:pulumi:prod::mlops-infra::azure-native:keyvault:Vault::vault") == "prod"


def test_the_program_passes_every_rule(stacks):
    for stack, records in stacks.items():
        for record in records:
            for name, (_, rule) in RULES.items():
                assert rule(record.type, record.inputs, stack) == [], (
                    f"{stack}/{record.logical_name}: {name}"
                )


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
    assert {p.name for p in captured["policies"]} == set(RULES)

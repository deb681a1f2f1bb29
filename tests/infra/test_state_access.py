"""State isolation, read back from the shared stack's mocked plan: who can write which stack's
state (the planned conditions evaluated on the blobs Pulumi writes), and who can decrypt
whose secrets (infra/mlops_infra/state_access.py)."""

import pytest
from mlops_infra import conditions, state, state_access
from mlops_infra.offline import identity_ids, stack_settings
from mlops_infra.shared import PREVIEW_LOGICAL_NAME, identity_logical_name

ENVS = ("dev", "preprod", "prod")
PROJECT = "mlops-infra"  # infra/Pulumi.yaml's name, the mocks' project
SHARED = stack_settings("shared")


@pytest.fixture(scope="module")
def principals(stacks):
    """Who each planned principal is: the bootstrapping person, the preview, each infra id."""
    by_name = {
        r.logical_name: r for r in stacks["shared"] if r.type.endswith(":UserAssignedIdentity")
    }
    from mlops_infra import access

    spec = access.IDENTITIES[access.INFRA_AUTOMATION]
    found = {
        identity_ids(by_name[identity_logical_name(env, spec)].id)["principalId"]: f"{env}-infra"
        for env in ENVS
    }
    found[identity_ids(by_name[PREVIEW_LOGICAL_NAME].id)["principalId"]] = "preview"
    found[SHARED.bootstrap_principal_id] = "bootstrap"
    return found


def test_who_can_write_which_stacks_state(stacks, principals):
    writers = state_access.writers(stacks["shared"], PROJECT)
    named = {principals[p]: stacks for p, stacks in writers.items()}
    assert named == {
        "bootstrap": ["dev", "github", "preprod", "prod", "shared"],
        "dev-infra": ["dev"],
        "preprod-infra": ["preprod"],
        "prod-infra": ["prod"],
        "preview": [],  # Storage Blob Data Reader: no write at all
    }


def test_dev_infra_can_write_neither_shareds_nor_prods_state(stacks, principals):
    dev = next(p for p, who in principals.items() if who == "dev-infra")
    (assignment,) = [
        r
        for r in stacks["shared"]
        if r.type.endswith(":RoleAssignment")
        and r.inputs["principalId"] == dev
        and r.inputs["scope"] == state.container_id(SHARED)
    ]
    condition = assignment.inputs["condition"]
    blob = state_access.PATH
    for action in state_access.WRITE_ACTIONS:
        for stack in ("shared", "prod", "preprod"):
            for path in state_access.sample_paths(PROJECT, stack) + [".pulumi/meta.yaml"]:
                assert not conditions.allows(condition, action, {blob: path}), (action, path)
        for path in state_access.sample_paths(PROJECT, "dev"):
            assert conditions.allows(condition, action, {blob: path}), (action, path)
    # it reads every stack's state: the stack reference to shared, and its own
    for stack in ("shared", "dev", "prod"):
        path = f".pulumi/stacks/{PROJECT}/{stack}.json"
        assert conditions.allows(condition, f"{state_access.BLOBS}/read", {blob: path})
    # a stack whose name starts with another's is another stack
    assert not conditions.allows(
        condition, f"{state_access.BLOBS}/write", {blob: f".pulumi/stacks/{PROJECT}/devx.json"}
    )


def test_each_stack_has_its_own_key_and_the_preview_decrypts_no_prod_secret(stacks, principals):
    users = {
        stack: sorted(principals[p] for p in ids)
        for stack, ids in state_access.key_users(stacks["shared"]).items()
    }
    assert users == {
        "shared": sorted(["bootstrap", "preview", "dev-infra", "preprod-infra", "prod-infra"]),
        "dev": ["bootstrap", "dev-infra", "preview"],
        "preprod": ["bootstrap", "preprod-infra", "preview"],
        "prod": ["bootstrap", "prod-infra"],
        "github": ["bootstrap"],  # run by an administrator only, never by a workflow
    }
    keys = [r for r in stacks["shared"] if r.type.endswith("keyvault:Key")]
    assert sorted(k.inputs["keyName"] for k in keys) == sorted(
        state.key_name(s) for s in state.STACKS
    )


def test_the_bootstrapping_principal_gets_exactly_the_data_roles_of_the_first_run(stacks):
    held = sorted(
        (
            r.inputs["roleDefinitionId"].rsplit("/", 1)[-1],
            r.inputs["scope"],
            r.inputs["principalType"],
        )
        for r in stacks["shared"]
        if r.type.endswith(":RoleAssignment")
        and r.inputs["principalId"] == SHARED.bootstrap_principal_id
    )
    roles = state_access.ROLES
    assert held == sorted(
        [(roles["Storage Blob Data Contributor"], state.container_id(SHARED), "User")]
        + [(roles["Key Vault Crypto User"], state.key_id(SHARED, s), "User") for s in state.STACKS]
    )
    for stack in ENVS:  # nothing in any environment: its Owner rights there suffice
        assert SHARED.bootstrap_principal_id not in str(stacks[stack])


@pytest.mark.parametrize(
    "condition, problem",
    [
        ("(@Resource[x:path] StringLike 'a' OR", "unexpected"),
        ("@Resource[x:path] StringContains 'a'", "outside what this program writes"),
        ("(ActionMatches{'a'}", "unbalanced"),
    ],
)
def test_the_evaluator_refuses_what_it_does_not_model(condition, problem):
    with pytest.raises(conditions.ConditionError, match=problem):
        conditions.allows(condition, "a", {"@Resource[x:path]": "a"})

"""The access design, read back from the mocked plan of every stack (infra/mlops_infra/audit.py):
who opens which identity, with which subject, holding which roles."""

import json

import pytest
from helpers import ROOT, env_setting
from mlops_infra import access, audit
from mlops_infra.access import Grant
from mlops_infra.offline import run_stack, stack_config
from mlops_infra.settings import SettingsError

ENVS = ("dev", "preprod", "prod")
CONFIG = stack_config("shared")
PROJECT, REPO = CONFIG["mlops:project"], CONFIG["mlops:githubRepository"]
OWNER, NAME = REPO.split("/")
# the answers `mlops init` rendered, never the template's literals: a fork's suite stays green
NAME_ONLY = CONFIG.get("mlops:githubNameOnlySubjects", "false") == "true"
PROD_REVIEWERS = json.loads(stack_config("github")["mlops:prodReviewerTeamIds"])
IMMUTABLE = (
    f"repo:{OWNER}@{CONFIG['mlops:githubOwnerId']}/{NAME}@{CONFIG['mlops:githubRepositoryId']}"
)


def of_type(records, suffix):
    return [r for r in records if r.type.endswith(suffix)]


@pytest.fixture(scope="module")
def doors(stacks):
    return {env: audit.doors(stacks["shared"], stacks[env], env, PROJECT) for env in ENVS}


@pytest.mark.parametrize("env", ENVS)
def test_each_identity_trusts_only_its_own_github_environment_in_the_immutable_form(doors, env):
    def trusted(door: str) -> list[str]:
        forms = [IMMUTABLE] + ([f"repo:{REPO}"] if NAME_ONLY else [])  # the answer init rendered
        return sorted(f"{form}:environment:{door}" for form in forms)

    expected = {
        access.AUTOMATION: trusted(env),
        access.INFRA_AUTOMATION: trusted(f"{env}-infra"),
        access.MONITOR: trusted("monitor"),
        access.COMPUTE: [],
    }
    found = {door.persona: list(door.subjects) for door in doors[env]}
    assert found == {p: s for p, s in expected.items() if p in access.identities_in(env)}


@pytest.mark.parametrize("env", ENVS)
def test_no_subject_opens_two_identities_and_the_contributor_has_its_own(doors, env):
    assert audit.shared_subjects(doors[env]) == {}
    (contributor,) = [d for d in doors[env] if ("Contributor", access.RESOURCE_GROUP) in d.roles]
    assert contributor.persona == access.INFRA_AUTOMATION
    assert all(s.endswith(f":environment:{env}-infra") for s in contributor.subjects)
    everywhere = [s for e in ENVS for d in doors[e] if d is not contributor for s in d.subjects]
    assert not set(contributor.subjects) & set(everywhere)


def test_every_github_door_across_stacks_is_distinct(stacks):
    subjects = [
        f.inputs["subject"] for f in of_type(stacks["shared"], ":FederatedIdentityCredential")
    ]
    assert len(subjects) == len(set(subjects))
    assert f"{IMMUTABLE}:pull_request" in subjects  # the read-only preview identity
    for f in of_type(stacks["shared"], ":FederatedIdentityCredential"):
        assert f.inputs["issuer"] == "https://token.actions.githubusercontent.com"
        assert f.inputs["audiences"] == ["api://AzureADTokenExchange"]


def test_no_identity_or_trust_lives_where_an_infra_identity_can_write(stacks):
    for env in ENVS:
        for kind in (":UserAssignedIdentity", ":FederatedIdentityCredential"):
            assert not of_type(stacks[env], kind), f"{env} stack makes {kind}"
    (group,) = of_type(stacks["shared"], "resources:ResourceGroup")
    for identity in of_type(stacks["shared"], ":UserAssignedIdentity"):
        assert identity.inputs["resourceGroupName"] == group.inputs["resourceGroupName"]
    for env in ENVS:  # no environment stack grants anything on the shared group
        for r in of_type(stacks[env], ":RoleAssignment"):
            assert group.inputs["resourceGroupName"] not in r.inputs["scope"]


def test_name_only_subjects_are_added_beside_the_immutable_ones_while_needed():
    records = run_stack("shared", overrides={"mlops:githubNameOnlySubjects": "true"})
    subjects = {
        f.logical_name: f.inputs["subject"]
        for f in of_type(records, ":FederatedIdentityCredential")
    }
    assert subjects["prod-infra-federation-name-only"] == f"repo:{REPO}:environment:prod-infra"
    assert subjects["prod-infra-federation-immutable"] == f"{IMMUTABLE}:environment:prod-infra"
    per_identity = {}
    for f in of_type(records, ":FederatedIdentityCredential"):
        per_identity.setdefault(f.inputs["resourceName"], []).append(f)
    assert max(len(fs) for fs in per_identity.values()) <= 20  # Entra's limit per identity


@pytest.mark.parametrize("ids", [("0", "5"), ("7", "-1")])
def test_missing_github_ids_are_refused_in_one_sentence(ids):
    overrides = {"mlops:githubOwnerId": ids[0], "mlops:githubRepositoryId": ids[1]}
    # settings.py refuses them before any subject is built: one sentence, key, value and file
    with pytest.raises(SettingsError, match=r"^mlops:github(Owner|Repository)Id is '(0|-1)' in "):
        run_stack("shared", overrides=overrides)


def test_the_prod_monitor_has_a_read_path_and_nothing_else(doors):
    (monitor,) = [d for d in doors["prod"] if d.persona == access.MONITOR]
    assert set(monitor.roles) == {
        ("Reader", access.WORKSPACE),
        ("Storage Blob Data Reader", access.STORAGE),  # Reader alone reaches no blob data
        ("Reader", access.MODEL_REGISTRY),  # the served model's tags and training data
    }
    assert all(access.MONITOR not in {d.persona for d in doors[e]} for e in ("dev", "preprod"))


def test_the_gate_and_the_monitor_read_training_data_in_the_registry_not_in_dev(doors):
    """`share` puts a model's training data version in the registry beside it. Reader there lets
    an identity use its assets, files included: the registry hands it a SAS for its own storage
    (docs: learn.microsoft.com/azure/machine-learning/how-to-manage-registries), so no blob role
    is needed, and neither identity holds anything in dev."""
    for env, persona in (("preprod", access.AUTOMATION), ("prod", access.MONITOR)):
        (door,) = [d for d in doors[env] if d.persona == persona]
        registry = {role for role, scope in door.roles if scope == access.MODEL_REGISTRY}
        # Reader, or the publisher that adds assets (audit tags) to Reader's actions: both read
        assert registry in ({"Reader"}, {access.REGISTRY_PUBLISHER}), (env, persona, registry)
    assert "dev" not in {env for env, _ in access.BORROWED.values()} | {
        e for e, grants in access.MATRIX[access.MONITOR].items() if grants
    }


def test_people_hold_nothing_in_prod_beyond_reader_and_data_scientists_work_in_dev(stacks):
    prod = audit.people_roles(stacks["prod"], PROJECT)
    assert prod == [(access.ML_ENGINEERS, "Reader", access.WORKSPACE)]
    assert audit.people_roles(stacks["preprod"], PROJECT) == [
        (access.ML_ENGINEERS, "AzureML Data Scientist", access.WORKSPACE)
    ]
    dev = {p for p, _, _ in audit.people_roles(stacks["dev"], PROJECT)}
    assert dev == {access.DATA_SCIENTISTS, access.ML_ENGINEERS}


@pytest.mark.parametrize("env", ENVS)
def test_every_check_of_the_plan_holds(stacks, doors, env):
    results = audit.checks(doors[env], audit.people_roles(stacks[env], PROJECT), env)
    assert len(results) == (4 if env == "prod" else 3) and all(results.values()), results


@pytest.mark.parametrize("env", ENVS)
def test_every_role_assignment_is_in_the_matrix_and_the_matrix_is_complete(stacks, env):
    subscription = audit.environment_subscription(stacks[env])
    made = sorted(
        (
            audit.persona_of(r),
            audit.role_of(r, subscription, PROJECT),
            audit.scope_kind(r.inputs["scope"]),
        )
        for r in audit.assignments(stacks[env])
        + [r for r in audit.assignments(stacks["shared"]) if r.logical_name.endswith(f"-{env}")]
    )
    assert made == sorted((p, g.role, g.scope) for p, g in access.grants_for(env))


def test_sharing_and_auditing_add_to_the_registry_but_cannot_delete(stacks):
    (role,) = [
        r
        for r in of_type(stacks["shared"], ":RoleDefinition")
        if "registries/assets/write" in str(r.inputs["permissions"])
    ]
    actions = role.inputs["permissions"][0]["actions"]
    assert "Microsoft.MachineLearningServices/registries/assets/write" in actions
    assert not [a for a in actions if a.endswith(("delete", "*"))]
    assert role.inputs["assignableScopes"] == [role.inputs["scope"]]
    (group,) = of_type(stacks["shared"], "resources:ResourceGroup")
    assert role.inputs["scope"] == group.id  # assignable in the group, not at one resource
    writers = [
        r
        for r in of_type(stacks["shared"], ":RoleAssignment")
        if r.inputs["roleDefinitionId"].endswith(role.inputs["roleDefinitionId"])
    ]
    # dev shares models; preprod and prod tag what they deployed (the audit trail)
    assert sorted(w.logical_name for w in writers) == [
        f"automation-model-registry-publisher-model-registry-{env}"
        for env in ("dev", "preprod", "prod")
    ]


def test_the_release_identity_manages_autoscale_settings_and_nothing_else_where_it_autoscales(
    stacks,
):
    """Each environment whose file sets endpoint.autoscale lets its automation write autoscale
    settings in its own resource group, through a role holding only those actions."""
    from mlops.config import ENVIRONMENTS
    from mlops.config import load as load_env

    spec = access.CUSTOM_ROLES[access.AUTOSCALER]
    assert {a.rsplit("/", 1)[0] for a in spec.actions} == {"Microsoft.Insights/autoscalesettings"}
    (role,) = [
        r
        for r in of_type(stacks["shared"], ":RoleDefinition")
        if "autoscalesettings" in str(r.inputs["permissions"])
    ]
    assert role.inputs["assignableScopes"] == [
        "/subscriptions/" + role.inputs["scope"].split("/")[2]
    ]
    for env in ENVIRONMENTS:
        scales = load_env(env, ROOT).autoscale is not None
        granted = Grant(access.AUTOSCALER, access.RESOURCE_GROUP) in access.MATRIX[
            access.AUTOMATION
        ].get(env, [])
        assert granted == scales, env
        assigned = [
            r.logical_name
            for r in of_type(stacks[env], ":RoleAssignment")
            if r.inputs["roleDefinitionId"].endswith(role.inputs["roleDefinitionId"])
        ]
        assert len(assigned) == int(scales), (env, assigned)
    for r in of_type(stacks["shared"], ":RoleAssignment"):
        assert not r.inputs["roleDefinitionId"].endswith(access.REGISTRY_USER)


def delegation_of(records):
    (delegation,) = [
        r
        for r in of_type(records, ":RoleAssignment")
        if r.inputs["roleDefinitionId"].endswith(
            access.ROLES["Role Based Access Control Administrator"]
        )
    ]
    return delegation


def allowed_pairs(records, env):
    """Every (persona, role, principal type) the delegation's condition lets its holder assign or
    remove: the condition evaluated for every principal of the stack, every role the estate
    knows (Owner and User Access Administrator included) and every principal type."""
    from mlops_infra.conditions import allows

    delegation = delegation_of(records)
    subscription = audit.environment_subscription(records)
    roles = {
        **access.ROLES,
        **{r: access.role_guid(r, subscription, PROJECT) for r in access.CUSTOM_ROLES},
    }
    roles.update({name: guid for guid, name in access.FORBIDDEN_ROLES.items()})
    personas = {r.inputs["principalId"]: audit.persona_of(r) for r in audit.assignments(records)}
    found = {}
    for action, source in (("write", "Request"), ("delete", "Resource")):
        attribute = f"@{source}[Microsoft.Authorization/roleAssignments:{{}}]"
        found[action] = sorted(
            (persona, role, kind)
            for principal, persona in personas.items()
            for role, guid in roles.items()
            for kind in ("User", "Group", "ServicePrincipal")
            if allows(
                delegation.inputs["condition"],
                f"Microsoft.Authorization/roleAssignments/{action}",
                {
                    attribute.format("PrincipalId"): principal,
                    attribute.format("RoleDefinitionId"): guid,
                    attribute.format("PrincipalType"): kind,
                },
            )
        )
    return found


@pytest.mark.parametrize("env", ENVS)
def test_the_delegation_allows_exactly_the_matrix_pairs_of_its_stack(stacks, env):
    """The issue's evidence: every (role, principal) pair the condition allows, enumerated,
    against the matrix's pairs of the stack (its delegable grants); no cross pair."""
    delegation = delegation_of(stacks[env])
    assert delegation.inputs["conditionVersion"] == "2.0"
    matrix = sorted(
        {
            (persona, grant.role, "Group" if persona in access.PEOPLE else "ServicePrincipal")
            for persona, grant in access.environment_grants(env)
            if grant.role not in access.NOT_DELEGABLE
        }
    )
    found = allowed_pairs(stacks[env], env)
    assert found["write"] == matrix
    assert found["delete"] == matrix
    assert not [p for p in matrix if p[0] == access.INFRA_AUTOMATION]  # never itself


def test_a_cross_pair_is_refused_ml_engineers_get_no_data_scientist_role_in_prod(stacks):
    pairs = allowed_pairs(stacks["prod"], "prod")["write"]
    assert (access.ML_ENGINEERS, "Reader", "Group") in pairs
    for persona in (access.ML_ENGINEERS, access.PREVIEW):
        assert not [p for p in pairs if p[0] == persona and p[1] == "AzureML Data Scientist"]


def github(records, kind):
    return [r for r in records if r.type == f"github:index/{kind}"]


def test_github_environments_one_per_identity_gated_like_their_ml_environment():
    records = [  # prod's doors, made by the github stack
        r
        for r in run_stack("github", overrides={"mlops:manageGitHub": "true"})
        if r.inputs.get("environment") in ("prod", "prod-infra", "monitor")
    ]
    environments = {
        r.inputs["environment"]: r
        for r in github(records, "repositoryEnvironment:RepositoryEnvironment")
    }
    assert set(environments) == {"prod", "prod-infra", "monitor"}
    for name in ("prod", "prod-infra"):
        assert environments[name].inputs["reviewers"] == [{"teams": PROD_REVIEWERS}]
        assert environments[name].inputs["preventSelfReview"] is True
        assert environments[name].inputs["canAdminsBypass"] is False
    assert environments["monitor"].inputs.get("reviewers") is None  # a daily run waits for no one
    policies = github(
        records, "repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
    )
    assert {p.inputs["branchPattern"] for p in policies} == {"main"} and len(policies) == 3
    variables = {}
    for r in github(records, "actionsEnvironmentVariable:ActionsEnvironmentVariable"):
        variables.setdefault(r.inputs["environment"], {})[r.inputs["variableName"]] = r.inputs[
            "value"
        ]
    assert "AZURE_INFRA_CLIENT_ID" in variables["prod-infra"]
    assert "AZURE_INFRA_CLIENT_ID" not in variables["prod"] | variables["monitor"]
    assert variables["prod"]["AZURE_CLIENT_ID"] != variables["monitor"]["AZURE_CLIENT_ID"]
    registry = env_setting("prod", "azure.registry")
    assert variables["monitor"]["AZURE_ML_REGISTRY"] == registry  # the name the code reads
    # the six every ML job exports (tests/github/actions_engine.py, VARIABLES, passes these)
    six = {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP"}
    six |= {"AZURE_ML_WORKSPACE", "AZURE_ML_REGISTRY"}
    assert set(variables["prod"]) == set(variables["monitor"]) == six
    assert not any(
        "AZURE_ENDPOINT_IDENTITY_ID" in v or "AZURE_ML_REGISTRY_ID" in v for v in variables.values()
    )


def test_every_identity_with_a_door_has_its_github_environment_and_only_prods_wait():
    records = run_stack("github", overrides={"mlops:manageGitHub": "true"})
    environments = {
        e.inputs["environment"]: e
        for e in github(records, "repositoryEnvironment:RepositoryEnvironment")
    }
    doors = {
        access.IDENTITIES[persona].door_in(env)
        for env in ENVS
        for persona in access.identities_in(env)
        if access.IDENTITIES[persona].door
    }
    assert set(environments) == doors
    assert {"dev", "dev-infra", "preprod", "preprod-infra", "monitor"} <= doors
    waiting = {name for name, e in environments.items() if e.inputs.get("reviewers")}
    assert waiting == {"prod", "prod-infra"}


def test_prod_without_reviewers_is_refused():
    with pytest.raises(
        SettingsError, match="mlops:prodReviewerTeamIds is empty in infra/Pulumi.github.yaml"
    ):
        run_stack(
            "github",
            overrides={"mlops:manageGitHub": "true", "mlops:prodReviewerTeamIds": json.dumps([])},
        )


def test_the_readme_access_tables_are_the_matrix_the_plan_is_checked_against():
    from helpers import ROOT

    readme = (ROOT / "infra" / "README.md").read_text()
    assert access.as_table() in readme, "infra/README.md's roles table differs from access.MATRIX"
    assert access.doors_table() in readme, "infra/README.md's doors table differs from IDENTITIES"

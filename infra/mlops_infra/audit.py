"""Read the access design back from a mocked plan: who opens which identity, and what it holds.

Works on the records offline.run_stack returns (shared stack plus one environment),
never on the matrix, so the plan and the tests check what the program builds."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_infra import access
from mlops_infra.offline import Record, identity_ids

ROLE_NAMES = {guid: name for name, guid in access.ROLES.items()}
IMMUTABLE_MARK = "@"  # repo:OWNER@OWNER_ID/REPO@REPO_ID:...


@dataclass(frozen=True)
class Door:
    identity: str
    persona: str
    subjects: tuple[str, ...]
    roles: tuple[tuple[str, str], ...]  # (role, scope kind)


def scope_kind(scope: str) -> str:
    for marker, kind in (
        ("/Microsoft.MachineLearningServices/registries/", access.MODEL_REGISTRY),
        ("/workspaces/", access.WORKSPACE),
        ("/storageAccounts/", access.STORAGE),
        ("/Microsoft.ContainerRegistry/", access.CONTAINER_REGISTRY),
        ("/userAssignedIdentities/", access.COMPUTE_IDENTITY),
    ):
        if marker in scope:
            return kind
    return access.RESOURCE_GROUP


def persona_of(record: Record) -> str:
    return next(p for p in access.MATRIX if record.logical_name.startswith(p + "-"))


def assignments(records: list[Record]) -> list[Record]:
    return [r for r in records if r.type.endswith(":RoleAssignment")]


def doors(shared: list[Record], environment: list[Record], env: str, project: str) -> list[Door]:
    """Each identity of the environment: the subjects it trusts and the roles it holds in the
    environment's stack and, for this environment, in the shared stack."""
    from mlops_infra.shared import identity_logical_name

    subscription = environment_subscription(environment)
    identities = {r.logical_name: r for r in shared if r.type.endswith(":UserAssignedIdentity")}
    held = assignments(environment) + [
        r for r in assignments(shared) if r.logical_name.endswith(f"-{env}")
    ]
    found = []
    for persona, spec in access.identities_in(env).items():
        record = identities[identity_logical_name(env, spec)]
        principal = identity_ids(record.id)["principalId"]
        subjects = sorted(
            r.inputs["subject"]
            for r in shared
            if r.type.endswith(":FederatedIdentityCredential")
            and r.inputs["resourceName"] == record.azure_name
        )
        roles = sorted(
            (role_of(r, subscription, project), scope_kind(r.inputs["scope"]))
            for r in held
            if r.inputs["principalId"] == principal
        )
        found.append(Door(record.azure_name, persona, tuple(subjects), tuple(roles)))
    return found


def environment_subscription(records: list[Record]) -> str:
    group = next(r for r in records if r.type == "azure-native:resources:ResourceGroup")
    return group.id.split("/")[2]


def role_of(record: Record, subscription: str, project: str) -> str:
    guid = record.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
    custom = {access.role_guid(r, subscription, project): r for r in access.CUSTOM_ROLES}
    return ROLE_NAMES.get(guid) or custom.get(guid, guid)


def people_roles(environment: list[Record], project: str) -> list[tuple[str, str, str]]:
    subscription = environment_subscription(environment)
    return sorted(
        (persona_of(r), role_of(r, subscription, project), scope_kind(r.inputs["scope"]))
        for r in assignments(environment)
        if persona_of(r) in access.PEOPLE
    )


def shared_subjects(found: list[Door]) -> dict[str, list[str]]:
    """subject -> identities, for every subject more than one identity trusts"""
    owners: dict[str, list[str]] = {}
    for door in found:
        for subject in door.subjects:
            owners.setdefault(subject, []).append(door.identity)
    return {s: ids for s, ids in owners.items() if len(ids) > 1}


def checks(found: list[Door], people: list[tuple[str, str, str]], env: str) -> dict[str, bool]:
    """The access design's promises for one environment, each evaluated on the plan."""
    github = [d for d in found if d.subjects]
    contributor = [d for d in found if ("Contributor", access.RESOURCE_GROUP) in d.roles]
    contributor_subjects = {s for d in contributor for s in d.subjects}
    others = {s for d in found if d not in contributor for s in d.subjects}
    result = {
        "every GitHub door trusts an immutable subject": all(
            any(IMMUTABLE_MARK in s.split(":")[1] for s in d.subjects) for d in github
        ),
        "the Contributor identity shares no subject with any other": len(contributor) == 1
        and not contributor_subjects & others,
        "people hold nothing in prod beyond Reader": env != "prod"
        or all(role in access.PEOPLE_IN_PROD for _, role, _ in people),
    }
    if env == "prod":
        monitor = [d for d in found if d.persona == access.MONITOR]
        result["the monitor reads the workspace and the collected data, nothing more"] = len(
            monitor
        ) == 1 and set(monitor[0].roles) == {
            ("Reader", access.WORKSPACE),
            ("Storage Blob Data Reader", access.STORAGE),
            ("Reader", access.MODEL_REGISTRY),
        }
    return result

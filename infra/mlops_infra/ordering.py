"""The order ARM and Entra need, read back from the registrations of a mocked run.

- ARM refuses a role assignment whose scope does not exist yet (RoleAssignments_Create answers
  404 for a missing scope), so every assignment waits for the resource of its scope and for the
  custom role it grants.
- Entra refuses concurrent writes of federated identity credentials on one identity (409;
  learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations,
  "Concurrent updates aren't supported"), so each credential of an identity waits for the
  previous one.
- `principalType` is set on every assignment: ARM then skips the directory lookup that fails
  for an identity Entra has not replicated yet (learn.microsoft.com/azure/role-based-access-
  control/role-assignments-template, "principalType": "new service principal").

Pulumi runs whatever has no dependency between it in parallel, so each order must be a
dependency the engine sees (an input from the other resource's output, or depends_on), not the
luck of the program's order (pulumi.com/docs/iac/concepts/options/dependson).
"""

from __future__ import annotations

from itertools import combinations

from mlops_infra.offline import Record, Registration

ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
PRINCIPAL_TYPES = ("Group", "ServicePrincipal", "User", "ForeignGroup", "Device")  # REST spec enum


def waits_for(registrations: list[Registration]) -> dict[str, set[str]]:
    """URN -> every URN it waits for, directly or through others."""
    direct = {r.urn: set(r.dependencies) for r in registrations}
    closed: dict[str, set[str]] = {}

    def close(urn: str) -> set[str]:
        if urn not in closed:
            closed[urn] = set()
            for dependency in direct.get(urn, ()):
                closed[urn] |= {dependency} | close(dependency)
        return closed[urn]

    for urn in direct:
        close(urn)
    return closed


def problems(records: list[Record], registrations: list[Registration]) -> list[str]:
    """Every assignment registered before, or not waiting for, the resource of its scope or its
    custom role; every assignment without a principal type; every two credentials of one
    identity that the engine could write together."""
    urn_of = {(r.type, r.logical_name): r.urn for r in registrations}
    position = {r.urn: index for index, r in enumerate(registrations)}
    waits = waits_for(registrations)
    by_id = {r.id: r for r in records if r.id}
    found = []
    for assignment in (r for r in records if r.type == ASSIGNMENT):
        urn = urn_of[(assignment.type, assignment.logical_name)]
        name = assignment.logical_name
        if assignment.inputs.get("principalType") not in PRINCIPAL_TYPES:
            found.append(f"{name} sets no principalType")
        scope = by_id.get(assignment.inputs["scope"])
        role = by_id.get(assignment.inputs["roleDefinitionId"])
        if scope is None:
            found.append(f"{name}'s scope {assignment.inputs['scope']} is no resource of the stack")
        for needed, what in ((scope, "the resource of its scope"), (role, "its role")):
            if needed is None or (what == "its role" and needed.type != ROLE_DEFINITION):
                continue
            needed_urn = urn_of[(needed.type, needed.logical_name)]
            if position[needed_urn] > position[urn]:
                found.append(f"{name} is registered before {what}, {needed.logical_name}")
            elif needed_urn not in waits[urn]:
                found.append(f"{name} does not wait for {what}, {needed.logical_name}")
    by_identity: dict[tuple, list[Record]] = {}
    for credential in (r for r in records if r.type == CREDENTIAL):
        key = (credential.inputs["resourceGroupName"], credential.inputs["resourceName"])
        by_identity.setdefault(key, []).append(credential)
    for (_, identity), credentials in sorted(by_identity.items()):
        for first, second in combinations(credentials, 2):
            a, b = (urn_of[(c.type, c.logical_name)] for c in (first, second))
            if a not in waits[b] and b not in waits[a]:
                found.append(
                    f"{first.logical_name} and {second.logical_name} write credentials of "
                    f"{identity} at the same time"
                )
    return found

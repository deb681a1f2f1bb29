"""Role assignments, and the condition that bounds a delegated RBAC Administrator."""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization

from mlops_infra import access
from mlops_infra.settings import Settings


def role_definition_id(settings: Settings, role: str) -> str:
    guid = access.role_guid(role, settings.subscription_id, settings.project)
    return (
        f"/subscriptions/{settings.subscription_id}/providers/"
        f"Microsoft.Authorization/roleDefinitions/{guid}"
    )


def assign(
    logical_name: str,
    seed: str,
    settings: Settings,
    principal: pulumi.Input[str],
    principal_type: str,
    role: str,
    scope: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    condition: pulumi.Input[str] | None = None,
) -> authorization.RoleAssignment:
    return authorization.RoleAssignment(
        logical_name,
        # a stable name per (stack, persona, role, scope): re-runs update, never duplicate
        role_assignment_name=str(uuid.uuid5(uuid.NAMESPACE_URL, seed)),
        principal_id=principal,
        principal_type=principal_type,
        role_definition_id=role_definition_id(settings, role),
        scope=scope,
        condition=condition,
        condition_version="2.0" if condition is not None else None,
        opts=opts,
    )


def slug(persona: str, grant: access.Grant) -> str:
    return f"{persona}-{grant.role.lower().replace(' ', '-')}-{grant.scope}"


def delegation_condition(pairs: dict[str, tuple[str, list[str]]]) -> str:
    """Limit a Role Based Access Control Administrator to the matrix's (role, principal) pairs:
    `pairs` maps each principal id to its principal type and the role ids the matrix gives it.
    One clause per principal, so no principal may receive another's role (a roles x principals
    condition would allow every cross pair), for new assignments (@Request) and deletions
    (@Resource). Syntax: learn.microsoft.com/azure/role-based-access-control/
    delegate-role-assignments-examples ("Constrain roles and specific principals")."""
    attribute = "@{source}[Microsoft.Authorization/roleAssignments:{name}]"

    def only_matrix(action: str, source: str) -> str:
        def attr(name: str) -> str:
            return attribute.format(source=source, name=name)

        clauses = " OR ".join(
            f"({attr('PrincipalId')} ForAnyOfAnyValues:GuidEquals {{{principal}}} AND "
            f"{attr('RoleDefinitionId')} ForAnyOfAnyValues:GuidEquals "
            f"{{{', '.join(sorted(roles))}}} AND "
            f"{attr('PrincipalType')} ForAnyOfAnyValues:StringEqualsIgnoreCase {{'{kind}'}})"
            for principal, (kind, roles) in sorted(pairs.items())
        )
        return (
            f"((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/{action}'}})) OR "
            f"({clauses}))"
        )

    return only_matrix("write", "Request") + " AND " + only_matrix("delete", "Resource")

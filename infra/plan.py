"""Print what `pulumi up` would create for each stack, without Azure, network or Pulumi CLI.

    python infra/plan.py [STACK ...]      (make infra-plan)

Runs the real program under Pulumi's mocks and lists its resources and every
role assignment with the persona, role and scope it comes from.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

INFRA = Path(__file__).resolve().parent
sys.path.insert(0, str(INFRA))

from mlops_infra import access, alerts, audit, events, state_access  # noqa: E402
from mlops_infra.offline import run_stack, stack_config  # noqa: E402
from mlops_infra.settings import ENVIRONMENTS, GITHUB, SHARED, SettingsError  # noqa: E402

ROLE_NAMES = {guid: name for name, guid in {**access.ROLES, **state_access.ROLES}.items()}


def describe(stack: str, shared: list) -> str:
    records = shared if stack == SHARED else run_stack(stack)
    lines = [f"## stack {stack}", "", "| resource type | name |", "| --- | --- |"]
    for record in records:
        if record.type.startswith("azure-native:") and not record.type.endswith(":RoleAssignment"):
            lines.append(f"| {record.type.removeprefix('azure-native:')} | {record.azure_name} |")
    for record in records:
        if record.type.startswith("github:"):
            lines.append(f"| {record.type} | {record.azure_name} |")
    assignments = [r for r in records if r.type.endswith(":RoleAssignment")]
    lines += [
        "",
        f"{len(assignments)} role assignments:",
        "",
        "| persona | role | scope |",
        "| --- | --- | --- |",
    ]
    for record in assignments:
        persona = next((p for p in access.MATRIX if record.logical_name.startswith(p + "-")), "?")
        role = ROLE_NAMES.get(record.inputs["roleDefinitionId"].rsplit("/", 1)[-1], "custom")
        scope = record.inputs["scope"].split("/resourceGroups/", 1)[-1]
        lines.append(f"| {persona} | {role} | {scope} |")
    counts = Counter(r.type.split(":")[1] for r in records if r.type.startswith("azure-native:"))
    lines += ["", "totals: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())), ""]
    if stack not in (SHARED, GITHUB):
        lines += identities(stack, shared, records)
        lines += alerting(stack, records)
    return "\n".join(lines)


def alerting(env: str, records: list) -> list[str]:
    """Where the environment's events go, who is paged, and which rules wait for a deploy."""
    from mlops.config import load

    def of(kind: str) -> list:
        return [r for r in records if r.type == f"azure-native:{kind}"]

    lines = [f"### events and alerts of {env}", ""]
    subscriptions = of("eventgrid:SystemTopicEventSubscription")
    for sub in subscriptions:
        types = ", ".join(t.rsplit(".", 1)[-1] for t in sub.inputs["filter"]["includedEventTypes"])
        lines.append(f"- events ({types}) -> {sub.inputs['destination']['endpointUrl']}")
    if not subscriptions:
        lines.append(f"- {events.NO_DESTINATION}: no event subscription")
    for group in of("monitor:ActionGroup"):
        receivers = [e["emailAddress"] for e in group.inputs.get("emailReceivers", [])] + [
            w["serviceUri"] for w in group.inputs.get("webhookReceivers", [])
        ]
        lines.append(f"- action group {group.azure_name} pages: {', '.join(receivers)}")
    rules = of("monitor:ActivityLogAlert") + of("monitor:MetricAlert")
    for rule in rules:
        actions = rule.inputs.get("actions")
        paged = bool(actions.get("actionGroups") if isinstance(actions, dict) else actions)
        what = rule.inputs.get("description", "")
        if rule.type.endswith("MetricAlert"):
            (criterion,) = rule.inputs["criteria"]["allOf"]
            what = f"{criterion['metricName']} > {criterion['threshold']:g}"
        lines.append(f"- rule {rule.azure_name}: {what} ({'pages' if paged else 'pages nobody'})")
    endpoint = load(env, INFRA.parent)
    if endpoint.alerts is None:
        lines.append(f"- no endpoint.alerts in {endpoint.path}: no metric rules")
    else:
        made = {r.azure_name for r in of("monitor:MetricAlert")}
        for target, target_rules in alerts.metric_targets(endpoint.endpoint_name).items():
            if not {alerts.rule_name(target, rule) for rule in target_rules} <= made:
                lines.append(
                    f"- {target} not deployed yet: its metric rules wait for the next pulumi up"
                )
    return [*lines, ""]


def identities(env: str, shared: list, records: list) -> list[str]:
    """Who opens each identity of the environment, what it holds, and the design's checks."""
    project = stack_config(env)["mlops:project"]
    doors = audit.doors(shared, records, env, project)
    lines = [
        f"### identities of {env}: trusted subjects and roles (both stacks)",
        "",
        "| identity | trusted subjects | roles |",
        "| --- | --- | --- |",
    ]
    for door in doors:
        subjects = "<br>".join(f"`{s}`" for s in door.subjects) or "none (no GitHub job)"
        roles = "<br>".join(f"{role} @ {scope}" for role, scope in door.roles)
        lines.append(f"| {door.identity} | {subjects} | {roles} |")
    people = audit.people_roles(records, project)
    lines += ["", "people: " + (", ".join(f"{p}: {r} @ {s}" for p, r, s in people) or "none"), ""]
    for statement, holds in audit.checks(doors, people, env).items():
        lines.append(f"- [{'x' if holds else ' '}] {statement}")
    return [*lines, ""]


def main(argv: list[str]) -> int:
    stacks = argv or [SHARED, *ENVIRONMENTS, GITHUB]
    print("# Offline plan (Pulumi mocks: nothing is created)\n")
    print("## Access matrix (persona x environment -> role @ scope)\n")
    print(access.as_table() + "\n")
    print("## Doors (which GitHub Environment opens which identity)\n")
    print(access.doors_table() + "\n")
    failed = False
    try:
        shared = run_stack(SHARED)
        for stack in stacks:
            text = describe(stack, shared)
            failed = failed or "- [ ]" in text
            print(text)
    except SettingsError as problem:  # one sentence naming key, value and file
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

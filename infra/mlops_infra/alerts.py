"""Azure Monitor alerts of one environment: who hears them, and the rules on its endpoint.

Thresholds come from the environment file (`endpoint.alerts`, read by mlops.config): no
section, no metric rules. Receivers come from `mlops init`. Only prod pages: its rules name
an action group. Preprod's rules fire into the portal's alert list and page nobody; dev has
none (its endpoint is a scratch one, and a metric rule is billed per time series it watches).

What can be planned before the endpoint exists, and what cannot:
- a failed deployment is an activity-log event, and activity-log alert rules take a resource
  group as scope (their scopes are resource id prefixes: learn, REST Activity Log Alerts -
  Create Or Update), so that rule is planned with the stack;
- metric rules on ML online endpoints watch one resource each: multi-resource metric rules
  (a resource group scope with targetResourceType) exist for a fixed list of types that
  has no Microsoft.MachineLearningServices type (learn: azure-monitor/alerts/alerts-types,
  "Monitor multiple resources with one alert rule"). The endpoint and its blue/green
  deployments are made by `mlops deploy` after `pulumi up`, so each metric rule is planned
  only for a target the lookup finds; the plan names the targets still waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import machinelearningservices, monitor, resources

from mlops.config import Alerts, load
from mlops.errors import MlopsError
from mlops.rollout import COLOURS  # the rollout's deployment slots
from mlops_infra.settings import INFRA, Settings, SettingsError

ROOT = INFRA.parent  # the repository: environments/<env>.yml

PAGING_ENVIRONMENTS = ("prod",)
RELEASE_ENVIRONMENTS = ("preprod", "prod")  # where releases deploy: a failed one is news
ENDPOINT_TYPE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_TYPE = f"{ENDPOINT_TYPE}/deployments"
# The activity-log operation of creating or updating a deployment (its RBAC action; learn:
# machine-learning/how-to-troubleshoot-online-endpoints names it for SDK/CLI deployments).
DEPLOYMENT_WRITE = f"{DEPLOYMENT_TYPE}/write"
# Alert rules and action groups live in "Global" (REST Activity Log Alerts: "Global, West
# Europe and North Europe"; metric alerts and action groups: the REST examples' "global").
GLOBAL = "Global"
WINDOW, EVERY = "PT5M", "PT1M"  # metrics are sampled per minute (PT1M time grain)


@dataclass(frozen=True)
class MetricRule:
    """One metric alert rule: the metric (its name in the REST API, from learn:
    azure-monitor/reference/supported-metrics/microsoft-machinelearningservices-workspaces-
    onlineendpoints[-deployments]-metrics), how it is aggregated and what it is compared to."""

    key: str
    namespace: str
    metric: str
    aggregation: str
    severity: int  # 0 critical .. 4 verbose
    threshold: Callable[[Alerts, int], float]  # (alerts, target_rps) -> threshold
    description: str
    dimensions: tuple[tuple[str, str], ...] = ()


ENDPOINT_RULES = (
    MetricRule(
        "latency",
        ENDPOINT_TYPE,
        "RequestLatency_P95",  # milliseconds, dimension `deployment`
        "Average",
        2,
        lambda a, rps: float(a.latency_ms),
        "P95 request latency above endpoint.alerts.latency_ms",
    ),
    MetricRule(
        "errors",
        ENDPOINT_TYPE,
        # requests per minute, dimension statusCodeClass (the value "5xx" follows the portal's
        # split; the metrics reference names the dimension, not its values). A rule compares one
        # metric to a number, not a ratio: the share of 5xx answers is turned into a count at
        # the load the environment is sized for (endpoint.target_rps).
        "RequestsPerMinute",
        "Average",
        1,
        lambda a, rps: round(a.error_rate * rps * 60, 3),
        "5xx answers per minute above endpoint.alerts.error_rate x target_rps x 60",
        (("statusCodeClass", "5xx"),),
    ),
)
DEPLOYMENT_RULES = (
    MetricRule(
        "cpu",
        DEPLOYMENT_TYPE,
        "CpuUtilizationPercentage",  # percent, per instance (dimension instanceId)
        "Average",
        2,
        lambda a, rps: float(a.cpu_percent),
        "CPU use above endpoint.alerts.cpu_percent",
    ),
    MetricRule(
        "memory",
        DEPLOYMENT_TYPE,
        # Azure ML names a deployment's memory use this way (there is no MemoryUtilization...)
        "CpuMemoryUtilizationPercentage",
        "Average",
        2,
        lambda a, rps: float(a.memory_percent),
        "memory use above endpoint.alerts.memory_percent",
    ),
)


@dataclass(frozen=True)
class Plan:
    """What the stack builds for alerts, and what it leaves for a later `pulumi up`."""

    resources: list[pulumi.Resource]
    waiting: list[str]  # targets not deployed yet, each with the rules it will get


def action_group(
    settings: Settings, name: str, short_name: str, resource_group: pulumi.Input[str], opts
) -> monitor.ActionGroup | None:
    """Prod's receivers, from `mlops init` (settings refuse a prod without one); None elsewhere."""
    if settings.stack not in PAGING_ENVIRONMENTS:
        return None
    return monitor.ActionGroup(
        "alerts",
        action_group_name=name,
        group_short_name=short_name,  # at most 12 characters (learn: action-groups)
        resource_group_name=resource_group,
        location=GLOBAL,
        enabled=True,
        email_receivers=[
            monitor.EmailReceiverArgs(
                name="on-call-email",
                email_address=settings.alert_email,
                use_common_alert_schema=True,
            )
        ]
        if settings.alert_email
        else [],
        webhook_receivers=[
            monitor.WebhookReceiverArgs(
                name="on-call-webhook",
                service_uri=settings.alert_webhook_url,
                use_common_alert_schema=True,
            )
        ]
        if settings.alert_webhook_url
        else [],
        opts=opts,
    )


def failed_deployments(
    group: resources.ResourceGroup,
    rule_name: str,
    receivers: monitor.ActionGroup | None,
    opts,
) -> monitor.ActivityLogAlert:
    """Any online deployment write in the group that fails: a rollout that did not land."""
    return monitor.ActivityLogAlert(
        "alert-deployment-failed",
        activity_log_alert_name=rule_name,
        resource_group_name=group.name,
        location=GLOBAL,
        scopes=[group.id],
        enabled=True,
        description="An online deployment of this environment failed to be created or updated.",
        condition=monitor.AlertRuleAllOfConditionArgs(
            all_of=[
                monitor.AlertRuleAnyOfOrLeafConditionArgs(
                    field="category", equals="Administrative"
                ),
                monitor.AlertRuleAnyOfOrLeafConditionArgs(
                    field="operationName", equals=DEPLOYMENT_WRITE
                ),
                monitor.AlertRuleAnyOfOrLeafConditionArgs(field="status", equals="Failed"),
            ]
        ),
        actions=monitor.ActionListArgs(
            action_groups=[monitor.ActionGroupArgs(action_group_id=receivers.id)]
            if receivers
            else []
        ),
        opts=opts,
    )


def metric_rule(
    rule: MetricRule,
    target_name: str,
    target_id: pulumi.Input[str],
    alerts: Alerts,
    target_rps: int,
    group_name: pulumi.Input[str],
    receivers: monitor.ActionGroup | None,
    opts,
) -> monitor.MetricAlert:
    return monitor.MetricAlert(
        f"alert-{rule_name(target_name, rule)}",
        rule_name=rule_name(target_name, rule),
        resource_group_name=group_name,
        location=GLOBAL,
        scopes=[target_id],
        description=rule.description,
        severity=rule.severity,
        enabled=True,
        auto_mitigate=True,
        window_size=WINDOW,
        evaluation_frequency=EVERY,
        # a union-typed input: typed arguments keep the wire names
        criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
            odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
            all_of=[
                monitor.MetricCriteriaArgs(
                    criterion_type="StaticThresholdCriterion",
                    name=rule.key,
                    metric_name=rule.metric,
                    metric_namespace=rule.namespace,
                    time_aggregation=rule.aggregation,
                    operator="GreaterThan",
                    threshold=rule.threshold(alerts, target_rps),
                    dimensions=[
                        monitor.MetricDimensionArgs(name=n, operator="Include", values=[v])
                        for n, v in rule.dimensions
                    ],
                )
            ],
        ),
        actions=[monitor.MetricAlertActionArgs(action_group_id=receivers.id)] if receivers else [],
        opts=opts,
    )


def deployed(lookup: Callable[[], object]) -> bool:
    """Whether the target exists now: its Azure lookup answers, or says it is not found.

    Any other failure (no access, throttling) stops the program instead of dropping rules."""
    try:
        lookup()
    except Exception as problem:  # an invoke failure carries the provider's message only
        text = str(problem)
        if "NotFound" in text or "404" in text:
            return False
        raise
    return True


def lookup(target: str, resource_group: str, workspace: str) -> Callable[[], object]:
    """The Azure read that finds ENDPOINT or ENDPOINT/DEPLOYMENT (or raises not found)."""
    endpoint, _, slot = target.partition("/")
    where = {"resource_group_name": resource_group, "workspace_name": workspace}
    if slot:
        return lambda: machinelearningservices.get_online_deployment(
            deployment_name=slot, endpoint_name=endpoint, **where
        )
    return lambda: machinelearningservices.get_online_endpoint(endpoint_name=endpoint, **where)


def metric_targets(endpoint: str) -> dict[str, tuple[MetricRule, ...]]:
    """ENDPOINT and ENDPOINT/SLOT (the rollout's blue and green) -> the metric rules each gets."""
    return {endpoint: ENDPOINT_RULES} | {f"{endpoint}/{slot}": DEPLOYMENT_RULES for slot in COLOURS}


def rule_name(target: str, rule: MetricRule) -> str:
    return f"{target.replace('/', '-')}-{rule.key}"


def environment_alerts(
    settings: Settings,
    names,
    group: resources.ResourceGroup,
    workspace_id: pulumi.Output[str],
    opts,
) -> Plan:
    """Receivers and rules of one environment, from its environment file and init's answers."""
    try:
        env = load(settings.stack, ROOT)
    except MlopsError as problem:  # one sentence naming the file and field, as mlops says it
        raise SettingsError(str(problem)) from None
    receivers = action_group(
        settings, f"ag-{names.project}-{settings.stack}", f"{names.code}-alerts", group.name, opts
    )
    made: list[pulumi.Resource] = [receivers] if receivers else []
    if settings.stack in RELEASE_ENVIRONMENTS:
        made.append(
            failed_deployments(group, f"{env.endpoint_name}-deployment-failed", receivers, opts)
        )
    if env.alerts is None:
        pulumi.log.info(f"{settings.stack}: no endpoint.alerts in {env.path}: no metric rules")
        return Plan(made, [])
    waiting = []
    for target, rules in metric_targets(env.endpoint_name).items():
        target_id = pulumi.Output.concat(
            workspace_id, "/onlineEndpoints/", target.replace("/", "/deployments/")
        )
        if not deployed(lookup(target, names.resource_group, names.workspace)):
            waiting.append(f"{target} ({', '.join(rule.key for rule in rules)})")
            continue
        for rule in rules:
            made.append(
                metric_rule(
                    rule,
                    target,
                    target_id,
                    env.alerts,
                    env.target_rps or 0,
                    group.name,
                    receivers,
                    opts,
                )
            )
    if waiting:
        pulumi.log.info(
            f"{settings.stack}: not deployed yet, so no metric rules until the next pulumi up: "
            + "; ".join(waiting)
        )
    return Plan(made, waiting)

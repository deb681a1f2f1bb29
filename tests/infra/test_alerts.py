"""Lifecycle events and endpoint alerts in the plan: what each environment gets, from which
file, and who is paged. Thresholds are read from the environment files themselves, so the
tests follow a fork's own numbers."""

import re

import pytest
import yaml
from helpers import ROOT
from mlops_infra import alerts
from mlops_infra.offline import run_stack, stack_config, stack_settings
from mlops_infra.settings import Settings, SettingsError
from rules import STACK_RULES
from test_stacks import snake_case_keys

ENVS = ("dev", "preprod", "prod")
HOOK = "https://hooks.example.com/mlops/events"
ENDPOINT = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT = f"{ENDPOINT}/deployments"
PAGER = "https://pager.example.com/azure/alerts"


def env_file(env: str) -> dict:
    return yaml.safe_load((ROOT / "environments" / f"{env}.yml").read_text())


def endpoint_of(env: str) -> str:
    return env_file(env)["endpoint"]["name"]


def live(env: str, *slots: str) -> frozenset[str]:
    """The endpoint and the named deployment slots, as Azure would find them."""
    return frozenset({endpoint_of(env), *(f"{endpoint_of(env)}/{slot}" for slot in slots)})


def of(records, kind):
    return [r for r in records if r.type == f"azure-native:{kind}"]


def workspace_id(records):
    (workspace,) = of(records, "machinelearningservices:Workspace")
    return workspace.id


# ---- Event Grid -------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_each_workspace_has_a_system_topic_and_no_subscription_without_a_destination(stacks, env):
    (topic,) = of(stacks[env], "eventgrid:SystemTopic")
    assert topic.inputs["topicType"] == "Microsoft.MachineLearningServices.Workspaces"
    assert topic.inputs["source"] == workspace_id(stacks[env])
    assert topic.inputs["location"] == stack_settings(env).location
    # init's answer, whichever it is: a subscription only where there is a destination
    wanted = int(bool(stack_settings(env).event_webhook_url))
    assert len(of(stacks[env], "eventgrid:SystemTopicEventSubscription")) == wanted


@pytest.fixture(scope="module")
def with_webhook():
    return {env: run_stack(env, overrides={"mlops:eventWebhookUrl": HOOK}) for env in ENVS}


@pytest.mark.parametrize("env", ENVS)
def test_the_event_webhook_subscribes_every_workspace_to_the_lifecycle_events(with_webhook, env):
    (topic,) = of(with_webhook[env], "eventgrid:SystemTopic")
    (subscription,) = of(with_webhook[env], "eventgrid:SystemTopicEventSubscription")
    assert subscription.inputs["systemTopicName"] == topic.azure_name
    destination = subscription.inputs["destination"]
    assert (destination["endpointType"], destination["endpointUrl"]) == ("WebHook", HOOK)
    # only what Azure ML raises for a v2 workspace's jobs and models: no v1 web-service or
    # dataset-drift-monitor event, which nothing here would ever raise
    assert subscription.inputs["filter"]["includedEventTypes"] == [
        "Microsoft.MachineLearningServices.RunCompleted",
        "Microsoft.MachineLearningServices.RunStatusChanged",
        "Microsoft.MachineLearningServices.ModelRegistered",
    ]
    retry = subscription.inputs["retryPolicy"]
    assert (
        1 <= retry["maxDeliveryAttempts"] <= 30 and 1 <= retry["eventTimeToLiveInMinutes"] <= 1440
    )


# ---- receivers and the rules planned before any deployment -------------------------------------


def test_prod_pages_the_receivers_init_named(stacks):
    settings = stack_settings("prod")
    (group,) = of(stacks["prod"], "monitor:ActionGroup")
    assert group.inputs["location"] == "Global" and group.inputs["enabled"] is True
    assert len(group.inputs["groupShortName"]) <= 12  # learn: action-groups (display name)
    assert [e["emailAddress"] for e in group.inputs["emailReceivers"]] == [settings.alert_email]
    records = run_stack("prod", overrides={"mlops:alertWebhookUrl": PAGER})
    (group,) = of(records, "monitor:ActionGroup")
    assert [w["serviceUri"] for w in group.inputs["webhookReceivers"]] == [PAGER]


@pytest.mark.parametrize("env", ENVS)
def test_a_failed_deployment_alerts_from_the_first_up_and_only_prod_pages(stacks, env):
    records = stacks[env]
    assert not of(records, "monitor:MetricAlert")  # nothing deployed: no metric rule yet
    failed = of(records, "monitor:ActivityLogAlert")
    if env == "dev":  # no release deploys to dev: nothing to watch
        assert not failed and not of(records, "monitor:ActionGroup")
        return
    (rule,) = failed
    (group,) = of(records, "resources:ResourceGroup")
    assert rule.inputs["scopes"] == [group.id]  # a prefix that exists before any endpoint
    assert rule.inputs["location"] == "Global"
    assert {(c["field"], c["equals"]) for c in rule.inputs["condition"]["allOf"]} == {
        ("category", "Administrative"),
        ("operationName", alerts.DEPLOYMENT_WRITE),
        ("status", "Failed"),
    }
    paged = [a["actionGroupId"] for a in rule.inputs["actions"].get("actionGroups", [])]
    if env == "prod":
        (receivers,) = of(records, "monitor:ActionGroup")
        assert paged == [receivers.id]
    else:
        assert paged == [] and not of(records, "monitor:ActionGroup")


# ---- metric rules, once the endpoint and its deployments exist ---------------------------------


@pytest.fixture(scope="module")
def prod_serving():
    return run_stack("prod", deployed=live("prod", "blue"))


def test_prod_rules_carry_the_thresholds_of_environments_prod_yml(prod_serving):
    endpoint = env_file("prod")["endpoint"]
    wanted = endpoint["alerts"]
    name = endpoint["name"]
    base = f"{workspace_id(prod_serving)}/onlineEndpoints/{name}"
    rules = {r.azure_name: r for r in of(prod_serving, "monitor:MetricAlert")}
    blue = f"{base}/deployments/blue"
    five_xx = [{"name": "statusCodeClass", "operator": "Include", "values": ["5xx"]}]
    # rule -> scope, metric namespace, metric (names in the REST API: learn, supported metrics
    # of .../onlineEndpoints and .../onlineEndpoints/deployments), threshold, dimension filter
    expected = {
        f"{name}-latency": (base, ENDPOINT, "RequestLatency_P95", wanted["latency_ms"], []),
        f"{name}-errors": (
            base,
            ENDPOINT,
            "RequestsPerMinute",
            wanted["error_rate"] * endpoint["target_rps"] * 60,
            five_xx,
        ),
        f"{name}-blue-cpu": (
            blue,
            DEPLOYMENT,
            "CpuUtilizationPercentage",
            wanted["cpu_percent"],
            [],
        ),
        f"{name}-blue-memory": (
            blue,
            DEPLOYMENT,
            "CpuMemoryUtilizationPercentage",
            wanted["memory_percent"],
            [],
        ),
    }
    assert set(rules) == set(expected)  # green is not deployed: no rule on it
    (receivers,) = of(prod_serving, "monitor:ActionGroup")
    for rule_name, (scope, namespace, metric, threshold, dimensions) in expected.items():
        rule = rules[rule_name].inputs
        (criterion,) = rule["criteria"]["allOf"]
        assert rule["scopes"] == [scope], rule_name
        assert criterion["metricNamespace"] == namespace and criterion["metricName"] == metric
        assert criterion["operator"] == "GreaterThan"
        assert criterion["threshold"] == pytest.approx(threshold), rule_name
        assert criterion.get("dimensions", []) == dimensions
        assert rule["actions"] == [{"actionGroupId": receivers.id}]
    for record in prod_serving:  # union-typed criteria keep their wire names
        assert not list(snake_case_keys(record.inputs)), record.logical_name


def test_without_endpoint_alerts_prod_keeps_only_its_failed_deployment_rule(repo, monkeypatch):
    prod = repo / "environments" / "prod.yml"
    text = prod.read_text()
    start = text.index("  alerts:\n")
    end = text.index("\n", text.index("memory_percent:", start)) + 1
    prod.write_text(text[:start] + text[end:])
    monkeypatch.setattr(alerts, "ROOT", repo)  # the program reads the copy's environment files
    records = run_stack("prod", deployed=live("prod", "blue", "green"))
    assert not of(records, "monitor:MetricAlert")
    assert len(of(records, "monitor:ActivityLogAlert")) == 1
    _, rule = STACK_RULES["prod-alerts-page"]
    assert rule([(r.type, r.inputs) for r in records], "prod") == []


def test_preprod_rules_fire_without_paging_and_dev_has_none():
    preprod = run_stack("preprod", deployed=live("preprod", "blue", "green"))
    rules = of(preprod, "monitor:MetricAlert")
    assert len(rules) == len(alerts.ENDPOINT_RULES) + 2 * len(alerts.DEPLOYMENT_RULES)
    assert all(r.inputs.get("actions", []) == [] for r in rules)
    assert not of(preprod, "monitor:ActionGroup")
    dev = run_stack("dev", deployed=live("dev", "blue", "green"))
    assert not of(dev, "monitor:MetricAlert") and not of(dev, "monitor:ActivityLogAlert")


def test_the_lookups_ask_for_the_stacks_own_workspace(monkeypatch):
    from mlops_infra.naming import Names

    asked = []
    for kind in ("endpoint", "deployment"):
        monkeypatch.setattr(
            alerts.machinelearningservices,
            f"get_online_{kind}",
            lambda kind=kind, **where: asked.append((kind, where)),
        )
    names = Names.of(stack_settings("prod"))
    alerts.lookup("ep", names.resource_group, names.workspace)()
    alerts.lookup("ep/green", names.resource_group, names.workspace)()
    where = {"resource_group_name": names.resource_group, "workspace_name": names.workspace}
    assert asked == [
        ("endpoint", {"endpoint_name": "ep", **where}),
        ("deployment", {"endpoint_name": "ep", "deployment_name": "green", **where}),
    ]
    assert env_file("prod")["azure"]["workspace"] == names.workspace  # where mlops deploys


def test_a_lookup_that_fails_for_another_reason_stops_the_program():
    def forbidden():
        raise RuntimeError("AuthorizationFailed: no read access to the workspace")

    def missing():
        raise RuntimeError("ResourceNotFound: the endpoint was not found (404)")

    assert alerts.deployed(lambda: {}) is True
    assert alerts.deployed(missing) is False
    with pytest.raises(RuntimeError, match="AuthorizationFailed"):
        alerts.deployed(forbidden)


# ---- the policy pack and init's answers -------------------------------------------------------


def test_the_policy_refuses_a_prod_that_pages_nobody(prod_serving):
    _, rule = STACK_RULES["prod-alerts-page"]
    plan = [(r.type, dict(r.inputs)) for r in prod_serving]
    assert rule(plan, "prod") == []
    silent = [
        (kind, {**props, "actions": []} if kind.endswith(":MetricAlert") else props)
        for kind, props in plan
    ]
    assert any("pages nobody" in p for p in rule(silent, "prod"))
    blind = [(kind, props) for kind, props in plan if not kind.endswith(":ActivityLogAlert")]
    assert rule(blind, "prod") == ["prod needs an activity-log alert on failed online deployments"]
    assert rule(blind, "preprod") == []


def raw(stack: str, **changes) -> dict:
    values = {k.removeprefix("mlops:"): v for k, v in stack_config(stack).items()}
    return {**values, **changes}


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("alertEmail", "oncall-at-example.com", "it must be an email address"),
        ("alertEmail", "on call@example.com", "it must be an email address"),
        ("alertWebhookUrl", "http://pager.example.com/hook", "it must be an https:// URL"),
        (
            "eventWebhookUrl",
            "https://hooks.example.com/x?code=s3cret",
            "it must carry no user, password, query",
        ),
        (
            "eventWebhookUrl",
            "https://bob:pw@hooks.example.com/x",
            "it must carry no user, password, query",
        ),
    ],
)
def test_a_bad_receiver_stops_the_program_in_one_sentence(key, value, reason):
    with pytest.raises(SettingsError) as refused:
        Settings.parse("prod", raw("prod", **{key: value}))
    message = str(refused.value)
    assert message.startswith(f"mlops:{key} is {value!r} in infra/Pulumi.yaml: {reason}")
    assert "\n" not in message


def test_prod_without_any_receiver_is_refused():
    with pytest.raises(SettingsError, match="prod's alerts would page nobody"):
        Settings.parse("prod", raw("prod", alertEmail="", alertWebhookUrl=""))
    assert Settings.parse("dev", raw("dev", alertEmail="", alertWebhookUrl="")).alert_email == ""


def test_the_readme_promises_only_the_azure_ml_events_routed_and_our_own_for_the_rest():
    from mlops_infra.events import EVENT_TYPES, NOT_RAISED_HERE

    from mlops import events

    readme = (ROOT / "README.md").read_text()
    routed = readme.split("- **Events** routed:", 1)[1].split("\n- **", 1)[0]
    promised = set(re.findall(r"`([A-Z]\w+)`", routed.split("(Azure ML's own types)")[0]))
    assert promised == {name.rsplit(".", 1)[1] for name in EVENT_TYPES}
    for name in NOT_RAISED_HERE:  # named only to say nothing subscribes to them
        assert name not in EVENT_TYPES and name.rsplit(".", 1)[1] in routed
    # deploys and drift findings go through what mlops emits itself (tests/e2e and
    # tests/azure/test_audit_on_azure.py see them emitted)
    for kind in (events.MODEL_DEPLOYED, events.DRIFT_DETECTED):
        assert f"`{kind}`" in routed

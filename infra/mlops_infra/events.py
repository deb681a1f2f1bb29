"""Azure ML's lifecycle events of one workspace, through Event Grid, to the team's webhook."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import eventgrid

from mlops_infra.settings import Settings

# A workspace's system topic: topic type and source (learn: event-grid/system-topics,
# event-schema-machine-learning).
TOPIC_TYPE = "Microsoft.MachineLearningServices.Workspaces"
# The types Azure ML raises for what this template does (learn: event-grid/event-schema-machine-
# learning, "Available event types"): jobs and model registration.
EVENT_TYPES = (
    "Microsoft.MachineLearningServices.RunCompleted",
    "Microsoft.MachineLearningServices.RunStatusChanged",  # a failed run arrives as this
    "Microsoft.MachineLearningServices.ModelRegistered",
)
# Listed on the same page, but raised by v1 parts this template never uses: ModelDeployed by a
# v1 web service (its sample's data names a ServiceName and ServiceComputeType "ACI"), and
# DatasetDriftDetected by a v1 dataset drift monitor (DataDriftId, BaseDatasetId). Managed
# online deployments and mlops's own drift pass raise neither; their signals are mlops's own
# events (model.deployed, drift.detected: src/mlops/events.py) on the environment's webhook.
NOT_RAISED_HERE = (
    "Microsoft.MachineLearningServices.ModelDeployed",
    "Microsoft.MachineLearningServices.DatasetDriftDetected",
)
# Event Grid's defaults and its ceilings (learn: event-grid/delivery-and-retry): retry for a
# day, then drop the event.
MAX_DELIVERY_ATTEMPTS = 30
EVENT_TTL_MINUTES = 1440
NO_DESTINATION = "no event destination configured (mlops init: event_webhook_url)"


def lifecycle_events(
    settings: Settings,
    resource_group: pulumi.Input[str],
    workspace: pulumi.Resource,
    topic_name: str,
    opts: pulumi.ResourceOptions,
) -> list[pulumi.Resource]:
    """The workspace's system topic and, when init named a webhook, its subscription.

    The destination is a webhook: Event Grid's Azure Monitor alert destination takes events
    from Key Vault only (learn: event-grid/event-handlers), so an action group cannot receive
    Azure ML's events directly; a webhook (a Logic App, a Function, a chat connector) can."""
    topic = eventgrid.SystemTopic(
        "events",
        system_topic_name=topic_name,
        resource_group_name=resource_group,
        # a resource's system topic lives in the resource's region (learn: event-grid/system-topics)
        location=settings.location,
        source=workspace.id,
        topic_type=TOPIC_TYPE,
        opts=opts,
    )
    if not settings.event_webhook_url:
        pulumi.log.info(f"{settings.stack}: {NO_DESTINATION}: no event subscription")
        return [topic]
    subscription = eventgrid.SystemTopicEventSubscription(
        "events-to-webhook",
        event_subscription_name="lifecycle-to-webhook",
        resource_group_name=resource_group,
        system_topic_name=topic.name,
        # a union-typed input: typed arguments keep the wire names (endpointUrl, not endpoint_url)
        destination=eventgrid.WebHookEventSubscriptionDestinationArgs(
            endpoint_type="WebHook",
            endpoint_url=settings.event_webhook_url,
        ),
        filter=eventgrid.EventSubscriptionFilterArgs(included_event_types=list(EVENT_TYPES)),
        event_delivery_schema="EventGridSchema",
        retry_policy=eventgrid.RetryPolicyArgs(
            max_delivery_attempts=MAX_DELIVERY_ATTEMPTS,
            event_time_to_live_in_minutes=EVENT_TTL_MINUTES,
        ),
        opts=opts,
    )
    return [topic, subscription]

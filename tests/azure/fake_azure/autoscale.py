"""Azure Monitor autoscale settings (Microsoft.Insights/autoscalesettings), as strict as the service.

Rules, each from its source (REST spec: azure-rest-api-specs specification/monitor/resource-
manager/Microsoft.Insights/stable/2022-10-01/autoscale_API.json):
- a PUT names its api-version, and that version exists (ARM: an unknown version is a 400
  InvalidApiVersionParameter; the spec's stable version is 2022-10-01);
- location and properties are required (spec: AutoscaleSettingResource.required);
- profiles are required, 1 to 20 of them (spec: AutoscaleSetting.required, profiles.maxItems 20);
- at most 10 rules per profile (spec: AutoscaleProfile.rules, "A maximum of 10 rules");
- capacity minimum, maximum and default are whole numbers written as strings (spec:
  ScaleCapacity, type string), minimum <= maximum and default within them (the service refuses
  these; its wording is in neither the spec nor the docs: unverified, 400 here);
- targetResourceUri and each rule's metricResourceUri name a resource that exists (unverified
  wording, 400 here);
- a rule on a managed online deployment names one of its metrics (Azure Monitor reference,
  "Supported metrics for Microsoft.MachineLearningServices/workspaces/onlineEndpoints/
  deployments"), with a timeWindow of 5 minutes to 12 hours, a timeGrain of 1 minute to 12
  hours and a cooldown of 1 minute to 1 week (spec: MetricTrigger, ScaleAction descriptions);
- GET of an absent setting is a 404 and DELETE is 200, or 204 when there is none (spec:
  AutoscaleSettings_Delete responses).
"""

from __future__ import annotations

import re

from .http import Reply, error

API_VERSIONS = ("2022-10-01", "2021-05-01-preview", "2015-04-01")  # the spec folder's versions
DEPLOYMENT_METRICS = {  # names in the REST API, from the supported-metrics page
    "CpuMemoryUtilizationPercentage",
    "CpuUtilizationPercentage",
    "DataCollectionErrorsPerMinute",
    "DataCollectionEventsPerMinute",
    "DeploymentCapacity",
    "DiskUtilization",
    "GpuEnergyJoules",
    "GpuMemoryUtilizationPercentage",
    "GpuUtilizationPercentage",
}
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def is_autoscale(path: str) -> bool:
    return "/providers/microsoft.insights/autoscalesettings/" in path.lower()


class Autoscale:
    """PUT of an autoscale setting; GET and DELETE are the ARM store's (arm.py)."""

    def put_autoscale(self, path: str, body: dict, query: dict) -> Reply:
        refusal = self._autoscale_refusal(body, query.get("api-version"))
        if refusal:
            return error(400, "BadRequest", refusal)
        existed = path in self.resources
        return Reply(200 if existed else 201, self.store(path, body))

    def _autoscale_refusal(self, body: dict, version: str | None) -> str | None:
        if version not in API_VERSIONS:
            return f"api-version {version!r} is not one of {', '.join(API_VERSIONS)}"
        if not body.get("location"):  # spec: AutoscaleSettingResource.required
            return "location is required"
        properties = body.get("properties")
        if not isinstance(properties, dict):  # spec: AutoscaleSettingResource.required
            return "properties are required"
        profiles = properties.get("profiles")
        if not isinstance(profiles, list) or not profiles:  # spec: AutoscaleSetting.required
            return "profiles are required"
        if len(profiles) > 20:  # spec: profiles.maxItems 20
            return f"{len(profiles)} profiles; at most 20 can be specified"
        target = properties.get("targetResourceUri", "")
        if not self._exists(target):  # unverified wording
            return f"the target resource {target!r} does not exist"
        for profile in profiles:
            refusal = self._profile_refusal(profile)
            if refusal:
                return f"profile {profile.get('name')!r}: {refusal}"
        return None

    def _profile_refusal(self, profile: dict) -> str | None:
        capacity = profile.get("capacity") or {}
        counts = {}
        for key in ("minimum", "maximum", "default"):  # spec ScaleCapacity: strings, required
            value = capacity.get(key)
            if not isinstance(value, str) or not value.isdigit():
                return f"capacity.{key} must be a whole number written as a string, not {value!r}"
            counts[key] = int(value)
        if counts["minimum"] > counts["maximum"]:  # unverified wording
            return f"minimum {counts['minimum']} is above maximum {counts['maximum']}"
        if not counts["minimum"] <= counts["default"] <= counts["maximum"]:  # unverified wording
            return (
                f"default {counts['default']} is outside minimum {counts['minimum']} "
                f"and maximum {counts['maximum']}"
            )
        rules = profile.get("rules")
        if not isinstance(rules, list):  # spec: AutoscaleProfile.required
            return "rules are required"
        if len(rules) > 10:  # spec: "A maximum of 10 rules can be specified"
            return f"{len(rules)} rules; at most 10 can be specified"
        for rule in rules:
            refusal = self._rule_refusal(rule)
            if refusal:
                return refusal
        return None

    def _rule_refusal(self, rule: dict) -> str | None:
        trigger, action = rule.get("metricTrigger") or {}, rule.get("scaleAction") or {}
        source = trigger.get("metricResourceUri", "")
        if not self._exists(source):  # unverified wording
            return f"the metric's resource {source!r} does not exist"
        if "/onlineendpoints/" in source.lower() and "/deployments/" in source.lower():
            name = trigger.get("metricName")
            if name not in DEPLOYMENT_METRICS:  # supported-metrics page for deployments
                return f"metric {name!r} is not a metric of an online deployment"
        bounds = (  # spec: MetricTrigger.timeWindow, timeGrain; ScaleAction.cooldown
            ("timeWindow", trigger.get("timeWindow"), 5 * 60, 12 * 3600),
            ("timeGrain", trigger.get("timeGrain"), 60, 12 * 3600),
            ("cooldown", action.get("cooldown"), 60, 7 * 24 * 3600),
        )
        for label, value, low, high in bounds:
            seconds = _seconds(value)
            if seconds is None or not low <= seconds <= high:
                return f"{label} {value!r} must be an ISO 8601 duration from {low}s to {high}s"
        return None

    def _exists(self, resource_id: str) -> bool:
        """ARM ids compare without regard to case (resource group, provider names)."""
        wanted = resource_id.lower().rstrip("/")
        return any(path.lower() == wanted for path in self.resources)


def _seconds(duration: object) -> int | None:
    found = _DURATION.match(duration) if isinstance(duration, str) else None
    if not found or duration in ("P", "PT"):
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds

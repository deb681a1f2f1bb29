"""Managed online endpoints and deployments: traffic rules, LROs, and scoring.

Rules, each from its source:
- traffic: values sum to 100 (REST spec stable/2024-04-01/mfe.json, OnlineEndpoint.
  traffic: "Traffic values need to sum to 100"); an endpoint with no live deployment has
  none (all 0 or empty), which is how the SDK creates an endpoint.
- mirrorTraffic: values sum to at most 50 (same spec, OnlineEndpoint.mirrorTraffic);
  one deployment only, never one that takes live traffic (docs: learn.microsoft.com/
  azure/machine-learning/how-to-safely-rollout-online-endpoints, "Mirroring has the
  following limitations").
- traffic and mirror name deployments of the endpoint (same docs page: a deployment is
  created first, then given traffic). The exact error code is not documented; 400.
- a deployment that takes live or mirrored traffic cannot be deleted (docs: how-to-
  safely-rollout-online-endpoints, "Remove the old deployment" after its traffic is 0;
  the service's message is not documented: unverified, 400 here).
- scoring: a key in Authorization is required (docs: how-to-authenticate-online-
  endpoint, 401 without it); azureml-model-deployment routes to that deployment, else the
  traffic split decides and the mirror share is copied (safe-rollout docs); no deployment
  with traffic is a 404 "No valid deployments to route to" (the message: docs how-to-
  troubleshoot-batch-endpoints; the 404 on online endpoints: field reports); the
  answer names its deployment in azureml-model-deployment (recorded).
- answers, status codes, long-running-operation headers and the states they go through
  are held against Azure's recorded traffic (tests/azure/test_recorded_traffic.py).
"""

from __future__ import annotations

import json

from .arm import REGION
from .collector import Container
from .http import Reply, error, not_found

KEYS = {"primaryKey": "primary-key", "secondaryKey": "secondary-key"}


def endpoint_of(path: str) -> str:
    return path.split("/deployments/")[0]


class Endpoints:
    # ---- control plane -------------------------------------------------------------

    def put_endpoint(self, path: str, body: dict) -> Reply:
        properties = body.get("properties") or {}
        refusal = self._traffic_refusal(path, properties)
        if refusal:
            return error(400, "BadArgument", refusal)
        existed = path in self.resources
        name = path.rsplit("/", 1)[-1]
        before = (self.resources.get(path) or {}).get("properties") or {}
        properties = {
            **properties,
            "scoringUri": before.get("scoringUri"),  # none until the first creation ends
            "traffic": properties.get("traffic") or {},
            "mirrorTraffic": properties.get("mirrorTraffic") or {},
        }
        stored = self.store(
            path,
            {**body, "kind": "Managed", "properties": properties},
            provisioningState="Updating" if existed else "Creating",
        )

        def finish():
            done = self.resources[path]["properties"]
            done["provisioningState"] = "Succeeded"
            done["scoringUri"] = f"https://{name}.{REGION}.inference.ml.azure.com/score"

        op = self.begin(finish)
        # recorded (tests/azure/recordings/online_endpoint_lifecycle.json): a create and a
        # traffic update both answer 201 "Creating" with no scoringUri yet, and a Location
        answer = {**stored, "properties": {**stored["properties"], "scoringUri": None}}
        answer["properties"]["provisioningState"] = "Creating"
        return Reply(201, answer, self.lro_headers(op, resource=path))

    def _traffic_refusal(self, endpoint: str, properties: dict) -> str | None:
        traffic = properties.get("traffic") or {}
        mirror = properties.get("mirrorTraffic") or {}
        deployments = {d["name"] for d in self.children(endpoint + "/deployments")}
        for label, split in (("traffic", traffic), ("mirrorTraffic", mirror)):
            unknown = sorted(set(split) - deployments)
            if unknown:  # safe-rollout docs: a deployment exists before it takes traffic
                return f"{label} names deployment(s) {', '.join(unknown)} that do not exist"
            if any(not isinstance(v, int) or not 0 <= v <= 100 for v in split.values()):
                return f"{label} values must be whole percentages from 0 to 100"
        if sum(traffic.values()) not in (0, 100):  # spec OnlineEndpoint.traffic: sums to 100
            return f"traffic values need to sum to 100, not {sum(traffic.values())}"
        mirrored = {name for name, share in mirror.items() if share > 0}
        if sum(mirror.values()) > 50:  # spec OnlineEndpoint.mirrorTraffic: at most 50
            return f"mirrorTraffic values need to sum to at most 50, not {sum(mirror.values())}"
        if len(mirrored) > 1:  # safe-rollout docs: "only mirror traffic to one deployment"
            return "mirror traffic can go to one deployment only"
        both = sorted(mirrored & {name for name, share in traffic.items() if share > 0})
        if both:  # safe-rollout docs: "a deployment can only be set to live or mirror traffic"
            return f"deployment {both[0]} takes live traffic, so it cannot take mirror traffic"
        return None

    def put_deployment(self, path: str, body: dict) -> Reply:
        endpoint = endpoint_of(path)
        if endpoint not in self.resources:
            return not_found(endpoint)
        refusal = self.online_deployment_refusal(body)  # references.py
        if refusal:
            return refusal
        name = path.rsplit("/", 1)[-1]
        properties = dict(body.get("properties") or {})
        properties.setdefault("scaleSettings", {"scaleType": "Default"})  # filled in by Azure
        properties.setdefault("endpointComputeType", "Managed")
        existed = path in self.resources
        if existed and self.resources[path]["properties"]["provisioningState"] == "Failed":
            # service message seen in the field (not in the docs): delete and create it again
            return error(
                400,
                "BadArgument",
                f"Specified deployment [{name}] failed during initial provisioning and is in "
                "an unrecoverable state. Delete and re-create.",
            )
        sku = {"name": "Default", "tier": "Standard", "capacity": 1, **(body.get("sku") or {})}
        stored = self.store(
            path,
            {**body, "kind": "Managed", "sku": sku, "properties": properties},
            provisioningState="Updating" if existed else "Creating",
        )

        def finish():
            failure = self.failing_deployments.get(name)
            state = "Failed" if failure else "Succeeded"
            self.resources[path]["properties"]["provisioningState"] = state
            return {"code": "DeploymentFailed", "message": failure} if failure else None

        op = self.begin(finish)
        # recorded: a new deployment answers 201 "Creating" with Azure-AsyncOperation and a
        # Location naming the deployment (tests/azure/recordings/online_endpoint_lifecycle.json)
        return Reply(200 if existed else 201, stored, self.lro_headers(op, resource=path))

    def delete_deployment(self, path: str) -> Reply:
        if path not in self.resources:
            return Reply(204)  # ARM: deleting what is absent is a 204 (spec: 200/202/204)
        endpoint = self.resources.get(endpoint_of(path))
        name = path.rsplit("/", 1)[-1]
        if endpoint:
            shares = endpoint["properties"]
            # safe-rollout docs: traffic goes to 0 before "Remove the old deployment" (unverified)
            if shares["traffic"].get(name, 0) or shares["mirrorTraffic"].get(name, 0):
                return error(
                    400,
                    "BadArgument",
                    f"deployment {name} still takes traffic; set its traffic and mirror "
                    "traffic to 0 before deleting it",
                )
        return self._begin_delete(path)

    def delete_endpoint(self, path: str) -> Reply:
        if path not in self.resources:
            return Reply(204)
        return self._begin_delete(path)

    def _begin_delete(self, path: str) -> Reply:
        self.resources[path]["properties"]["provisioningState"] = "Deleting"

        def finish():
            for key in [k for k in self.resources if k == path or k.startswith(path + "/")]:
                del self.resources[key]

        op = self.begin(finish)
        return Reply(202, b"", self.lro_headers(op, location=True))

    # ---- data plane: scoring ----------------------------------------------------------

    def score(self, host: str, call) -> Reply:
        name = host.split(".")[0]
        endpoint = next(
            (v for k, v in self.resources.items() if k.endswith(f"/onlineEndpoints/{name}")),
            None,
        )
        if endpoint is None:
            return Reply(404, {"error": "no such endpoint"})
        key = (call.headers.get("authorization") or "").removeprefix("Bearer ")
        if key not in KEYS.values():  # docs how-to-authenticate-online-endpoint: 401
            return Reply(401, {"error": "the key is missing or wrong"})
        path = endpoint["id"]
        named = call.headers.get("azureml-model-deployment")
        if named:  # safe-rollout docs: the header routes around the traffic rules
            if f"{path}/deployments/{named}" not in self.resources:
                return Reply(404, {"error": f"deployment {named} not found"})
            chosen = named
        else:
            chosen = self._route(endpoint["properties"]["traffic"])
            if chosen is None:  # "No valid deployments to route to" (batch docs, field reports)
                return Reply(404, {"error": "No valid deployments to route to."})
            for mirror, share in endpoint["properties"]["mirrorTraffic"].items():
                if self._requests * 37 % 100 < share:
                    self.mirrored.append((mirror, call.body))
        deployment = self.resources[f"{path}/deployments/{chosen}"]
        status, answer = self.serve(deployment, call.body, call.headers)
        # the answer names its deployment in azureml-model-deployment (recorded: the score call
        # of tests/azure/recordings/online_endpoint_lifecycle.json)
        return Reply(status, answer, {"azureml-model-deployment": chosen})

    def _route(self, traffic: dict[str, int]) -> str | None:
        """Weighted by the split, deterministically: any 100 requests in a row land on the
        points 0..99 once each (37 is prime to 100), each going to the share that covers it."""
        self._requests += 1
        point, total = self._requests * 37 % 100, 0
        for name, share in sorted(traffic.items()):
            total += share
            if point < total:
                return name
        return None

    def serve(self, deployment: dict, body, headers: dict | None = None) -> tuple[int, dict]:
        """What the deployment's container answers: score.py's init() once, its run() per
        request, the data collector configured as the deployment asks (collector.py)."""
        if deployment["name"] in self.broken_deployments:
            return 200, {"predictions": [], "probabilities": []}
        container = self.containers.get(deployment["id"])
        if container is None:
            properties = deployment["properties"]
            collections = (properties.get("dataCollector") or {}).get("collections") or {}
            container = Container(self.served_model(deployment), collections)
            self.containers[deployment["id"]] = container
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        # the inference server hands run() the request as sent (rawhttp): the client's headers
        sent = {k: v for k, v in (headers or {}).items() if k.startswith("x-")}
        status, answer, payloads = container.run(raw, {"content-type": "application/json", **sent})
        endpoint = deployment["id"].split("/onlineEndpoints/")[1].split("/")[0]
        self.take_payloads(endpoint, deployment["name"], payloads)
        return status, json.loads(answer)

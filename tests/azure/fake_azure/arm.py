"""ARM resources by path, and long-running operations that take polls to finish.

Endpoint and deployment create/update/delete and registry import are LROs: the
first answer is 201/202 with polling headers and a provisioning state in between;
the operation status goes Updating (Azure ML's word for running, recorded:
tests/azure/recordings/online_endpoint_lifecycle.json), then Succeeded or Failed with an error.
Sources: the SDK's generated client (azure/ai/ml/_restclient/arm_ml_service/
operations/_operations.py: OnlineEndpoints/OnlineDeployments _create_or_update_initial
accept 200/201 with Azure-AsyncOperation, _delete_initial 200/202/204 with Location)
and ARM's async operation contract (learn.microsoft.com/azure/azure-resource-manager/
management/async-operations: status InProgress | Succeeded | Failed | Canceled).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .http import Reply, error

SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"
REGION = "westeurope"
OPERATIONS = (
    f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/locations/{REGION}"
)


def arm_action(method: str, path: str) -> str:
    """The RBAC action a request asks for, as ARM names it in AuthorizationFailed: the provider
    namespace, the resource types along the path, then read/write/delete, or an action's name
    and /action for a POST ('Microsoft.MachineLearningServices/workspaces/computes/read' over
    the resource's id: the message quoted in microsoft/mlops-template-for-azureml-sdk-v2#9)."""
    parts = path.strip("/").split("/")
    if "providers" not in parts:
        return f"Microsoft.Resources/{method.lower()}"
    at = parts.index("providers")
    namespace, rest = parts[at + 1], parts[at + 2 :]
    namespace = {"microsoft.insights": "Microsoft.Insights"}.get(namespace.lower(), namespace)
    types = rest[0::2]  # type/name/type/name...: a POST's action name falls on a type slot
    verb = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(method, "action")
    return "/".join([namespace, *types, verb])


# an operation still running reports "Updating", whether it creates, updates or deletes
# (recorded: every poll of tests/azure/recordings/online_endpoint_lifecycle.json)
RUNNING = "Updating"


@dataclass
class Operation:
    polls_left: int
    finish: Callable[[], dict | None]  # returns an error ({code, message}) or None
    status: str = RUNNING
    error: dict | None = None


class ArmStore:
    """Resources keyed by canonical ARM path; a clock for createdAt that starts at the test's
    now and moves a second per write, so each time is distinct and in order."""

    def __init__(self):
        self.resources: dict[str, dict] = {}
        self.operations: dict[str, Operation] = {}
        self._started = datetime.now(UTC).replace(microsecond=0)
        self._clock = itertools.count(1)
        self._op_ids = itertools.count(1)
        self.slept: list[float] = []

    def now(self) -> str:
        # ARM's systemData times: ISO 8601 UTC (REST spec common-types v5 types.json, systemData)
        return f"{self._started + timedelta(seconds=next(self._clock)):%Y-%m-%dT%H:%M:%SZ}"

    def store(self, path: str, body: dict, **properties) -> dict:
        """Write a resource as ARM returns it: id, name, type, systemData (createdAt kept)."""
        parts = path.strip("/").split("/")
        before = self.resources.get(path)
        created = before["systemData"]["createdAt"] if before else self.now()
        resource = {
            **body,
            "id": path,
            "name": parts[-1],
            "type": "/".join(parts[5:-1:2]) if len(parts) > 6 else parts[-2],
            "systemData": {
                "createdBy": "fake@example.com",
                "createdByType": "User",
                "createdAt": created,
                "lastModifiedBy": "fake@example.com",
                "lastModifiedByType": "User",
                "lastModifiedAt": self.now(),
            },
        }
        resource["properties"] = {**(body.get("properties") or {}), **properties}
        self.resources[path] = resource
        return resource

    def children(self, path: str) -> list[dict]:
        return [v for k, v in self.resources.items() if k.rsplit("/", 1)[0] == path]

    # ---- long-running operations ------------------------------------------------------

    def begin(self, finish: Callable[[], dict | None], polls: int = 1) -> str:
        op = f"op-{next(self._op_ids)}"
        self.operations[op] = Operation(polls, finish)
        return op

    def lro_headers(self, op: str, location: bool = False, resource: str | None = None) -> dict:
        """Azure-AsyncOperation to poll; Location for deletes and actions (the operation's
        result) or, on a PUT, the resource itself, as recorded for endpoints and deployments;
        Retry-After: 0 so the SDK's poller (ARMPolling) asks again at once (tests never wait)."""
        headers = {
            "Azure-AsyncOperation": f"https://management.azure.com{OPERATIONS}/mfeOperationsStatus/{op}",
            "Retry-After": "0",
        }
        if location:
            headers["Location"] = (
                f"https://management.azure.com{OPERATIONS}/mfeOperationResults/{op}"
            )
        elif resource:
            headers["Location"] = f"https://management.azure.com{resource}"
        return headers

    def poll(self, path: str) -> Reply | None:
        """GET of an operation's status or result URL; None when path is neither."""
        kind, _, op_id = path.rpartition("/")
        if not kind.endswith(("/mfeOperationsStatus", "/mfeOperationResults")):
            return None
        op = self.operations.get(op_id)
        if op is None:
            return error(404, "NotFound", f"no operation {op_id}")
        if op.status == RUNNING:
            if op.polls_left > 0:
                op.polls_left -= 1
            else:
                op.error = op.finish()
                op.status = "Failed" if op.error else "Succeeded"
        if kind.endswith("/mfeOperationResults"):  # Location: 202 while running, then 200
            if op.status == RUNNING:
                return Reply(
                    202,
                    b"",
                    {"Location": f"https://management.azure.com{path}", "Retry-After": "0"},
                )
            return Reply(200, b"") if op.status == "Succeeded" else Reply(400, {"error": op.error})
        body = {"id": path, "name": op_id, "status": op.status}
        if op.error:
            body["error"] = op.error
        # the poller takes its next delay from the latest response: Retry-After 0 keeps tests
        # from waiting the client's default interval (azure-core base_polling._extract_delay)
        return Reply(200, body, {"Retry-After": "0"})

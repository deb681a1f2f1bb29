"""Blue/green rollout with automatic rollback, written once for every backend.

1. start the new deployment beside the live one (it takes no traffic) and give it the
   environment's autoscale setting, if any, so it scales from its first live request;
2. smoke-test it directly (requests aimed at it by name);
   optionally mirror a share of live traffic to it for a while (its answers
   are discarded) and test it again;
3. shift traffic to it, starting from the endpoint as read live, so splits
   set elsewhere are kept rather than reset;
4. check the endpoint answers through the new deployment (the answers name the
   deployment that served them), then retire the old (its autoscale setting first).

Any failure before the switch leaves the old deployment serving and removes the
new one; a failure after it puts the traffic back first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlops.backends.base import Backend, DeploymentFailed, Endpoint, ModelVersion, Response
from mlops.config import Autoscale
from mlops.errors import RolloutFailed
from mlops.smoke import Contract, smoke_test

COLOURS = ("blue", "green")


@dataclass(frozen=True)
class RolloutResult:
    endpoint: Endpoint  # as read after the old deployments were retired
    deployment: str  # the one now taking all traffic


def next_colour(endpoint: Endpoint) -> str:
    live = endpoint.live
    if live in COLOURS:
        return COLOURS[1 - COLOURS.index(live)]
    return COLOURS[0] if COLOURS[0] not in endpoint.deployments else COLOURS[1]


def rollout(
    backend: Backend,
    endpoint_name: str,
    model: ModelVersion,
    contract: Contract,
    say: Callable[[str], None] = print,
    mirror_percent: int = 0,
    mirror_seconds: float = 0,
    autoscale: Autoscale | None = None,
    begin: Callable[[str], None] = lambda deployment: None,
) -> RolloutResult:
    """begin(deployment) is called with the new deployment's name before it is made (deploy
    journals it, so a killed rollout can be finished or undone: mlops.interrupted)."""
    endpoint = backend.get_endpoint(endpoint_name) or backend.create_endpoint(endpoint_name)
    new = next_colour(endpoint)
    # Only an environment that scales touches autoscale settings: elsewhere its identity holds
    # no autoscalesettings role (infra access.py) and there are none to remove.
    scales = autoscale is not None
    if new in endpoint.deployments:  # a leftover: Azure deletes it only once it takes no traffic
        retire(backend, endpoint, new, scales)
    begin(new)
    say(f"starting deployment {new!r} with {model.ref} beside {endpoint.live or 'nothing'}")
    try:
        backend.create_deployment(endpoint_name, new, model)
    except DeploymentFailed as failure:
        discard(backend, endpoint_name, new, scales)
        raise RolloutFailed(
            _explain(f"deployment {new!r} failed to start: {failure}", failure.logs)
        ) from None
    if autoscale:
        try:
            backend.set_autoscale(endpoint_name, new, autoscale)
        except DeploymentFailed as failure:
            raise _abandon(
                backend, endpoint_name, new, f"could not be autoscaled: {failure}", scales
            ) from None
        say(
            f"deployment {new!r} scales {autoscale.min_instances}..{autoscale.max_instances} "
            f"instances on {autoscale.cpu_percent}% CPU"
        )

    smoke = _test_directly(backend, endpoint_name, new, contract)
    if not smoke.ok:
        raise _abandon(
            backend, endpoint_name, new, f"failed its smoke test: {smoke.detail}", scales
        )
    say(f"deployment {new!r} passed its smoke test ({smoke.detail}, {smoke.latency_ms:.0f} ms)")
    if mirror_percent and endpoint.live:
        _soak(backend, endpoint_name, new, contract, mirror_percent, mirror_seconds, say, scales)

    before = backend.get_endpoint(endpoint_name)  # read live: keep what others set
    traffic = {name: 0 for name in before.traffic}
    traffic[new] = 100
    after = backend.set_traffic(endpoint_name, traffic)
    problem = _check_through_endpoint(backend, endpoint_name, new, contract)
    if not problem and after.traffic.get(new) != 100:
        problem = f"did not get the traffic (the endpoint reads {after.traffic})"
    if problem:
        backend.set_traffic(endpoint_name, before.traffic)
        raise _abandon(backend, endpoint_name, new, problem, scales)
    say(f"endpoint {endpoint_name} now sends 100% of traffic to {new!r}")

    retired = [name for name in after.deployments if name != new]
    for name in retired:
        after = retire(backend, after, name, scales)
    if retired:
        say(f"retired {', '.join(repr(n) for n in retired)}")
    return RolloutResult(backend.get_endpoint(endpoint_name), new)


def _check_through_endpoint(backend: Backend, endpoint: str, new: str, contract: Contract) -> str:
    """Requests sent to the endpoint (no deployment named) must pass the smoke test and be
    answered by the new deployment; a problem is returned as a phrase, none as "".

    The local router and the Azure double name the answering deployment in the
    azureml-model-deployment response header. No Azure doc page found states that managed
    endpoints send it, so an answer naming no deployment is not held against the new one."""
    answered: list[str | None] = []

    def invoke(body: bytes) -> Response:
        reply = backend.invoke(endpoint, body)
        answered.append(reply.deployment)
        return reply

    check = smoke_test(invoke, contract)
    if not check.ok:
        return f"failed behind the endpoint: {check.detail}"
    others = sorted({name for name in answered if name is not None and name != new})
    if others:
        return f"is not what the endpoint answers with (answered by {', '.join(others)})"
    return ""


def _soak(
    backend,
    endpoint: str,
    new: str,
    contract: Contract,
    percent: int,
    seconds: float,
    say,
    scales: bool,
) -> None:
    """Copy a share of live traffic to the new deployment (answers discarded), then re-test it."""
    backend.set_mirror(endpoint, {new: percent})
    say(f"mirroring {percent}% of live traffic to {new!r} for {seconds:.0f}s")
    time.sleep(seconds)
    backend.set_mirror(endpoint, {})
    again = _test_directly(backend, endpoint, new, contract)
    if not again.ok:
        raise _abandon(
            backend, endpoint, new, f"failed after mirrored traffic: {again.detail}", scales
        )


def _test_directly(backend: Backend, endpoint: str, deployment: str, contract: Contract):
    """Requests aimed at one deployment by name, whatever the traffic split."""
    return smoke_test(lambda body: backend.invoke(endpoint, body, deployment=deployment), contract)


def _abandon(
    backend: Backend, endpoint: str, deployment: str, problem: str, scales: bool
) -> RolloutFailed:
    """Keep the failed deployment's log for the message, then remove the deployment."""
    logs = backend.deployment_logs(endpoint, deployment)
    discard(backend, endpoint, deployment, scales)
    return RolloutFailed(_explain(f"deployment {deployment!r} {problem}", logs))


def retire(backend: Backend, endpoint: Endpoint, deployment: str, scales: bool) -> Endpoint:
    """Take a deployment's live and mirrored share to 0, then delete it.

    Its live share goes to the deployment that takes the most of the rest, so the
    split still sums to 100."""
    if endpoint.mirror_traffic.get(deployment):
        mirror = {k: v for k, v in endpoint.mirror_traffic.items() if k != deployment}
        endpoint = backend.set_mirror(endpoint.name, mirror)
    share = endpoint.traffic.get(deployment, 0)
    if share:
        rest = {k: v for k, v in endpoint.traffic.items() if k != deployment}
        heir = max(rest, key=rest.get) if rest else None
        if heir is None:
            raise RolloutFailed(f"deployment {deployment!r} is the only one taking traffic")
        rest[heir] += share
        endpoint = backend.set_traffic(endpoint.name, rest)
    discard(backend, endpoint.name, deployment, scales)
    return endpoint


def discard(backend: Backend, endpoint: str, deployment: str, scales: bool) -> None:
    """Remove a deployment and, where the environment scales, its autoscale setting, which
    would outlive it on Azure. Both idempotent: also clears a half-made one."""
    if scales:
        backend.remove_autoscale(endpoint, deployment)
    backend.delete_deployment(endpoint, deployment)


_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception)\b[^:]*: ")


def _explain(reason: str, logs: str) -> str:
    """The reason, the log's exception lines (often far from its end), then its last lines."""
    lines = logs.strip().splitlines()
    causes = [line for line in lines if _EXCEPTION_LINE.match(line)][-3:]
    text = f"{reason}; the previous deployment keeps serving."
    if causes:
        text += "\nErrors in its log:\n" + "\n".join("    " + line for line in causes)
    return text + "\nLast lines of its log:\n" + "\n".join("    " + line for line in lines[-20:])

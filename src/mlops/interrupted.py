"""A deploy killed part-way is finished or undone by the next verb that touches the endpoint.

While it runs, `mlops deploy` keeps a journal beside the endpoint's rollout lock: the model
and the deployment it is starting. A journal whose deploy no longer holds the lock was left
by a deploy that died (killed, or its machine stopped). The next verb then:

- turns any traffic mirror off (a mirror belongs to a rollout's soak, never to a steady state);
- if the new deployment already takes all the traffic, completes the rollout: retires the
  others and writes the audit entry (deployed) the killed command could not write;
- otherwise rolls it back: removes the new deployment, which the old one never stopped
  serving, and writes the audit entry (rolled back).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from mlops import history
from mlops.backends.base import ModelVersion
from mlops.context import Context
from mlops.errors import MlopsError
from mlops.locks import endpoint_lock
from mlops.rollout import retire
from mlops.state import StateUnreadable, read_json, write_json

JOURNAL = "rollout.json"


def _path(ctx: Context, env: str, endpoint: str) -> Path:
    return ctx.home / env / "endpoints" / endpoint / JOURNAL  # beside locks.endpoint_lock's


def begun(ctx: Context, env: str, endpoint: str, model: ModelVersion, deployment: str) -> None:
    """Called by deploy, under the endpoint's rollout lock, before the deployment is made."""
    write_json(_path(ctx, env, endpoint), {"model": model.ref, "deployment": deployment})


def ended(ctx: Context, env: str, endpoint: str) -> None:
    """Called once the deploy's audit entry is written, whatever its outcome."""
    _path(ctx, env, endpoint).unlink(missing_ok=True)


def recover(ctx: Context, env: str, endpoint: str, locked: bool = False) -> None:
    """Finish or undo a deploy that died; nothing when none did, or when a deploy is running
    (it holds the lock). locked: the caller already holds the endpoint's rollout lock."""
    if not _path(ctx, env, endpoint).exists():
        return
    if locked:
        return _recover(ctx, env, endpoint)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(endpoint_lock(ctx.home, env, endpoint, ctx.say, wait_s=0))
        except MlopsError:
            return  # held: the deploy is alive, and its journal with it
        _recover(ctx, env, endpoint)


def _recover(ctx: Context, env: str, endpoint_name: str) -> None:
    path = _path(ctx, env, endpoint_name)
    try:
        journal = read_json(path) or {}
        new, ref = str(journal["deployment"]), str(journal["model"])
    except (StateUnreadable, KeyError):
        _notice(f"warning: {path} is unreadable; an interrupted deploy cannot be told apart")
        path.unlink(missing_ok=True)
        return
    backend = ctx.backend(env)
    endpoint = backend.get_endpoint(endpoint_name)
    if endpoint is None:
        path.unlink(missing_ok=True)
        return
    if endpoint.mirror_traffic:
        endpoint = backend.set_mirror(endpoint_name, {})
        _notice(f"turned off the traffic mirror an interrupted deploy left on {endpoint_name}")
    model = _model(backend, ref)
    scales = ctx.config(env).autoscale is not None  # as deploy passes it to the rollout
    if new in endpoint.deployments and endpoint.traffic.get(new) == 100:
        for name in [other for other in endpoint.deployments if other != new]:
            endpoint = retire(backend, endpoint, name, scales)
        _audit(ctx, env, history.DEPLOYED, model, endpoint_name, new)
        _notice(f"completed the interrupted deploy: {endpoint_name} serves {ref} from {new!r}")
    else:
        if new in endpoint.deployments:
            retire(backend, endpoint, new, scales)
        reason = "the deploy was interrupted before its traffic switch"
        _audit(ctx, env, history.ROLLED_BACK, model, endpoint_name, None, reason=reason)
        _notice(f"rolled back the interrupted deploy of {ref} on {endpoint_name}: {reason}")
    path.unlink(missing_ok=True)


def _notice(line: str) -> None:
    """On stderr: the verb's own output (e.g. status's JSON) stays what it was."""
    print(line, file=sys.stderr, flush=True)


def _model(backend, ref: str) -> ModelVersion | None:
    name, _, version = ref.rpartition(":")
    with contextlib.suppress(ValueError, MlopsError):
        return backend.get_shared_model(name, int(version))
    return None


def _audit(ctx, env, action, model, endpoint, deployment, **details) -> None:
    if model is None:  # the registry lost it: the trail cannot name its sha256
        _notice(f"warning: no audit entry for the interrupted deploy ({action}): model not found")
        return
    history.record(ctx, env, action, model, endpoint, deployment, **details)

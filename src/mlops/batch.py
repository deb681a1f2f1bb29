"""Batch scoring: the promoted model scores whole files as jobs on a batch endpoint.

`mlops batch-deploy` puts the environment's model on its batch endpoint (created if
missing) as a new deployment, runs a smoke job on the shipped sample through it, and
only then makes it the endpoint's default; a failed smoke job leaves the previous
default in place. `mlops batch --input FILE|URI|DATA_ASSET` starts a scoring job on the
default deployment, follows it, and says where its predictions and errors files are.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from mlops.backends.base import BatchEndpoint, BatchJob
from mlops.champion import resolve_shared
from mlops.context import Context
from mlops.errors import MlopsError, RolloutFailed
from mlops.github import set_outputs
from mlops.smoke import SAMPLE_REQUEST

SUFFIX = "-batch"


def endpoint_name(ctx: Context, env: str) -> str:
    """The environment's batch endpoint: its online endpoint's name with -batch (32 at most)."""
    return ctx.config(env).endpoint_name[: 32 - len(SUFFIX)] + SUFFIX


def smoke_sample(root: Path, folder: Path) -> Path:
    """The shipped sample request's rows as a CSV file: the smoke job's input."""
    rows = json.loads((root / SAMPLE_REQUEST).read_text())["data"]
    path = folder / "smoke-sample.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def deploy(ctx: Context, env: str, model_ref: str | None = None) -> BatchEndpoint | None:
    """Deploy the model to the batch endpoint; it becomes the default only after its smoke job."""
    cfg = ctx.config(env)
    model = resolve_shared(ctx, env, model_ref)
    if model is None:
        ctx.say(
            f"notice: {cfg.path.as_posix()} names no model.version and no --model was given: "
            "nothing to deploy for batch"
        )
        set_outputs(batch_deployed="false")
        return None
    backend, name = ctx.backend(env), endpoint_name(ctx, env)
    endpoint = backend.get_batch_endpoint(name)
    if endpoint is None:
        ctx.say(f"creating batch endpoint {name}")
        endpoint = backend.create_batch_endpoint(name)
    current = endpoint.deployments.get(endpoint.default or "")
    if current and (current.model, current.artifact_sha256) == (model.ref, model.artifact_sha256):
        ctx.say(f"batch endpoint {name} already runs {model.ref} by default ({current.name})")
        set_outputs(batch_deployed="true", model=model.ref)
        return endpoint
    new = "green" if endpoint.default == "blue" else "blue"
    ctx.say(f"deploying {model.ref} to batch deployment {name}/{new}")
    backend.create_batch_deployment(name, new, model)
    with tempfile.TemporaryDirectory() as folder:
        job = backend.invoke_batch(name, str(smoke_sample(ctx.root, Path(folder))), new)
    kept = endpoint.default or "no deployment"
    if job.status != "Completed" or job.refused:
        problem = f"ended {job.status}" if job.status != "Completed" else "refused sample rows"
        raise RolloutFailed(
            f"the smoke job {job.id} on batch deployment {new} {problem} (outputs: "
            f"{job.outputs}); {kept} stays the default of {name}"
        )
    ctx.say(f"smoke job {job.id} completed on {new}")
    endpoint = backend.set_batch_default(name, new)
    ctx.say(f"batch endpoint {name} runs {model.ref} by default ({new}); before: {kept}")
    set_outputs(batch_deployed="true", model=model.ref)
    return endpoint


def score(ctx: Context, env: str, source: str, deployment: str | None = None) -> BatchJob:
    """Run a scoring job on source; fail unless it completes."""
    backend, name = ctx.backend(env), endpoint_name(ctx, env)
    endpoint = backend.get_batch_endpoint(name)
    if endpoint is None or (deployment is None and endpoint.default is None):
        raise MlopsError(
            f"{env} has no batch endpoint {name} with a default deployment; "
            f"run `mlops batch-deploy --env {env}` first"
        )
    job = backend.invoke_batch(name, source, deployment)
    if job.status != "Completed":
        raise MlopsError(f"batch job {job.id} ended {job.status}; its outputs: {job.outputs}")
    served = endpoint.deployments.get(job.deployment)
    ctx.say(f"batch job {job.id} completed on {job.deployment} ({served.model if served else '?'})")
    if job.rows is not None:
        ctx.say(f"{job.rows} row(s) scored, {job.refused} refused (see the errors file)")
    ctx.say(f"outputs: {job.outputs}")
    set_outputs(job=job.id, outputs=job.outputs)
    return job

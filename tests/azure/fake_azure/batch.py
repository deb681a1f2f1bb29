"""Batch endpoints and deployments, and the jobs an invocation starts.

Rules, each from its source:
- a batch endpoint's properties.authMode is required (REST spec stable/2024-04-01/mfe.json,
  BatchEndpointProperties via EndpointPropertiesBase: "[Required] Use 'Key' ... 'AMLToken'").
- defaults.deploymentName is the deployment that "will end up getting 100% traffic when the
  endpoint scoring URL is invoked" (same spec, BatchEndpointDefaults); it must name a
  deployment of the endpoint (docs: learn.microsoft.com/azure/machine-learning/
  how-to-use-batch-model-deployments, the deployment is created first, then made default;
  the service's error is not documented: unverified, 400 here).
- create/update of endpoints and deployments are long-running operations, as for online
  ones (spec: BatchEndpoints_CreateOrUpdate / BatchDeployments_CreateOrUpdate,
  x-ms-long-running-operation, 200/201 with Azure-AsyncOperation).
- a batch deployment runs on a compute cluster: properties.compute names it (spec:
  BatchDeploymentProperties.compute, "Compute target for batch inference operation";
  docs how-to-use-batch-model-deployments: batch deployments need a compute cluster);
  a deployment without one is refused here (our reading: the spec does not mark it required).
- a deployment's endpoint exists before it (spec: deployments are children of the endpoint;
  a PUT under a missing parent is ARM's 404).
- invoking: a POST to the endpoint's scoring URI with a Microsoft Entra token, not a key
  (docs: how-to-authenticate-batch-endpoint, "Batch endpoints support Microsoft Entra
  authentication"); the azureml-model-deployment header picks a deployment, else the default
  runs it; neither is "No valid deployments to route to" (docs how-to-troubleshoot-batch-
  endpoints); the answer is the job, which then progresses like any job (jobs.py).
- a job runs as the identity that invoked the endpoint (docs how-to-authenticate-batch-
  endpoint: "a batch deployment job is created under the identity associated with the token");
  with an identity-based datastore it reads inputs as that identity and the cluster's
  ("Configure compute clusters for data access": identity of the job + managed identity of
  the compute cluster), and writes its outputs as the job's identity.
- with shared keys off, the batch runtime (parallel run step) needs Storage Queue and Table
  Data Contributor besides blob access (docs how-to-disable-local-auth-storage, "Scenarios
  for role assignments", Parallel Run Step); lacking one, the job fails. The service's exact
  failure text is not documented (unverified): the double names the missing data action.
- the job runs the deployment's scoring script under the batch contract: init() once, then
  run(mini_batch) per mini-batch of at most mini_batch_size files, AZUREML_MODEL_DIR naming
  the model's folder, AZUREML_BI_OUTPUT_PATH the output folder (docs how-to-batch-scoring-
  script; how-to-deploy-model-custom-output), in a process of its own; run() must return one
  element per file, and with error_threshold 0 any failed file fails the job (spec
  BatchDeploymentProperties.errorThreshold). Outputs land in the default datastore under
  azureml/<job>/<output> (docs how-to-use-batch-model-deployments: outputs go to the default
  blob store, in a folder named after the job). Tests may still inject an end (`next_job_ends`).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers import MODEL_DIR

from .arm import REGION
from .http import Reply, error, not_found
from .identity import Identity, access, allowed

_job_ids = itertools.count(1)
# The runtime's data actions on the workspace storage, as the job's identity (module note).
RUNTIME_ACTIONS = {
    "blob-write": "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
    "queue-write": "Microsoft.Storage/storageAccounts/queueServices/queues/messages/add/action",
    "table-write": "Microsoft.Storage/storageAccounts/tableServices/tables/entities/write",
}
# The batch contract run in a process of its own: init() once, run() per mini-batch.
_DRIVER = """
import json, sys
import batch_score as script
files, size = json.loads(sys.argv[1]), int(sys.argv[2])
script.init()
done = []
for start in range(0, len(files), size):
    batch = files[start:start + size]
    result = script.run(batch)
    if len(result) != len(batch):
        sys.exit(f"run() returned {len(result)} results for {len(batch)} files")
    done += list(map(str, result))
print(json.dumps(done))
"""


@dataclass
class BatchRun:
    job: str
    deployment: str
    inputs: dict
    invoker: Identity
    workspace: str
    failure: str | None = None  # why the job failed, as its logs would say


class Batch:
    def put_batch_endpoint(self, path: str, body: dict) -> Reply:
        properties = dict(body.get("properties") or {})
        if not properties.get("authMode"):  # spec EndpointPropertiesBase.authMode: [Required]
            return error(400, "BadArgument", "properties.authMode is required")
        default = (properties.get("defaults") or {}).get("deploymentName")
        deployments = {d["name"] for d in self.children(path + "/deployments")}
        if default and default not in deployments:  # docs: create the deployment, then default
            return error(
                400, "BadArgument", f"defaults.deploymentName names {default}, which does not exist"
            )
        name = path.rsplit("/", 1)[-1]
        properties["scoringUri"] = f"https://{name}.{REGION}.inference.ml.azure.com/jobs"
        properties["defaults"] = {"deploymentName": default} if default else {}
        return self._provision(path, {**body, "properties": properties})

    def put_batch_deployment(self, path: str, body: dict) -> Reply:
        endpoint = path.split("/deployments/")[0]
        if endpoint not in self.resources:  # ARM: no child without its parent
            return not_found(endpoint)
        properties = dict(body.get("properties") or {})
        if not properties.get("compute"):  # spec BatchDeploymentProperties.compute; docs
            return error(400, "BadArgument", "a batch deployment needs a compute cluster")
        refusal = self.batch_deployment_refusal(properties)  # references.py
        if refusal:
            return refusal
        return self._provision(path, {**body, "properties": properties})

    def _provision(self, path: str, body: dict) -> Reply:
        """Store the resource as Creating/Updating; its operation ends Succeeded (an LRO)."""
        existed = path in self.resources
        state = "Updating" if existed else "Creating"
        stored = self.store(path, body, provisioningState=state)

        def finish():
            self.resources[path]["properties"]["provisioningState"] = "Succeeded"

        return Reply(200 if existed else 201, stored, self.lro_headers(self.begin(finish)))

    # ---- data plane: invoking starts a job -------------------------------------------

    def invoke_batch(self, host: str, call) -> Reply:
        name = host.split(".")[0]
        found = [k for k in self.resources if k.endswith(f"/batchEndpoints/{name}")]
        if not found:
            return Reply(404, {"error": {"code": "NotFound", "message": f"no endpoint {name}"}})
        (path,) = found
        identity = Identity.from_header(call.headers.get("authorization"))
        workspace = path.split("/workspaces/")[1].split("/")[0]
        env = self.workspace_env.get(workspace)
        # docs how-to-authenticate-batch-endpoint: an Entra token allowed to write jobs, no key
        if identity is None or not allowed(
            identity, "write", access.WORKSPACE, env, self.extra_grants(identity)
        ):
            return error(401, "Unauthorized", "a Microsoft Entra token with job rights is needed")
        named = call.headers.get("azureml-model-deployment")
        chosen = named or self.resources[path]["properties"]["defaults"].get("deploymentName")
        if chosen is None:  # docs how-to-troubleshoot-batch-endpoints
            return error(400, "BadArgument", "No valid deployments to route to.")
        if f"{path}/deployments/{chosen}" not in self.resources:
            return error(404, "NotFound", f"deployment {chosen} not found")
        inputs = (call.json().get("properties") or {}).get("inputData") or {}
        if not inputs:
            return error(400, "BadArgument", "a batch job needs input data")
        job = f"batchjob-{next(_job_ids):04d}"
        job_path = f"{path.split('/batchEndpoints/')[0]}/jobs/{job}"
        self.store(
            job_path,
            {
                "properties": {
                    "jobType": "Pipeline",
                    "status": "NotStarted",
                    "inputs": {},
                    "jobs": {},
                    "tags": {"endpoint": name, "deployment": chosen},
                    "services": {"Studio": {"endpoint": f"https://ml.azure.com/runs/{job}"}},
                }
            },
        )
        self.batch_jobs.append(
            BatchRun(job, f"{path}/deployments/{chosen}", inputs, identity, workspace)
        )
        return Reply(200, {"id": job_path, "name": job, "properties": {"status": "NotStarted"}})

    def _end(self, job: dict) -> str:
        """A batch job's end: injected by the test, else what running it gives."""
        runs = [r for r in self.batch_jobs if r.job == job["name"]]
        if not runs:
            return super()._end(job)
        if self.next_job_ends:
            return self.next_job_ends.pop(0)
        run = runs[0]
        run.failure = self._run_batch(run)
        return "Failed" if run.failure else "Completed"

    def _run_batch(self, run: BatchRun) -> str | None:
        """Run the job as the batch runtime would; None, or why it failed."""
        env = self.workspace_env.get(run.workspace)
        extra = self.extra_grants(run.invoker)
        for action, data_action in RUNTIME_ACTIONS.items():
            if not allowed(run.invoker, action, access.STORAGE, env, extra):
                return f"{run.invoker.persona}/{run.invoker.env} may not perform {data_action}"
        compute = Identity(access.COMPUTE, env)
        deployment = self.resources[run.deployment]
        properties = deployment["properties"]
        with tempfile.TemporaryDirectory() as folder:
            files = []
            for name, given in run.inputs.items():
                key = _blob_key(self._data_uri(given.get("uri", "")))
                for reader in (run.invoker, compute):  # both read an identity-based store
                    if not allowed(
                        reader, "blob-read", access.STORAGE, env, self.extra_grants(reader)
                    ):
                        return f"{reader.persona}/{reader.env} may not read {key}"
                found = {
                    k: v
                    for k, v in self.blobs.items()
                    if k == key or k.startswith(key.rstrip("/") + "/")
                }
                if not found:
                    return f"input {name}: {given.get('uri')} does not exist"
                for k, data in sorted(found.items()):
                    local = Path(folder, "inputs", name, k.rsplit("/", 1)[-1])
                    local.parent.mkdir(parents=True, exist_ok=True)
                    local.write_bytes(data)
                    files.append(str(local))
            output = Path(folder, "outputs")
            output.mkdir()
            model_id = properties["model"]["assetId"]
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _DRIVER,
                    json.dumps(files),
                    str(properties.get("miniBatchSize") or 1),
                ],
                cwd=MODEL_DIR,
                env={
                    **os.environ,
                    **(properties.get("environmentVariables") or {}),
                    "AZUREML_MODEL_DIR": str(
                        self.served_model({"properties": {"model": model_id}})
                    ),
                    "AZUREML_BI_OUTPUT_PATH": str(output),
                },
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                return (
                    done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "run() failed"
                )
            for made in sorted(output.iterdir()):  # written as the job's identity (checked above)
                self.blobs[f"azureml-blobstore/azureml/{run.job}/score/{made.name}"] = (
                    made.read_bytes()
                )
        return None

    def _data_uri(self, uri: str) -> str:
        """A data asset input is read where its version points (its dataUri)."""
        start = uri.find("/subscriptions/")
        asset = self.resources.get(uri[start:]) if start >= 0 and "/data/" in uri else None
        return (asset or {}).get("properties", {}).get("dataUri") or uri


def _blob_key(uri: str) -> str:
    """The default datastore's blob an input names (azureml://datastores/<store>/paths/<path>,
    or the long form with subscriptions/.../workspaces/<ws>/ before it)."""
    path = uri.split("/paths/", 1)[1] if "/paths/" in uri else uri.rsplit("/", 1)[-1]
    return f"azureml-blobstore/{path}"

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
- the job's compute run is not simulated: it completes unless a test injects its end through
  `next_job_ends`; the entry script itself is tested in tests/model/test_batch_score.py.
"""

from __future__ import annotations

import itertools

from .arm import REGION
from .http import Reply, error, not_found
from .identity import Identity, access, allowed

_job_ids = itertools.count(1)


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
        self.batch_jobs.append((job, chosen, inputs))
        return Reply(200, {"id": job_path, "name": job, "properties": {"status": "NotStarted"}})

    def _end(self, job: dict) -> str:
        """A batch job's end: injected by the test, else Completed (see the module's note)."""
        if not any(name == job["name"] for name, _, _ in self.batch_jobs):
            return super()._end(job)
        return self.next_job_ends.pop(0) if self.next_job_ends else "Completed"

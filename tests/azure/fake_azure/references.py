"""What the service resolves when a deployment or a model version is submitted: every reference
names something that exists, every bound holds. Each refusal is ARM's error body (REST spec
common-types ErrorResponse {error: {code, message}}); the exact codes and sentences Azure uses
for these are not documented (unverified): 400 UserError naming the reference or bound here.

Rules, each from its source:
- an online deployment's model and environment name existing assets (REST spec stable/
  2024-04-01 mfe.json, OnlineDeploymentProperties.model / EnvironmentId: "ARM resource ID or
  AssetId"; Learn reference-yaml-deployment-managed-online: "a reference to an existing ...").
- its instance type is one of the managed online SKUs (Learn reference-managed-online-
  endpoints-vm-sku-list; vm_skus.txt), and it runs on at least one instance (Learn reference-
  yaml-deployment-managed-online, instance_count "The number of instances to use").
- a model version made from a job's output names a job of the workspace (Learn how-to-manage-
  models, "Register your model as an asset ... from a job's output": azureml://jobs/<job>/...).
- a batch deployment's compute is "a reference to an existing compute in the workspace" (Learn
  reference-yaml-deployment-batch, `compute`); mini_batch_size is "the number of files ... in
  one run() call" and max_concurrency_per_instance "the maximum number of parallel
  scoring_script runs per instance" (same page): 0 leaves nothing to run, so both are >= 1.
"""

from __future__ import annotations

from pathlib import Path

from .http import Reply, error

VM_SKUS = {
    line.strip().upper()
    for line in (Path(__file__).with_name("vm_skus.txt")).read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
COMPUTES = ("cpu-cluster",)  # infra/mlops_infra/environment.py COMPUTE_NAME, in each workspace


def _refused(message: str) -> Reply:
    return error(400, "UserError", message)


class References:
    def exists(self, reference: str) -> bool:
        """An asset named by its ARM id or by azureml://registries/<registry>/<kind>/<n>/versions/<v>."""
        if reference.startswith("azureml://registries/"):
            registry, rest = reference.removeprefix("azureml://registries/").split("/", 1)
            return any(k.endswith(f"/registries/{registry}/{rest}") for k in self.resources)
        start = reference.find("/subscriptions/")
        return start >= 0 and reference[start:] in self.resources

    def online_deployment_refusal(self, body: dict) -> Reply | None:
        properties = body.get("properties") or {}
        for field in ("model", "environmentId"):
            reference = properties.get(field)
            if reference and not self.exists(reference):  # mfe.json: ARM id or asset id
                return _refused(f"properties.{field}: {reference} does not exist")
        size = str(properties.get("instanceType") or "")
        if size and size.upper() not in VM_SKUS:  # Learn: managed online endpoints SKU list
            return _refused(f"instance type {size} is not a managed online endpoint SKU")
        capacity = (body.get("sku") or {}).get("capacity")
        if capacity is not None and capacity < 1:  # Learn: instances to use, at least one
            return _refused(f"instance_count {capacity}: a deployment needs at least 1 instance")
        return None

    def model_version_refusal(self, path: str, body: dict) -> Reply | None:
        uri = str((body.get("properties") or {}).get("modelUri") or "")
        if "/workspaces/" not in path or not uri.startswith("azureml://jobs/"):
            return None
        job = uri.removeprefix("azureml://jobs/").split("/")[0]
        workspace = path.split("/models/")[0]
        if f"{workspace}/jobs/{job}" not in self.resources:  # how-to-manage-models: a job's output
            return _refused(f"modelUri {uri}: the workspace has no job {job}")
        return None

    def batch_deployment_refusal(self, properties: dict) -> Reply | None:
        compute = str(properties.get("compute") or "")
        if compute and compute.rstrip("/").rsplit("/", 1)[-1] not in COMPUTES:
            return _refused(f"compute {compute} does not exist in the workspace")
        for field, name in (
            ("miniBatchSize", "mini_batch_size"),
            ("maxConcurrencyPerInstance", "max_concurrency_per_instance"),
        ):
            value = properties.get(field)
            if value is not None and value < 1:  # Learn reference-yaml-deployment-batch
                return _refused(f"{name} {value}: it must be at least 1")
        return None

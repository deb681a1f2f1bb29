"""Jobs: command jobs and pipeline jobs of components, states that progress with each read, and
tags from real runs of src/model's steps.

Rules, each from its source:
- a job moves NotStarted -> Queued -> Running -> a terminal state as time passes; the
  states are the REST spec's JobStatus (stable/2024-04-01/mfe.json: NotStarted, Queued,
  Running, Completed, Failed, Canceled, Paused, ...). Here one read is one step.
- inside a job MLflow's tracking URI is azureml://..., served only with the azureml-mlflow
  plugin in the job's environment (docs: learn.microsoft.com/azure/machine-learning/
  how-to-use-mlflow-configure-tracking, "install the azureml-mlflow package"); without
  it a step's mlflow.start_run() raises, so a step that logs ends Failed.
- a job's tags are those its MLflow run set (an Azure ML job is its MLflow run: docs,
  how-to-use-mlflow-cli-runs); the double gets them by running the step's real command
  from src/model, through the `runner` the tests give it.
- a pipeline job (REST spec mfe.json PipelineJob: jobType Pipeline, `jobs` and `settings`
  free-form objects) runs each node as a child job; children are listed by run history,
  GET .../runs/{id}/children (the SDK's jobs.list(parent_job_name=...): azure/ai/ml/
  operations/_run_operations.py get_run_children), and a child is not served by the jobs
  API, whose answer has no properties, so the SDK reads it from run history instead
  (_job_operations.py `get`, "Child jobs are no longer available through MFE").
- reuse (docs how-to-debug-pipeline-reuse-issues): a node whose component is deterministic,
  in a pipeline that does not force a rerun, with the same code snapshot, environment,
  inputs and parameters as a completed node of an earlier pipeline that did not force a
  rerun either, is not run: the child is Completed with properties azureml.isreused "true"
  and azureml.reusedrunid naming the reused job (azure/ai/ml/constants/_job/pipeline.py,
  PipelineConstants; the SDK's jobs.download follows them). Whether Azure also copies the
  reused run's tags onto the child is not documented: the double copies none.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .http import Reply, error, not_found

PROGRESS = ("NotStarted", "Queued", "Running")
BINDING = re.compile(r"^\$\{\{parent\.(jobs\.([\w-]+)\.outputs\.([\w-]+)|inputs\.([\w-]+))\}\}$")
REUSED_FLAG, REUSED_JOB = "azureml.isreused", "azureml.reusedrunid"


@dataclass(frozen=True)
class TrainedRun:
    """What a training job left: its lineage run's tags and its model folder."""

    tags: dict[str, str]
    model_dir: Path


@dataclass(frozen=True)
class StagedFile:
    """An input file as a step's job finds it mounted: its name and bytes."""

    name: str
    content: bytes


@dataclass(frozen=True)
class StepRun:
    """What a real run of one step's command left: its outputs and its MLflow run's tags."""

    outputs: dict[str, Path]
    tags: dict[str, str] = field(default_factory=dict)
    failed: str | None = None  # the log's tail when the command failed


class Jobs:
    def put_job(self, path: str, body: dict) -> Reply:
        if path in self.resources:
            return error(409, "Conflict", f"job {path.rsplit('/', 1)[-1]} already exists")
        properties = dict(body.get("properties") or {})
        if properties.get("jobType") == "Pipeline":
            refusal = self._refuse_pipeline(path, properties)
            if refusal:
                return refusal
        properties["status"] = PROGRESS[0]
        name = path.rsplit("/", 1)[-1]
        properties.setdefault(
            "services", {"Studio": {"endpoint": f"https://ml.azure.com/runs/{name}"}}
        )
        return Reply(201, self.store(path, {**body, "properties": properties}))

    def get_job(self, path: str) -> Reply:
        job = self.resources[path]
        properties = job["properties"]
        if properties is None:  # a pipeline's child: the jobs API has no properties for it
            return Reply(200, job)
        if properties["status"] in PROGRESS:  # spec JobStatus: NotStarted, Queued, Running
            step = PROGRESS.index(properties["status"]) + 1
            properties["status"] = PROGRESS[step] if step < len(PROGRESS) else self._end(job)
        return Reply(200, job)

    def _end(self, job: dict) -> str:
        if self.next_job_ends:
            return self.next_job_ends.pop(0)  # e.g. "Failed", "Canceled", "Paused"
        if job["properties"].get("jobType") == "Pipeline":
            return self._run_pipeline(job)
        return "Failed"  # the template submits pipeline jobs only; a command job is not run

    def _job_conda_file(self, environment_id: str) -> str:
        key = environment_id[environment_id.find("/subscriptions/") :]
        environment = self.resources.get(key) or {}
        return (environment.get("properties") or {}).get("condaFile") or ""

    def served_model(self, deployment: dict) -> Path:
        """The model folder a deployment serves: registry model -> its job's output."""
        model_id = deployment["properties"]["model"]  # azureml://registries/R/models/N/versions/V
        registry, rest = model_id.removeprefix("azureml://registries/").split("/", 1)
        (copy,) = [k for k in self.copied_from_job if k.endswith(f"/registries/{registry}/{rest}")]
        job = self.copied_from_job[copy]
        return self.job_runs[job].model_dir

    # ---- pipeline jobs ------------------------------------------------------------------

    def _component(self, node: dict) -> dict | None:
        resource = self.resources.get(_arm(node.get("componentId", "")))
        return ((resource or {}).get("properties") or {}).get("componentSpec")

    def _refuse_pipeline(self, path: str, properties: dict) -> Reply | None:
        """What the service refuses at submission that the SDK lets through when a job body
        is written by hand (the SDK's own client-side checks run only on its entities)."""
        settings = properties.get("settings") or {}
        nodes = properties.get("jobs") or {}
        if not nodes:  # docs reference-yaml-job-pipeline: `jobs` is required
            return error(400, "UserError", "a pipeline job needs at least one job in `jobs`")
        for name, node in nodes.items():
            component = self._component(node)
            if component is None:  # a node runs a registered component version
                return error(
                    404,
                    "NotFound",
                    f"jobs.{name}: component {node.get('componentId')!r} does not exist",
                )
            # docs reference-yaml-job-pipeline, settings.default_compute: the compute of every
            # step that names none; a step left with no compute cannot be scheduled
            if not (
                node.get("computeId") or node.get("compute") or settings.get("default_compute")
            ):
                return error(
                    400,
                    "UserError",
                    f"jobs.{name}: no compute, and the pipeline sets no settings.default_compute",
                )
            environment = _arm(str(component.get("environment", "")))
            if environment not in self.resources:  # every asset reference resolves at submission
                return error(
                    404,
                    "NotFound",
                    f"jobs.{name}: environment {component.get('environment')!r} does not exist",
                )
            declared = component.get("inputs") or {}
            for input_name, given in (node.get("inputs") or {}).items():
                # docs reference-yaml-job-pipeline: a node's inputs are its component's inputs
                if input_name not in declared:
                    return error(
                        400,
                        "UserError",
                        f"jobs.{name}.inputs.{input_name}: the component declares no such input",
                    )
                refusal = self._refuse_binding(name, input_name, given, nodes, properties)
                if refusal:
                    return refusal
        return None

    def _refuse_binding(self, name, input_name, given, nodes, properties) -> Reply | None:
        value = str((given or {}).get("value", "")) if isinstance(given, dict) else ""
        if "${{" not in value:
            return None
        found = BINDING.match(value)
        where = f"jobs.{name}.inputs.{input_name}"
        # docs reference-yaml-job-pipeline, expressions: ${{parent.inputs.X}} names an input
        # of the pipeline, ${{parent.jobs.J.outputs.O}} an output of another step
        if found is None:
            return error(400, "UserError", f"{where}: {value!r} is not a binding the service reads")
        step, output, pipeline_input = found.group(2), found.group(3), found.group(4)
        if pipeline_input is not None:
            if pipeline_input not in (properties.get("inputs") or {}):
                return error(
                    400, "UserError", f"{where}: the pipeline has no input {pipeline_input!r}"
                )
            return None
        if step not in nodes or step == name:
            return error(400, "UserError", f"{where}: no other step {step!r} in this pipeline")
        outputs = (self._component(nodes[step]) or {}).get("outputs") or {}
        if output not in outputs:
            return error(400, "UserError", f"{where}: step {step!r} has no output {output!r}")
        return None

    def _run_pipeline(self, job: dict) -> str:
        """Each node in dependency order: reused from an earlier pipeline's child when Azure
        would reuse it, else run for real; the pipeline ends Failed at the first failed node."""
        properties = job["properties"]
        nodes = dict(properties["jobs"])
        rerun = bool((properties.get("settings") or {}).get("force_rerun"))
        keys, outputs, children = {}, {}, {}
        while len(keys) < len(nodes):
            ready = [n for n in nodes if n not in keys and _upstream(nodes[n]) <= set(keys)]
            name = ready[0]
            node, component = nodes[name], self._component(nodes[name])
            inputs, resolved = {}, {}
            for input_name, given in (node.get("inputs") or {}).items():
                value = str(given.get("value", given.get("uri", "")))
                found = BINDING.match(value)
                if found and found.group(2):
                    step, output = found.group(2), found.group(3)
                    inputs[input_name] = outputs[step][output]
                    resolved[input_name] = f"{keys[step]}/{output}"
                elif found and found.group(4):
                    uri = properties["inputs"][found.group(4)]["uri"]
                    mounted = self._mounted(uri)
                    if mounted is None:
                        return "Failed"  # the input's files cannot be read
                    inputs[input_name], resolved[input_name] = mounted, uri
                else:
                    inputs[input_name] = resolved[input_name] = value
            keys[name] = self._reuse_key(component, resolved)
            origin = (
                None
                if rerun or not component.get("is_deterministic")
                else self._reusable(keys[name])
            )
            if origin is not None:
                run = self.step_runs[origin]
                children[name] = self._child(job, name, keys[name], {}, rerun, reused=origin)
            else:
                run = self.runner(keys[name], component, inputs)
                logs = bool(run.tags)
                conda = self._job_conda_file(str(component.get("environment", "")))
                if run.failed or (logs and "azureml-mlflow" not in conda):
                    self._child(job, name, keys[name], {}, rerun, status="Failed")
                    return "Failed"  # docs how-to-use-mlflow-configure-tracking: the plugin
                children[name] = self._child(job, name, keys[name], run.tags, rerun)
                self.step_runs[children[name]] = run
            outputs[name] = self._bind_outputs(job, node, run)
        # the lineage is the run of the step that logged to MLflow; the model, the folder the
        # pipeline's `model` output is bound to (what azureml://jobs/<job>/outputs/model reads)
        (logged,) = [
            r for r in map(self.step_runs.get, map(self._origin, children.values())) if r.tags
        ]
        model = self.pipeline_outputs.get((job["name"], "model"))
        if model is None:
            return "Failed"  # nothing bound to the output the model is registered from
        self.job_runs[job["name"]] = TrainedRun(logged.tags, model / "model")
        return "Completed"

    def _mounted(self, uri: str) -> StagedFile | None:
        """A data asset version's file as its job reads it: the uploaded blob its dataUri names
        (azureml://datastores/workspaceblobstore/paths/P is the workspace blob container's P)."""
        data = self.resources.get(_arm(uri)) or {}
        data_uri = str((data.get("properties") or {}).get("dataUri", ""))
        if "/paths/" not in data_uri:
            return None
        blob = f"azureml-blobstore/{data_uri.split('/paths/', 1)[1]}"
        if blob not in self.blobs:
            return None
        return StagedFile(blob.rsplit("/", 1)[-1], self.blobs[blob])

    def _bind_outputs(self, job: dict, node: dict, run: StepRun) -> dict:
        for output, given in (node.get("outputs") or {}).items():
            target = str((given or {}).get("value", ""))
            if target.startswith("${{parent.outputs."):  # the pipeline's own output
                self.pipeline_outputs[(job["name"], target[18:-2])] = run.outputs[output]
        return dict(run.outputs)

    def _reuse_key(self, component: dict, resolved: dict) -> str:
        """What reuse compares (docs how-to-debug-pipeline-reuse-issues): the code snapshot
        (by its content hash, not its asset name), the environment, inputs and parameters."""
        code = self.resources.get(_arm(str(component.get("code", "")))) or {}
        snapshot = ((code.get("properties") or {}).get("properties") or {}).get("hash_sha256")
        facts = {
            "command": component.get("command"),
            "environment": component.get("environment"),
            "code": snapshot or component.get("code"),
            "inputs": resolved,
            "defaults": {
                k: (v or {}).get("default") for k, v in (component.get("inputs") or {}).items()
            },
        }
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()

    def _reusable(self, key: str) -> str | None:
        for run in self.runs.values():
            properties = run["properties"]
            if (
                properties.get("reuse_key") == key
                and run["status"] == "Completed"
                and properties.get(REUSED_FLAG) != "true"
                and properties.get("force_rerun") != "true"  # docs: its children reuse nothing
            ):
                return run["runId"]
        return None

    def _origin(self, child: str) -> str:
        return self.runs[child]["properties"].get(REUSED_JOB) or child

    def _child(self, job, name, key, tags, rerun, reused=None, status="Completed") -> str:
        """A child run in run history, and its answer-less entry in the jobs API."""
        run_id = str(uuid.uuid4())
        properties = {"reuse_key": key, "force_rerun": str(rerun).lower()}
        if reused:
            properties.update({REUSED_FLAG: "true", REUSED_JOB: reused})
        self.runs[run_id] = {
            "runId": run_id,
            "parentRunId": job["name"],
            "rootRunId": job["name"],
            "displayName": name,
            "status": status,
            "tags": dict(tags),
            "properties": properties,
            "experimentId": job["properties"].get("experimentName"),
        }
        workspace_jobs = job["id"].rsplit("/", 1)[0]
        self.resources[f"{workspace_jobs}/{run_id}"] = {
            "id": f"{workspace_jobs}/{run_id}",
            "name": run_id,
            "properties": None,
        }
        return run_id

    def run_history(self, path: str) -> Reply:
        """GET .../runs/{id} and .../runs/{id}/children (PaginatedRunList)."""
        if path.endswith("/children"):
            parent = path.rsplit("/", 2)[-2]
            value = [run for run in self.runs.values() if run["parentRunId"] == parent]
            return Reply(200, {"value": value})
        run = self.runs.get(path.rsplit("/", 1)[-1])
        return Reply(200, run) if run else not_found(path)


def _upstream(node: dict) -> set[str]:
    found = set()
    for given in (node.get("inputs") or {}).values():
        match = BINDING.match(str((given or {}).get("value", "")))
        if match and match.group(2):
            found.add(match.group(2))
    return found


def _arm(reference: str) -> str:
    """An asset's ARM path from azureml:/subscriptions/... or /subscriptions/..."""
    start = reference.find("/subscriptions/")
    return reference[start:] if start >= 0 else reference

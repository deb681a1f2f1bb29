"""Command jobs: states that progress with each read, and tags from a real run of train.py.

Rules, each from its source:
- a job moves NotStarted -> Queued -> Running -> a terminal state as time passes; the
  states are the REST spec's JobStatus (stable/2024-04-01/mfe.json: NotStarted, Queued,
  Running, Completed, Failed, Canceled, Paused, ...). Here one read is one step.
- inside a job MLflow's tracking URI is azureml://..., served only with the azureml-mlflow
  plugin in the job's environment (docs: learn.microsoft.com/azure/machine-learning/
  how-to-use-mlflow-configure-tracking, "install the azureml-mlflow package"); without
  it train.py's mlflow.start_run() raises, so the job ends Failed.
- a job's tags are those its MLflow run set (an Azure ML job is its MLflow run: docs,
  how-to-use-mlflow-cli-runs); the double gets them by running src/model/train.py with
  the job's flags, through the `trainer` the tests give it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .http import Reply, error

PROGRESS = ("NotStarted", "Queued", "Running")


@dataclass(frozen=True)
class TrainedRun:
    """What a real run of train.py left: its MLflow run's tags and its model folder."""

    tags: dict[str, str]
    model_dir: Path


class Jobs:
    def put_job(self, path: str, body: dict) -> Reply:
        if path in self.resources:
            return error(409, "Conflict", f"job {path.rsplit('/', 1)[-1]} already exists")
        properties = dict(body.get("properties") or {})
        properties["status"] = PROGRESS[0]
        name = path.rsplit("/", 1)[-1]
        properties.setdefault(
            "services", {"Studio": {"endpoint": f"https://ml.azure.com/runs/{name}"}}
        )
        return Reply(201, self.store(path, {**body, "properties": properties}))

    def get_job(self, path: str) -> Reply:
        job = self.resources[path]
        properties = job["properties"]
        if properties["status"] in PROGRESS:  # spec JobStatus: NotStarted, Queued, Running
            step = PROGRESS.index(properties["status"]) + 1
            properties["status"] = PROGRESS[step] if step < len(PROGRESS) else self._end(job)
        return Reply(200, job)

    def _end(self, job: dict) -> str:
        properties = job["properties"]
        if self.next_job_ends:
            return self.next_job_ends.pop(0)  # e.g. "Failed", "Canceled", "Paused"
        conda = self._job_conda_file(properties.get("environmentId", ""))
        if "azureml-mlflow" not in conda:  # docs how-to-use-mlflow-configure-tracking
            return "Failed"  # mlflow.start_run() cannot reach azureml:// without the plugin
        run = self.trainer(_flags(properties.get("command", "")))
        properties["tags"] = {**(properties.get("tags") or {}), **run.tags}
        self.job_runs[job["name"]] = run
        return "Completed"

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


def _flags(command: str) -> dict[str, str]:
    """The hyperparameters on a job's command line: --name=value pairs."""
    return dict(re.findall(r"--([\w-]+)=(\S+)", command))

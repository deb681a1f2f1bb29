"""Training jobs on this machine: train.py in a subprocess, tracked in the environment's MLflow.

Each job's outputs and log live under <env>/jobs/<job>/; the MLflow tracking store is
<env>/mlflow.db with artifacts under <env>/artifacts/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from mlops import lineage
from mlops.backends.base import Job, TrainingSpec
from mlops.backends.local import processes
from mlops.errors import MlopsError
from mlops.state import read_json, write_json


class LocalJobs:
    """The training part of LocalBackend (which provides dir and env)."""

    def _mlflow(self):
        from mlflow import MlflowClient

        self.dir.mkdir(parents=True, exist_ok=True)
        uri = self.tracking_uri
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def _has_store(self) -> bool:
        # a lookup in an environment that never trained has nothing to find, and creating the
        # store (seconds of schema migrations) only to search it empty would leave state behind
        return (self.dir / "mlflow.db").is_file()

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.dir / 'mlflow.db'}"

    def _experiment_id(self, client, name: str) -> str:
        existing = client.get_experiment_by_name(name)
        if existing:
            return existing.experiment_id
        return client.create_experiment(name, artifact_location=(self.dir / "artifacts").as_uri())

    def run_training_job(self, spec: TrainingSpec) -> Job:
        """train.py in a subprocess, logging into a run made for the job beforehand, as Azure ML
        makes a job's run (MLFLOW_RUN_ID) with the tags the job was submitted with."""
        client = self._mlflow()
        experiment_id = self._experiment_id(client, spec.experiment)
        run_id = client.create_run(experiment_id, tags=lineage.spec_tags(spec)).info.run_id
        job_id = f"{spec.experiment}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job_dir = self.dir / "jobs" / job_id
        outputs = job_dir / "outputs"
        outputs.mkdir(parents=True)
        command = [
            sys.executable,
            str(Path(spec.code_dir) / "train.py"),
            "--data",
            spec.data_path,
            "--output",
            str(outputs),
            *(f"--{key.replace('_', '-')}={value}" for key, value in spec.params.items()),
        ]
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_EXPERIMENT_ID": experiment_id,
            "MLFLOW_RUN_ID": run_id,
            "PYTHONUNBUFFERED": "1",
        }
        log_path = job_dir / "job.log"
        with open(log_path, "wb") as log:
            code = subprocess.call(
                command, cwd=spec.code_dir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        status = "Completed" if code == 0 else "Failed"
        write_json(job_dir / "job.json", {"id": job_id, "run_id": run_id, "status": status})
        if code != 0:
            client.set_terminated(run_id, "FAILED")
            raise MlopsError(
                f"training job {job_id} failed (exit {code}); its log is {log_path}:\n"
                + processes.tail(log_path, 15)
            )
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> Job:
        data = read_json(self.dir / "jobs" / job_id / "job.json")
        if data is None:
            raise MlopsError(f"no job {job_id!r} in {self.env}")
        if data.get("status") != "Completed" or not data.get("run_id"):
            raise MlopsError(f"job {job_id} did not complete; it cannot be registered")
        tags = self._mlflow().get_run(data["run_id"]).data.tags
        return lineage.job_from_run_tags(job_id, data["run_id"], tags)

"""Batch endpoints on this machine: a deployment is a model folder, a job runs the entry script.

State lives under <env>/batch/<endpoint>/: endpoint.json (the default deployment and what
each deployment serves), deployments/<name>/ (the model files), jobs/<job>/ (outputs).
A job is `python src/model/batch_score.py` over a local file, the same script an Azure ML
batch deployment runs; its id is derived from the deployment and the input file, so
running the same file again resumes the interrupted job instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from mlops.backends.base import BatchEndpoint, BatchJob, Deployment, ModelVersion
from mlops.backends.local import state_files
from mlops.errors import MlopsError
from mlops.paths import MODEL_CODE
from mlops.state import read_checked, write_json

ENTRY_SCRIPT = MODEL_CODE / "batch_score.py"


class LocalBatch:
    """The batch part of LocalBackend (which provides dir, root and download_model)."""

    def _batch_dir(self, name: str) -> Path:
        return self.dir / "batch" / name

    def _batch_state(self, name: str) -> dict | None:
        return read_checked(self._batch_dir(name) / "endpoint.json", state_files.checked_batch)

    def _write_batch_state(self, name: str, state: dict) -> BatchEndpoint:
        write_json(self._batch_dir(name) / "endpoint.json", state)
        return self.get_batch_endpoint(name)

    def get_batch_endpoint(self, name: str) -> BatchEndpoint | None:
        state = self._batch_state(name)
        if state is None:
            return None
        deployments = {
            key: Deployment(key, info["model"], info["artifact_sha256"], "Succeeded")
            for key, info in state["deployments"].items()
        }
        return BatchEndpoint(name, state["default"], deployments)

    def create_batch_endpoint(self, name: str) -> BatchEndpoint:
        return self._write_batch_state(name, {"default": None, "deployments": {}})

    def create_batch_deployment(
        self, endpoint: str, deployment: str, model: ModelVersion
    ) -> Deployment:
        state = self._batch_state(endpoint)
        if state is None:
            raise MlopsError(f"no batch endpoint {endpoint} in {self.env}")
        folder = self._batch_dir(endpoint) / "deployments" / deployment
        shutil.rmtree(folder, ignore_errors=True)
        artifact = self.download_model(model, folder)
        state["deployments"][deployment] = {
            "model": model.ref,
            "artifact_sha256": model.artifact_sha256,
            "model_dir": str(artifact.parent),
        }
        self._write_batch_state(endpoint, state)
        return Deployment(deployment, model.ref, model.artifact_sha256, "Succeeded")

    def set_batch_default(self, endpoint: str, deployment: str) -> BatchEndpoint:
        state = self._batch_state(endpoint) or {"deployments": {}}
        if deployment not in state["deployments"]:
            raise MlopsError(f"batch endpoint {endpoint} has no deployment {deployment}")
        return self._write_batch_state(endpoint, {**state, "default": deployment})

    def invoke_batch(self, endpoint: str, source: str, deployment: str | None = None) -> BatchJob:
        state = self._batch_state(endpoint)
        chosen = deployment or (state or {}).get("default")
        if state is None or chosen not in state["deployments"]:
            raise MlopsError(f"batch endpoint {endpoint} has no deployment to run a job on")
        path = Path(source).resolve()
        if not path.is_file():
            raise MlopsError(f"{source} is not a file; the local backend scores local files")
        served = state["deployments"][chosen]
        stat = path.stat()
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{served['artifact_sha256']}"
        job_id = f"{chosen}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        output = self._batch_dir(endpoint) / "jobs" / job_id
        argv = [sys.executable, str(self.root / ENTRY_SCRIPT), "--model-dir", served["model_dir"]]
        argv += ["--model", served["model"], "--input", str(path), "--output", str(output)]
        # stderr stays on the terminal: the script's progress bar and its one-sentence refusals
        done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            return BatchJob(job_id, "Failed", chosen, str(output))
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        return BatchJob(
            job_id, "Completed", chosen, str(output), summary["rows"], summary["refused"]
        )

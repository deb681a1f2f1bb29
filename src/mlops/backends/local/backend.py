"""The local backend: the lifecycle on one machine, on the parts Azure ML itself uses.

State lives under MLOPS_HOME (default .mlops/):
    <env>/mlflow.db, <env>/artifacts/   MLflow tracking store and model registry
    <env>/jobs/<job>/                   training job outputs and log
    <env>/endpoints/<name>/             endpoint.json, router log, deployments/<name>/
    registry/<model>/<version>/         the shared registry: model files and meta.json
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

from mlops import lineage
from mlops.backends.base import (
    TAG_ARTIFACT,
    TAG_GIT,
    Deployment,
    DeploymentFailed,
    Endpoint,
    Job,
    ModelVersion,
    Response,
    TrainingSpec,
)
from mlops.backends.local import inference_server, processes
from mlops.backends.local.batch import LocalBatch
from mlops.backends.local.collected import CollectedJsonLines
from mlops.backends.local.router import DEPLOYMENT_HEADER
from mlops.config import EnvConfig
from mlops.errors import MlopsError
from mlops.paths import MODEL_CODE
from mlops.smoke import TRAFFIC_HEADER, traffic_kind
from mlops.state import StateUnreadable, locked, read_json, write_json

ONNX_FILE = lineage.ONNX_FILE
READY_TIMEOUT_S = float(os.environ.get("MLOPS_READY_TIMEOUT", "90"))


class LocalBackend(LocalBatch):
    def __init__(self, config: EnvConfig, root: Path, home: Path):
        self.config = config
        self.env = config.name
        self.root = root
        self.home = home
        self.dir = home / config.name
        self.registry = home / "registry"

    # ---- training ---------------------------------------------------------------

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
        run_id = client.create_run(experiment_id, tags={TAG_GIT: spec.git_commit}).info.run_id
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

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        if not self._has_store():
            return []
        client = self._mlflow()
        found = client.search_model_versions(f"name='{name}'")
        return [self._model_version(client, version) for version in found]

    def create_model_version(self, job: Job, name: str, tags: dict[str, str]) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        client = self._mlflow()
        with contextlib.suppress(MlflowException):  # already exists
            client.create_registered_model(name)
        run = client.get_run(job.run_id)
        created = client.create_model_version(
            name, f"{run.info.artifact_uri}/model", run_id=job.run_id, tags=tags
        )
        return self._model_version(client, created)

    def get_registered_model(self, name: str, version: int) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        if not self._has_store():
            return None
        client = self._mlflow()
        try:
            return self._model_version(client, client.get_model_version(name, str(version)))
        except MlflowException:
            return None

    def _model_version(self, client, version) -> ModelVersion:
        location = client.get_model_version_download_uri(version.name, version.version)
        return ModelVersion(
            name=version.name,
            version=int(version.version),
            tags=dict(version.tags),
            artifact_sha256=version.tags.get(TAG_ARTIFACT, ""),
            location=location.removeprefix("file://"),
        )

    # ---- the shared registry -------------------------------------------------------

    def share_model(self, model: ModelVersion) -> ModelVersion:
        source = Path(model.location)
        if lineage.sha256_of(source / ONNX_FILE) != model.artifact_sha256:
            raise MlopsError(
                f"{model.ref} in {self.env}: {ONNX_FILE} does not match its sha256 tag"
            )
        target = self.registry / model.name / str(model.version)
        staging = target.with_name(f".{target.name}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging / "model")
        write_json(staging / "meta.json", {**_as_meta(model), "shared_from": self.env})
        staging.rename(target)  # the version appears whole or not at all
        return self.get_shared_model(model.name, model.version)

    def get_shared_model(self, name: str, version: int) -> ModelVersion | None:
        folder = self.registry / name
        meta = read_json(folder / str(version) / "meta.json")
        if meta is None:
            return None
        return ModelVersion(
            name=meta["name"],
            version=meta["version"],
            tags=meta["tags"],
            artifact_sha256=meta["artifact_sha256"],
            location=str(folder / str(version) / "model"),
        )

    def download_model(self, model: ModelVersion, folder: Path) -> Path:
        target = folder / model.name / str(model.version)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model.location, target)
        return lineage.checked_artifact(target, model)

    # ---- online endpoints ----------------------------------------------------------

    def _endpoint_dir(self, name: str) -> Path:
        return self.dir / "endpoints" / name

    def _state_path(self, name: str) -> Path:
        return self._endpoint_dir(name) / "endpoint.json"

    def _router_marker(self, name: str) -> str:
        return str(self._state_path(name))

    def _lock(self, name: str):
        """Held for each read-change-write of the endpoint's state file."""
        return locked(self._endpoint_dir(name) / ".lock")

    def _read_state(self, name: str) -> dict | None:
        try:
            return read_json(self._state_path(name))
        except StateUnreadable as damaged:
            raise MlopsError(
                f"{self.env} endpoint {name}: {damaged}; `mlops down --env {self.env}` stops "
                "its processes and removes it, then `mlops deploy` starts it afresh"
            ) from None

    def _state(self, name: str) -> dict:
        state = self._read_state(name)
        if state is None:
            raise MlopsError(f"endpoint {name} does not exist in {self.env}; deploy first")
        return state

    def get_endpoint(self, name: str) -> Endpoint | None:
        state = self._read_state(name)
        if state is None:
            return None
        if not processes.alive(state.get("router_pid"), self._router_marker(name)):
            with self._lock(name):  # one command restarts it; the others find it running
                state = self._read_state(name)
                if state is None:
                    return None
                if not processes.alive(state.get("router_pid"), self._router_marker(name)):
                    state = self._start_router(name, state)  # e.g. after a reboot
        return _as_endpoint(state)

    def create_endpoint(self, name: str) -> Endpoint:
        with self._lock(name):
            state = self._read_state(name)
            if state is None:
                state = {"name": name, "traffic": {}, "mirror_traffic": {}, "deployments": {}}
            if not processes.alive(state.get("router_pid"), self._router_marker(name)):
                self._start_router(name, state)
        return self.get_endpoint(name)

    def _start_router(self, name: str, state: dict) -> dict:
        """Start the router on the endpoint's recorded port, so its URL stays the same."""
        recorded = state.get("port")
        state["port"] = recorded if _can_listen(recorded) else processes.free_port()
        state.setdefault("key", secrets.token_urlsafe(32))
        write_json(self._state_path(name), state)
        log_path = self._endpoint_dir(name) / "router.log"
        proc = processes.start(
            [sys.executable, "-m", "mlops.backends.local.router", str(self._state_path(name))],
            log_path,
            env=dict(os.environ),
            cwd=self.root,
            owner=self._endpoint_dir(name),
        )
        state["router_pid"] = proc.pid
        write_json(self._state_path(name), state)
        try:  # any HTTP answer will do: health says 503 until a deployment takes traffic
            processes.wait_ready(
                f"http://127.0.0.1:{state['port']}/", proc, log_path, 30, ready=lambda _: True
            )
        except DeploymentFailed as failure:
            raise MlopsError(
                f"endpoint {name}'s router did not start: {failure}\n{failure.logs}"
            ) from None
        return state

    def _change(self, endpoint: str, change) -> dict:
        """Apply change(state) to the endpoint's state file under its lock; return the state."""
        with self._lock(endpoint):
            state = self._state(endpoint)
            change(state)
            write_json(self._state_path(endpoint), state)
        return state

    def create_deployment(self, endpoint: str, deployment: str, model: ModelVersion) -> Deployment:
        folder = self._endpoint_dir(endpoint) / "deployments" / deployment
        processes.stop_owned(folder)  # a server left by an attempt that was killed mid-start
        shutil.rmtree(folder, ignore_errors=True)
        # Azure ML's layout: AZUREML_MODEL_DIR/<name>/<version>/<files>
        models = folder / "azureml-models"
        shutil.copytree(model.location, models / model.name / str(model.version))
        served = lineage.sha256_of(models / model.name / str(model.version) / ONNX_FILE)
        if served != model.artifact_sha256:
            raise DeploymentFailed(f"{model.ref}: copied {ONNX_FILE} does not match its sha256")
        record = {
            "status": "Creating",
            "pid": None,
            "port": None,
            "marker": str(models),
            "model": model.ref,
            "artifact_sha256": served,
            "folder": str(folder),
        }

        def save(state: dict) -> None:
            state["deployments"][deployment] = dict(record)
            state["traffic"].setdefault(deployment, 0)

        # Recorded before its process starts, so a command killed at any point leaves
        # nothing that `mlops down` or the next rollout does not know of.
        self._change(endpoint, save)
        code = inference_server.snapshot_code(self.root / MODEL_CODE, folder / "code")
        server, proc = inference_server.launch(
            code,
            "score.py",
            models,
            folder / "server.log",
            env={
                "SERVICE_NAME": f"{endpoint}/{deployment}",
                "MLOPS_COLLECT_DIR": str(self.dir / "collected"),  # inference data, for the monitor
                "MLOPS_DEPLOYMENT": f"{endpoint}/{deployment}",
                "MLOPS_MODEL": model.ref,
            },
        )
        record.update(pid=server.pid, port=server.port)
        self._change(endpoint, save)
        inference_server.wait(server, proc, folder / "server.log", READY_TIMEOUT_S)
        record["status"] = "Succeeded"
        self._change(endpoint, save)
        return Deployment(deployment, model.ref, served, "Succeeded")

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> Endpoint:
        def change(state: dict) -> None:
            unknown = set(traffic) - set(state["deployments"])
            if unknown:
                raise MlopsError(f"endpoint {endpoint} has no deployment {sorted(unknown)[0]!r}")
            state["traffic"] = {name: int(traffic.get(name, 0)) for name in state["deployments"]}

        self._change(endpoint, change)
        return self.get_endpoint(endpoint)

    def set_mirror(self, endpoint: str, mirror: dict[str, int]) -> Endpoint:
        def change(state: dict) -> None:
            state["mirror_traffic"] = {name: int(pct) for name, pct in mirror.items()}

        self._change(endpoint, change)
        return self.get_endpoint(endpoint)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        # Stop first, forget after: a command killed in between leaves a recorded deployment
        # with no process (reported as Failed, replaced by the next deploy), never a process
        # the state file no longer accounts for.
        folder = self._endpoint_dir(endpoint) / "deployments" / deployment
        record = ((self._read_state(endpoint) or {}).get("deployments") or {}).get(deployment)
        if record:
            processes.stop(record.get("pid"), record["marker"])
        processes.stop_owned(folder)  # workers, or a server whose pid was never recorded
        with self._lock(endpoint):
            state = self._read_state(endpoint) or {}
            if state.get("deployments", {}).pop(deployment, None):
                state["traffic"].pop(deployment, None)
                state.get("mirror_traffic", {}).pop(deployment, None)
                write_json(self._state_path(endpoint), state)
        self._keep_log(endpoint, deployment, folder)
        shutil.rmtree(folder, ignore_errors=True)

    def _keep_log(self, endpoint: str, deployment: str, folder: Path) -> None:
        log = folder / "server.log"
        if log.exists():
            kept = (
                self._endpoint_dir(endpoint)
                / "logs"
                / f"{deployment}-{time.strftime('%Y%m%d-%H%M%S')}.log"
            )
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(log, kept)

    def deployment_logs(self, endpoint: str, deployment: str, lines: int = 80) -> str:
        log = self._endpoint_dir(endpoint) / "deployments" / deployment / "server.log"
        return processes.tail(log, lines)

    def invoke(self, endpoint: str, body: bytes, deployment: str | None = None) -> Response:
        url, headers = self.scoring_target(endpoint)
        headers["Content-Type"] = "application/json"
        headers[TRAFFIC_HEADER] = traffic_kind.get()
        if deployment:
            headers[DEPLOYMENT_HEADER] = deployment
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return Response(reply.status, reply.read(), reply.headers.get(DEPLOYMENT_HEADER))
        except urllib.error.HTTPError as reply:
            return Response(reply.code, reply.read(), reply.headers.get(DEPLOYMENT_HEADER))
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            return Response(0, str(exc).encode())

    def serving_instances(self) -> int:
        return 1  # one server process per deployment, whatever instance_count says

    def scoring_target(self, endpoint: str) -> tuple[str, dict[str, str]]:
        state = self._state(endpoint)
        return f"http://127.0.0.1:{state['port']}/score", {
            "Authorization": f"Bearer {state.get('key', '')}"
        }

    def collected_rows(
        self, endpoint: str, model: str | None = None, since: datetime | None = None
    ) -> CollectedJsonLines:
        """Live rows, oldest first; an unreadable line yields {} so the monitor can count it.
        Also readable as batches of columns (the monitor's fast path)."""
        paths = [
            path
            for path in sorted((self.dir / "collected").glob("inference-*.jsonl"))
            # one file per UTC day: older days hold nothing in the window
            if not since or path.stem.removeprefix("inference-") >= f"{since:%Y%m%d}"
        ]
        return CollectedJsonLines(paths, endpoint, model, since)

    def list_endpoints(self) -> list[Endpoint]:
        """Every endpoint with a state file or a running process, damaged ones included."""
        found = []
        for folder in sorted((self.dir / "endpoints").glob("*")):
            if not folder.is_dir():
                continue
            if not self._state_path(folder.name).exists() and not processes.owned_by(folder):
                continue
            try:
                endpoint = self.get_endpoint(folder.name)
            except MlopsError as damaged:
                print(f"warning: {damaged}", file=sys.stderr)
                endpoint = None
            found.append(endpoint or Endpoint(folder.name, "", {}, {}))
        return found

    def delete_endpoint(self, name: str) -> None:
        """Stop every process the endpoint started, whatever its state file says."""
        folder = self._endpoint_dir(name)
        with self._lock(name):
            processes.stop_owned(folder)
            for deployment in sorted((folder / "deployments").glob("*")):
                self._keep_log(name, deployment.name, deployment)
                shutil.rmtree(deployment, ignore_errors=True)
            self._state_path(name).unlink(missing_ok=True)


def _as_meta(model: ModelVersion) -> dict:
    return {
        "name": model.name,
        "version": model.version,
        "tags": model.tags,
        "artifact_sha256": model.artifact_sha256,
    }


def _as_endpoint(state: dict) -> Endpoint:
    deployments = {
        name: Deployment(name, record["model"], record["artifact_sha256"], _state_of(record))
        for name, record in state["deployments"].items()
    }
    return Endpoint(
        name=state["name"],
        scoring_uri=f"http://127.0.0.1:{state['port']}/score",
        traffic=dict(state["traffic"]),
        deployments=deployments,
        mirror_traffic=dict(state.get("mirror_traffic", {})),
    )


def _state_of(record: dict) -> str:
    """Azure ML's provisioning states: a deployment whose process is gone has Failed."""
    if not processes.alive(record.get("pid"), record["marker"]):
        return "Failed"
    return record.get("status", "Succeeded")


def _can_listen(port: int | None) -> bool:
    if not port:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

"""The local backend: the lifecycle on one machine, on the parts Azure ML itself uses.

State lives under MLOPS_HOME (default .mlops/):
    <env>/mlflow.db, <env>/artifacts/   MLflow tracking store and model registry
    <env>/jobs/<job>/                   training job outputs and log
    <env>/endpoints/<name>/             endpoint.json, router log, deployments/<name>/
    registry/<model>/<version>/         the shared registry: model files and meta.json
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from mlops import lineage
from mlops.backends.base import (
    TAG_ARTIFACT,
    Deployment,
    DeploymentFailed,
    Endpoint,
    Job,
    ModelVersion,
    Response,
    TrainingSpec,
)
from mlops.backends.local import inference_server, processes
from mlops.backends.local.router import DEPLOYMENT_HEADER
from mlops.backends.local.state import locked, read_json, write_json
from mlops.config import EnvConfig
from mlops.errors import MlopsError

ONNX_FILE = "model.onnx"
READY_TIMEOUT_S = float(os.environ.get("MLOPS_READY_TIMEOUT", "90"))


class LocalBackend:
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

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.dir / 'mlflow.db'}"

    def _experiment_id(self, client, name: str) -> str:
        existing = client.get_experiment_by_name(name)
        if existing:
            return existing.experiment_id
        return client.create_experiment(name, artifact_location=(self.dir / "artifacts").as_uri())

    def run_training_job(self, spec: TrainingSpec) -> Job:
        client = self._mlflow()
        experiment_id = self._experiment_id(client, spec.experiment)
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
            "PYTHONUNBUFFERED": "1",
        }
        log_path = job_dir / "job.log"
        with open(log_path, "wb") as log:
            code = subprocess.call(
                command, cwd=spec.code_dir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        summary = read_json(outputs / "training.json")
        if code != 0 or summary is None:
            write_json(job_dir / "job.json", {"id": job_id, "status": "Failed"})
            raise MlopsError(
                f"training job {job_id} failed (exit {code}); its log is {log_path}:\n"
                + processes.tail(log_path, 15)
            )
        job = Job(
            id=job_id,
            status="Completed",
            run_id=summary["run_id"],
            metrics=summary["metrics"],
            params=summary["params"],
            data_sha256=summary["data_sha256"],
            artifact_sha256=summary["onnx_sha256"],
            git_commit=spec.git_commit,
        )
        write_json(job_dir / "job.json", job.__dict__)
        return job

    def get_job(self, job_id: str) -> Job:
        data = read_json(self.dir / "jobs" / job_id / "job.json")
        if data is None:
            raise MlopsError(f"no job {job_id!r} in {self.env}")
        if data.get("status") != "Completed":
            raise MlopsError(f"job {job_id} did not complete; it cannot be registered")
        return Job(**data)

    def register_model(
        self, job: Job, name: str, tags: dict[str, str]
    ) -> tuple[ModelVersion, bool]:
        from mlflow.exceptions import MlflowException

        client = self._mlflow()
        with contextlib.suppress(MlflowException):  # already exists
            client.create_registered_model(name)
        for existing in client.search_model_versions(f"name='{name}'"):
            if existing.tags.get(TAG_ARTIFACT) == job.artifact_sha256:
                return self._model_version(client, existing), False
        run = client.get_run(job.run_id)
        created = client.create_model_version(
            name, f"{run.info.artifact_uri}/model", run_id=job.run_id, tags=tags
        )
        return self._model_version(client, created), True

    def get_registered_model(self, name: str, version: int | str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        client = self._mlflow()
        try:
            if version == "latest":
                versions = client.search_model_versions(f"name='{name}'")
                return (
                    self._model_version(client, max(versions, key=lambda v: int(v.version)))
                    if versions
                    else None
                )
            return self._model_version(client, client.get_model_version(name, str(version)))
        except MlflowException:
            return None

    def _model_version(self, client, version) -> ModelVersion:
        location = client.get_model_version_download_uri(version.name, version.version)
        return ModelVersion(
            name=version.name,
            version=int(version.version),
            tags=dict(version.tags),
            artifact_sha256=version.tags[TAG_ARTIFACT],
            location=location.removeprefix("file://"),
        )

    # ---- the shared registry -------------------------------------------------------

    def share_model(self, model: ModelVersion) -> tuple[ModelVersion, bool]:
        existing = self.get_shared_model(model.name, model.version)
        if existing:
            if existing.artifact_sha256 != model.artifact_sha256:
                raise MlopsError(
                    f"the registry already holds {model.ref} with other bytes "
                    f"(sha256 {existing.artifact_sha256[:12]}…); refusing to overwrite it"
                )
            return existing, False
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
        return self.get_shared_model(model.name, model.version), True

    def get_shared_model(self, name: str, version: int | str) -> ModelVersion | None:
        folder = self.registry / name
        if version == "latest":
            versions = [int(p.name) for p in folder.glob("*") if p.name.isdigit()]
            if not versions:
                return None
            version = max(versions)
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

    def get_endpoint(self, name: str) -> Endpoint | None:
        state = read_json(self._state_path(name))
        if state is None:
            return None
        if not processes.alive(state.get("router_pid"), self._router_marker(name)):
            state = self._start_router(name, state)  # e.g. after a reboot
        return _as_endpoint(state, self._deployment_alive(name, state))

    def _deployment_alive(self, endpoint: str, state: dict):
        def check(deployment: str) -> bool:
            record = state["deployments"][deployment]
            return processes.alive(record.get("pid"), record["marker"])

        return check

    def create_endpoint(self, name: str) -> Endpoint:
        with locked(self._endpoint_dir(name) / ".lock"):
            state = read_json(self._state_path(name))
            if state is None:
                state = {"name": name, "traffic": {}, "mirror_traffic": {}, "deployments": {}}
            self._start_router(name, state)
        return self.get_endpoint(name)

    def _start_router(self, name: str, state: dict) -> dict:
        state["port"] = processes.free_port()
        write_json(self._state_path(name), state)
        log_path = self._endpoint_dir(name) / "router.log"
        proc = processes.start(
            [sys.executable, "-m", "mlops.backends.local.router", str(self._state_path(name))],
            log_path,
            env=dict(os.environ),
            cwd=self.root,
        )
        state["router_pid"] = proc.pid
        write_json(self._state_path(name), state)
        try:
            processes.wait_ready(f"http://127.0.0.1:{state['port']}/", proc, log_path, 30)
        except DeploymentFailed as failure:
            raise MlopsError(
                f"endpoint {name}'s router did not start: {failure}\n{failure.logs}"
            ) from None
        return state

    def create_deployment(self, endpoint: str, deployment: str, model: ModelVersion) -> Deployment:
        folder = self._endpoint_dir(endpoint) / "deployments" / deployment
        shutil.rmtree(folder, ignore_errors=True)
        # Azure ML's layout: AZUREML_MODEL_DIR/<name>/<version>/<files>
        models = folder / "azureml-models"
        shutil.copytree(model.location, models / model.name / str(model.version))
        served = lineage.sha256_of(models / model.name / str(model.version) / ONNX_FILE)
        if served != model.artifact_sha256:
            raise DeploymentFailed(f"{model.ref}: copied {ONNX_FILE} does not match its sha256")
        server = inference_server.start(
            inference_server.snapshot_code(self.root / "src" / "model", folder / "code"),
            "score.py",
            models,
            folder / "server.log",
            READY_TIMEOUT_S,
            env={
                "SERVICE_NAME": f"{endpoint}/{deployment}",
                "MLOPS_COLLECT_DIR": str(self.dir / "collected"),  # inference data, for the monitor
                "MLOPS_DEPLOYMENT": f"{endpoint}/{deployment}",
                "MLOPS_MODEL": model.ref,
            },
        )
        record = {
            "port": server.port,
            "pid": server.pid,
            "marker": server.marker,
            "model": model.ref,
            "artifact_sha256": served,
            "folder": str(folder),
        }
        with locked(self._endpoint_dir(endpoint) / ".lock"):
            state = read_json(self._state_path(endpoint))
            state["deployments"][deployment] = record
            state["traffic"].setdefault(deployment, 0)
            write_json(self._state_path(endpoint), state)
        return Deployment(deployment, model.ref, served, "Succeeded")

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> Endpoint:
        with locked(self._endpoint_dir(endpoint) / ".lock"):
            state = read_json(self._state_path(endpoint))
            unknown = set(traffic) - set(state["deployments"])
            if unknown:
                raise MlopsError(f"endpoint {endpoint} has no deployment {sorted(unknown)[0]!r}")
            state["traffic"] = {name: int(traffic.get(name, 0)) for name in state["deployments"]}
            write_json(self._state_path(endpoint), state)
        return self.get_endpoint(endpoint)

    def set_mirror(self, endpoint: str, mirror: dict[str, int]) -> Endpoint:
        with locked(self._endpoint_dir(endpoint) / ".lock"):
            state = read_json(self._state_path(endpoint))
            state["mirror_traffic"] = {name: int(pct) for name, pct in mirror.items()}
            write_json(self._state_path(endpoint), state)
        return self.get_endpoint(endpoint)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        with locked(self._endpoint_dir(endpoint) / ".lock"):
            state = read_json(self._state_path(endpoint)) or {}
            record = state.get("deployments", {}).pop(deployment, None)
            if record:
                state["traffic"].pop(deployment, None)
                state["mirror_traffic"].pop(deployment, None)
                write_json(self._state_path(endpoint), state)
        folder = self._endpoint_dir(endpoint) / "deployments" / deployment
        if record:
            processes.stop(record.get("pid"), record["marker"])
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
        state = read_json(self._state_path(endpoint))
        if state is None:
            raise MlopsError(f"endpoint {endpoint} does not exist in {self.env}; deploy first")
        return f"http://127.0.0.1:{state['port']}/score", {}

    def collected_rows(self, endpoint: str) -> Iterator[dict[str, float]]:
        for path in sorted((self.dir / "collected").glob("inference-*.jsonl")):
            with open(path) as handle:
                for line in handle:
                    if line.strip():
                        yield from json.loads(line)["inputs"]

    def list_endpoints(self) -> list[Endpoint]:
        found = []
        for path in sorted((self.dir / "endpoints").glob("*/endpoint.json")):
            endpoint = self.get_endpoint(path.parent.name)
            if endpoint:
                found.append(endpoint)
        return found

    def delete_endpoint(self, name: str) -> None:
        state = read_json(self._state_path(name))
        if state is None:
            return
        for deployment in list(state["deployments"]):
            self.delete_deployment(name, deployment)
        processes.stop(state.get("router_pid"), self._router_marker(name))
        self._state_path(name).unlink(missing_ok=True)


def _as_meta(model: ModelVersion) -> dict:
    return {
        "name": model.name,
        "version": model.version,
        "tags": model.tags,
        "artifact_sha256": model.artifact_sha256,
    }


def _as_endpoint(state: dict, alive) -> Endpoint:
    deployments = {
        name: Deployment(
            name,
            record["model"],
            record["artifact_sha256"],
            "Succeeded" if alive(name) else "Failed",
        )
        for name, record in state["deployments"].items()
    }
    return Endpoint(
        name=state["name"],
        scoring_uri=f"http://127.0.0.1:{state['port']}/score",
        traffic=dict(state["traffic"]),
        deployments=deployments,
        mirror_traffic=dict(state.get("mirror_traffic", {})),
    )

"""Online endpoints on this machine: a router process per endpoint, a server per deployment.

State lives under <env>/endpoints/<name>/: endpoint.json (port, key, traffic and each
deployment's process), router.log, deployments/<name>/ (the model, code snapshot and server
log) and logs/ (the logs of deployments since deleted).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, replace
from pathlib import Path

from mlops import clock, lineage
from mlops.backends.base import (
    Deployment,
    DeploymentFailed,
    Endpoint,
    EndpointStats,
    ModelVersion,
    Response,
)
from mlops.backends.local import inference_server, processes, state_files
from mlops.backends.local.router import DEPLOYMENT_HEADER, STATS_ROUTE
from mlops.backends.local.server_settings import INTERNAL_TOKEN_HEADER
from mlops.config import Autoscale
from mlops.errors import MlopsError
from mlops.lineage import ONNX_FILE
from mlops.paths import MODEL_CODE
from mlops.smoke import TRAFFIC_HEADER, traffic_kind
from mlops.state import StateUnreadable, locked, read_checked, write_json

ROUTER_MODULE = "mlops.backends.local.router"
READY_TIMEOUT_S = float(os.environ.get("MLOPS_READY_TIMEOUT", "90"))


class LocalOnline:
    """The online endpoint part of LocalBackend (which provides dir, env and root)."""

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
            return read_checked(self._state_path(name), state_files.checked)
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
                state = self._ensure_router(name, state)
        return _as_endpoint(state)

    def create_endpoint(self, name: str) -> Endpoint:
        with self._lock(name):
            state = self._read_state(name)
            if state is None:
                state = {"name": name, "traffic": {}, "mirror_traffic": {}, "deployments": {}}
            self._ensure_router(name, state)
        return self.get_endpoint(name)

    def _ensure_router(self, name: str, state: dict) -> dict:
        """The endpoint's one router, running (called under the endpoint's lock).

        A router is found by what it carries (its owner variable and the state file on its
        command line), not by the pid the file records: a wrong or stale router_pid is
        corrected, never answered with a second router on another port."""
        if processes.alive(state.get("router_pid"), self._router_marker(name)):
            return state
        running = [
            process
            for process in processes.owned_by(self._endpoint_dir(name))
            if ROUTER_MODULE in processes.command_line(process)
            and self._router_marker(name) in processes.command_line(process)
        ]
        if not running:
            return self._start_router(name, state)  # e.g. after a reboot, or a kill
        for extra in running[1:]:  # left by an older version: one router per endpoint
            processes.stop(extra.pid, self._router_marker(name))
        state["router_pid"] = running[0].pid
        write_json(self._state_path(name), state)
        return state

    def _start_router(self, name: str, state: dict) -> dict:
        """Start the router on the endpoint's recorded port, so its URL stays the same."""
        recorded = state.get("port")
        state["port"] = recorded if _can_listen(recorded) else processes.free_port()
        state["key"] = state.get("key") or secrets.token_urlsafe(32)
        state["internal_token"] = state.get("internal_token") or secrets.token_urlsafe(32)
        write_json(self._state_path(name), state)
        log_path = self._endpoint_dir(name) / "router.log"
        proc = processes.start(
            [sys.executable, "-m", ROUTER_MODULE, str(self._state_path(name))],
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
        inference_server.snapshot_code(self.root / MODEL_CODE, folder / "code")
        server, proc = self._launch(endpoint, deployment, record, inference_server.instance_log(0))
        record.update(pid=server.pid, port=server.port)
        self._change(endpoint, save)
        inference_server.wait(server, proc, folder / "server.log", READY_TIMEOUT_S)
        record["status"] = "Succeeded"
        self._change(endpoint, save)
        return Deployment(deployment, model.ref, served, "Succeeded")

    def _launch(self, endpoint: str, deployment: str, record: dict, log: str):
        """Start one server instance of a deployment (not ready yet: see inference_server.wait)."""
        token = self._state(endpoint).get("internal_token")
        return inference_server.launch_deployment(
            record, log, endpoint, deployment, self.dir / "collected", token
        )

    def set_autoscale(self, endpoint: str, deployment: str, autoscale: Autoscale) -> None:
        """Scale the deployment to its floor: min_instances server processes behind the router,
        which spreads requests over them. The ceiling and the CPU target are recorded and
        shown, not acted on: nothing here adds instances under load."""
        record = self._state(endpoint)["deployments"].get(deployment)
        if record is None:
            raise DeploymentFailed(f"endpoint {endpoint} has no deployment {deployment!r}")
        replicas = list(record.get("replicas", []))
        started = []
        for number in range(len(replicas) + 1, autoscale.min_instances):
            log = inference_server.instance_log(number)
            server, proc = self._launch(endpoint, deployment, record, log)
            replicas.append({"pid": server.pid, "port": server.port})
            started.append((server, proc, log))

        def change(state: dict) -> None:
            if deployment not in state["deployments"]:
                raise DeploymentFailed(f"endpoint {endpoint} has no deployment {deployment!r}")
            state["deployments"][deployment]["replicas"] = replicas
            state["deployments"][deployment]["autoscale"] = asdict(autoscale)

        # recorded before waiting, so `mlops down` knows of each process whatever happens next
        self._change(endpoint, change)
        folder = Path(record["folder"])
        for server, proc, log in started:
            inference_server.wait(server, proc, folder / log, READY_TIMEOUT_S)

    def remove_autoscale(self, endpoint: str, deployment: str) -> None:
        def change(state: dict) -> None:
            state["deployments"].get(deployment, {}).pop("autoscale", None)

        if self._read_state(endpoint) is not None:
            self._change(endpoint, change)

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
        with self._lock(endpoint):  # marked first: the router's supervisor restarts it no more
            state = self._read_state(endpoint) or {}
            record = state.get("deployments", {}).get(deployment)
            if record:
                record["status"] = "Deleting"
                write_json(self._state_path(endpoint), state)
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
        """Move its servers' logs (server.log, and server-N.log of the instances beyond the
        first) under logs/, named by the deployment and the time."""
        stamp = clock.stamp()
        for log in sorted(folder.glob("server*.log")):
            instance = log.stem.removeprefix("server")  # "" or "-N"
            kept = self._endpoint_dir(endpoint) / "logs" / f"{deployment}-{stamp}{instance}.log"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(log, kept)

    def deployment_logs(self, endpoint: str, deployment: str, lines: int = 80) -> str:
        log = self._endpoint_dir(endpoint) / "deployments" / deployment / "server.log"
        return processes.tail(log, lines)

    def invoke(self, endpoint: str, body: bytes, deployment: str | None = None) -> Response:
        url, headers = self.scoring_target(endpoint)
        headers["Content-Type"] = "application/json"
        headers[TRAFFIC_HEADER] = traffic_kind.get()
        headers.update(self.owner_headers(endpoint))
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
        """The server processes of the environment's live deployment (its autoscale floor)."""
        state = self._read_state(self.config.endpoint_name) or {}
        serving = {name: pct for name, pct in state.get("traffic", {}).items() if pct > 0}
        if not serving:
            return 1
        live = state["deployments"].get(max(serving, key=serving.get), {})
        return 1 + len(live.get("replicas", []))

    def endpoint_stats(self, endpoint: str) -> EndpointStats | None:
        """What the endpoint's router measured (None when it does not answer)."""
        url, headers = self.scoring_target(endpoint)
        request = urllib.request.Request(url.removesuffix("/score") + STATS_ROUTE, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=2) as reply:
                return EndpointStats(**json.load(reply))
        except (OSError, ValueError, TypeError):
            return None

    def scoring_target(self, endpoint: str) -> tuple[str, dict[str, str]]:
        state = self._state(endpoint)
        return f"http://127.0.0.1:{state['port']}/score", {
            "Authorization": f"Bearer {state.get('key', '')}"
        }

    def owner_headers(self, endpoint: str) -> dict[str, str]:
        """The endpoint's internal token, read from its state as its owner: the router honours
        a smoke or probe mark only with it. Never part of scoring_target, so never a client's."""
        return {INTERNAL_TOKEN_HEADER: str(self._state(endpoint).get("internal_token") or "")}

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
            if endpoint is None:
                found.append(Endpoint(folder.name, "", {}, {}))
            else:
                found.append(replace(endpoint, stats=self.endpoint_stats(endpoint.name)))
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


def _as_endpoint(state: dict) -> Endpoint:
    deployments = {
        name: Deployment(
            name,
            record["model"],
            record["artifact_sha256"],
            _state_of(record),
            Autoscale(**record["autoscale"]) if record.get("autoscale") else None,
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


def _state_of(record: dict) -> str:
    """Azure ML's provisioning states: a deployment with a server process gone has Failed."""
    pids = [record.get("pid")] + [r.get("pid") for r in record.get("replicas", [])]
    if not all(processes.alive(pid, record["marker"]) for pid in pids):
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

"""The Azure ML inference server (`azmlinfsrv`) on loopback, over a snapshot of src/model.

Used by the local backend for every deployment and by benchmarks/ for its variants.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlops.backends.base import DeploymentFailed
from mlops.backends.local import processes, server_settings

CODE_FILES = ("*.py", "swagger*.json", "sample-request.json")
SETTINGS_MODULE = "mlops.backends.local.server_settings"


@dataclass(frozen=True)
class Server:
    pid: int
    port: int
    marker: str  # on the server's command line, so a recycled pid is never taken for it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/score"


def snapshot_code(source: Path, target: Path, extra: Path | None = None) -> Path:
    """Copy the model code as Azure ML uploads code_configuration; later edits do not leak in."""
    target.mkdir(parents=True)
    for pattern in CODE_FILES:
        for file in source.glob(pattern):
            shutil.copy2(file, target / file.name)
    if extra is not None:
        shutil.copy2(extra, target / extra.name)
    return target


def launch(
    code: Path,
    entry: str,
    model_dir: Path,
    log_path: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> tuple[Server, subprocess.Popen]:
    """Start the server on port (default: a free loopback port); it is not ready yet (see
    wait)."""
    port = port or processes.free_port()
    full_env = {
        **os.environ,
        "AZUREML_MODEL_DIR": str(model_dir),
        "AML_APP_ROOT": str(code),
        "AZUREML_ENTRY_SCRIPT": entry,
        "GUNICORN_CMD_ARGS": f"-c python:{SETTINGS_MODULE}",
        "WORKER_TIMEOUT": "60",  # azmlinfsrv's default is 300 s
        **(env or {}),
    }
    command = [
        str(Path(sys.executable).with_name("azmlinfsrv")),
        "--entry_script",
        entry,
        "--port",
        str(port),
        "--model_dir",
        str(model_dir),
    ]
    proc = processes.start(command, log_path, env=full_env, cwd=code)
    return Server(proc.pid, port, str(model_dir)), proc


def launch_deployment(
    record: dict,
    log: str,
    endpoint: str,
    deployment: str,
    collect_dir: Path,
    token: str | None,
    port: int | None = None,
) -> tuple[Server, subprocess.Popen]:
    """Start one server instance of a local endpoint's deployment, as its state record
    describes it (folder, model): by the backend when it creates or scales the deployment, and
    by the endpoint's router when it restarts a dead instance on its port."""
    folder = Path(record["folder"])
    return launch(
        folder / "code",
        "score.py",
        Path(record["marker"]),
        folder / log,
        env={
            "SERVICE_NAME": f"{endpoint}/{deployment}",
            "MLOPS_COLLECT_DIR": str(collect_dir),  # inference data, for the monitor
            "MLOPS_DEPLOYMENT": f"{endpoint}/{deployment}",
            "MLOPS_MODEL": record["model"],
            **({server_settings.INTERNAL_TOKEN_VARIABLE: token} if token else {}),
        },
        port=port,
    )


def instance_log(number: int) -> str:
    """The log of a deployment's instance: server.log for the first (0), server-N.log for
    the N-th."""
    return "server.log" if number == 0 else f"server-{number + 1}.log"


def wait(server: Server, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Wait until the server answers; stop it again if it never does."""
    try:
        processes.wait_ready(f"http://127.0.0.1:{server.port}/", proc, log_path, timeout)
    except DeploymentFailed:
        processes.stop(server.pid, server.marker)
        raise


def start(
    code: Path,
    entry: str,
    model_dir: Path,
    log_path: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> Server:
    """Start the server and wait until it answers; stop it again if it never does."""
    server, proc = launch(code, entry, model_dir, log_path, env)
    wait(server, proc, log_path, timeout)
    return server

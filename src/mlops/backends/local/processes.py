"""Start, probe and stop the server processes behind local endpoints."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from mlops.backends.base import DeploymentFailed

OWNER_VARIABLE = "MLOPS_OWNER"  # inherited by every child, so a worker is found with its master


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(
    command: Sequence[str],
    log_path: Path,
    env: dict[str, str],
    cwd: Path,
    owner: Path | None = None,
) -> subprocess.Popen:
    """Start a detached process group writing to log_path, marked as owner's (default: the
    log's folder)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env={**env, OWNER_VARIABLE: str(owner or log_path.parent)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so stop() reaches gunicorn's workers too
        )
    return proc


def alive(pid: int | None, marker: str) -> bool:
    """True if pid runs and its command line holds marker (a recycled pid is not ours)."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and marker in " ".join(process.cmdline())
    except psutil.Error:
        return False


def owned_by(folder: Path) -> list[psutil.Process]:
    """Every running process started for folder or anything beneath it, workers included.

    Found by what we put on them (the owner variable, paths on the command line), so
    this holds even when no state file remembers them."""
    root = str(folder)
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if process.pid == os.getpid():
            continue
        try:
            owner = process.environ().get(OWNER_VARIABLE, "")
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if _within(owner, root) or f"{root}{os.sep}" in cmdline:
            found.append(process)
    return found


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def stop_owned(folder: Path, grace: float = 10.0) -> int:
    """Stop every process owned by folder (see owned_by); return how many there were."""
    processes = owned_by(folder)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, lingering = psutil.wait_procs(processes, timeout=grace)
    for process in lingering:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(lingering, timeout=grace)
    for process in processes:
        _reap(process.pid)
    return len(processes)


def stop(pid: int | None, marker: str, grace: float = 10.0) -> None:
    """Terminate the process group, then kill it if it lingers; reap it if it is our child."""
    if not alive(pid, marker):
        _reap(pid)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid, marker):
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.waitpid(pid, os.WNOHANG)


def wait_ready(
    url: str,
    proc: subprocess.Popen,
    log_path: Path,
    timeout: float,
    ready: Callable[[int], bool] = lambda status: status == 200,
) -> None:
    """Poll url until its status is ready (default: 200); fail early if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeploymentFailed("the server process exited during start-up", tail(log_path))
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if ready(response.status):
                    return
        except urllib.error.HTTPError as answer:
            if ready(answer.code):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise DeploymentFailed(
        f"the server did not answer {url} within {timeout:.0f} s", tail(log_path)
    )


def tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"

"""Start, probe and stop the server processes behind local endpoints."""

from __future__ import annotations

import contextlib
import os
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
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env={**env, OWNER_VARIABLE: str(owner or log_path.parent)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so stop() reaches gunicorn's workers too
            umask=0o077,  # what it writes (logs, collected inputs) is this user's only
        )
    finally:
        os.close(log)
    return proc


def find(pid: int | None, marker: str) -> psutil.Process | None:
    """The running process with this pid whose command line holds marker, or None.

    The marker proves identity: a recycled pid runs another command line. The returned
    handle also remembers the process's start time, and psutil refuses to signal a pid
    that has since been reused, so stopping through it cannot hit a stranger."""
    if not pid:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or marker not in " ".join(process.cmdline()):
            return None
    except psutil.Error:
        return None
    return process


def command_line(process: psutil.Process) -> str:
    """The process's command line as one string ("" once it is gone or out of reach)."""
    return " ".join(_quietly(process.cmdline, []))


def alive(pid: int | None, marker: str) -> bool:
    """True if pid runs and its command line holds marker (a recycled pid is not ours)."""
    return find(pid, marker) is not None


def owned_by(folder: Path) -> list[psutil.Process]:
    """Every running process started for folder or anything beneath it, workers included.

    Found by the owner variable we put on them, so this holds even when no state file
    remembers them. A process that merely names a path beneath folder (a `tail -f` of a log,
    an editor on endpoint.json) is not ours: the command line counts only where the
    environment cannot be read."""
    root = str(folder)
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if process.pid == os.getpid():
            continue
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        owner = _quietly(lambda p=process: p.environ().get(OWNER_VARIABLE, ""), None)
        # macOS may deny reading a process's environment: there the command line must do
        if _within(owner, root) if owner is not None else f"{root}{os.sep}" in cmdline:
            found.append(process)
    return found


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def stop_owned(folder: Path, grace: float = 10.0) -> int:
    """Stop every process owned by folder (see owned_by); return how many there were."""
    processes = owned_by(folder)
    _terminate(processes, grace)
    return len(processes)


def stop(pid: int | None, marker: str, grace: float = 10.0) -> None:
    """Stop the process started as pid and every process of its group (gunicorn's workers):
    terminate, wait at most grace seconds, then kill what lingers. Reaps it if it is our
    child."""
    leader = find(pid, marker)
    if leader is None:
        _reap(pid)
        return
    _terminate([leader, *_group_of(leader)], grace)


def _group_of(leader: psutil.Process) -> list[psutil.Process]:
    """The leader's descendants, and on POSIX every other member of its process group
    (start() makes one per server), such as a worker whose parent already died."""
    members = {p.pid: p for p in _quietly(lambda: leader.children(recursive=True), [])}
    if hasattr(os, "getpgid"):
        for process in psutil.process_iter():
            if (
                process.pid != leader.pid
                and _quietly(lambda p=process: os.getpgid(p.pid), 0) == leader.pid
            ):
                members.setdefault(process.pid, process)
    return list(members.values())


def _terminate(processes: list[psutil.Process], grace: float) -> None:
    """SIGTERM (TerminateProcess on Windows), a bounded wait, then a kill for what lingers."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    lingering = _wait_ended(processes, grace)
    for process in lingering:
        with contextlib.suppress(psutil.Error):
            process.kill()
    _wait_ended(lingering, grace)
    for process in processes:
        _reap(process.pid)


def _wait_ended(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait at most timeout seconds for the processes to end; return those still running.
    A zombie has ended: an orphaned worker waits for whoever is pid 1 to reap it, which in a
    container can take a second or more (psutil.wait_procs would wait for that too)."""
    deadline = time.monotonic() + timeout
    while True:
        running = [process for process in processes if not _ended(process)]
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.02)


def _ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # out of reach (another user's): only its disappearance tells
        return not process.is_running()


def _quietly(call, default):
    """call(), or default when the process it asks about is gone or out of reach."""
    try:
        return call()
    except (psutil.Error, OSError):
        return default


def _reap(pid: int | None) -> None:
    if pid and hasattr(os, "WNOHANG"):
        with contextlib.suppress(ChildProcessError, ProcessLookupError, OSError):
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

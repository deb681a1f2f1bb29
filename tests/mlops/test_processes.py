"""The processes behind local endpoints are found by identity and stopped with their group.

Real processes, started the way the local backend starts its servers: a leader in
its own session with a worker beneath it."""

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from mlops.backends.local import processes

# A leader that starts a worker (same process group) and writes the worker's pid, then idles;
# with "stubborn" both ignore SIGTERM, as a hung server would.
LEADER = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    if sys.argv[2] == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    worker = subprocess.Popen([sys.executable, "-c", sys.argv[3]])
    open(sys.argv[1], "w").write(str(worker.pid))
    time.sleep(120)
    """
)
WORKER = "import signal, sys, time\nif {stubborn}: signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(120)"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals in the fixture")


@pytest.fixture
def server(tmp_path):
    """Start a leader and its worker; yield a start function; stop whatever is left."""
    started = []

    def start(marker: str, stubborn: bool = False):
        pid_file = tmp_path / f"{marker}.pid"
        worker = WORKER.format(stubborn=stubborn)
        mode = "stubborn" if stubborn else "polite"
        proc = processes.start(
            [sys.executable, "-c", LEADER, str(pid_file), mode, worker, marker],
            tmp_path / marker / "server.log",
            env=dict(os.environ),
            cwd=tmp_path,
        )
        started.append(proc)
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline, "the leader never started its worker"
            time.sleep(0.05)
        return proc, int(pid_file.read_text())

    yield start
    processes.stop_owned(tmp_path, grace=1)  # every test's processes are owned beneath it
    for proc in started:
        proc.kill()
        proc.wait(5)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_process_is_ours_only_while_its_command_line_holds_the_marker(server):
    proc, _ = server("marker-a")
    assert processes.alive(proc.pid, "marker-a")
    assert not processes.alive(proc.pid, "marker-b")  # a recycled pid runs another command
    assert not processes.alive(None, "marker-a")


def test_stop_ends_the_leader_and_its_worker(server):
    proc, worker = server("marker-a")
    processes.stop(proc.pid, "marker-a", grace=5)
    assert proc.poll() is not None  # reaped: our child leaves no zombie
    assert gone(worker)
    assert not processes.alive(proc.pid, "marker-a")


def test_stop_kills_what_ignores_the_request_to_end_after_the_grace(server):
    proc, worker = server("marker-a", stubborn=True)
    processes.stop(proc.pid, "marker-a", grace=0.5)
    assert proc.poll() is not None
    assert gone(worker)


def test_stop_leaves_a_process_whose_marker_does_not_match(server):
    proc, worker = server("marker-a")
    processes.stop(proc.pid, "marker-b", grace=0.5)
    assert processes.alive(proc.pid, "marker-a")
    assert not gone(worker)


def test_a_worker_whose_leader_died_is_still_found_by_its_owner(server, tmp_path):
    proc, worker = server("marker-a")
    proc.kill()
    proc.wait(5)
    found = {p.pid for p in processes.owned_by(tmp_path / "marker-a")}
    assert worker in found
    assert processes.stop_owned(tmp_path / "marker-a", grace=5) >= 1
    assert gone(worker)


def test_a_process_that_only_names_a_path_beneath_the_folder_is_not_ours(server, tmp_path):
    proc, worker = server("marker-a")
    log = tmp_path / "marker-a" / "server.log"
    reader = subprocess.Popen(["tail", "-f", str(log)], stdout=subprocess.DEVNULL)  # a user's
    try:
        found = {p.pid for p in processes.owned_by(tmp_path / "marker-a")}
        assert {proc.pid, worker} <= found
        assert reader.pid not in found
        processes.stop_owned(tmp_path / "marker-a", grace=5)
        assert reader.poll() is None and gone(worker)
    finally:
        reader.kill()
        reader.wait(5)

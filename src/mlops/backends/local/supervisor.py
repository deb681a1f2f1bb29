"""Restarts a local endpoint's dead deployment servers, from inside the endpoint's router.

A managed endpoint replaces a crashed instance on its own; here the router checks each server
instance of every deployment that finished starting, and starts a dead one again on the same
port (so the state file's port stays right), under the endpoint's lock, recording the new pid.
Tries are bounded per instance, with a growing wait between them, and each restart is an
event in the events log. Meanwhile the router sends requests to the instances still
listening, or answers 503 with Retry-After.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from mlops import events
from mlops.backends.local import inference_server, processes, state_files
from mlops.state import StateUnreadable, locked, read_checked, write_json

CHECK_S = float(os.environ.get("MLOPS_SUPERVISOR_CHECK", "1"))  # between two looks
TRIES = int(os.environ.get("MLOPS_SUPERVISOR_TRIES", "5"))  # restarts of one instance, at most
FIRST_WAIT_S = 1.0  # before a second restart of one instance; doubled each time after
LONGEST_WAIT_S = 30.0
STEADY_S = 60.0  # an instance up this long since its last restart has its tries back


class Supervisor:
    """Keeps the deployments of the endpoint whose state file is state_path running."""

    def __init__(self, state_path: Path, tries: int = TRIES):
        self.state_path = state_path
        self.endpoint_dir = state_path.parent
        self.env_dir = state_path.parents[2]  # <home>/<env>/endpoints/<name>/endpoint.json
        self.tries = tries
        self._restarts: dict[tuple[str, int], int] = {}  # (deployment, instance) -> count
        self._last: dict[tuple[str, int], float] = {}  # when each was last restarted

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="mlops-supervisor", daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        while True:
            time.sleep(CHECK_S)
            try:
                self.check()
            except Exception as failure:  # never let one bad look end the supervision
                print(f"supervisor: {type(failure).__name__}: {failure}", flush=True)

    def check(self) -> None:
        """One look at every instance; restart the dead ones whose turn it is."""
        for deployment, number, record in self._instances(self._read()):
            key = (deployment, number)
            if processes.alive(_pid(record, number), record["marker"]):
                if time.monotonic() - self._last.get(key, 0) > STEADY_S:
                    self._restarts.pop(key, None)
                continue
            count = self._restarts.get(key, 0)
            if count > self.tries:
                continue  # given up, said once
            wait = min(FIRST_WAIT_S * 2 ** (count - 1), LONGEST_WAIT_S) if count else 0
            if time.monotonic() - self._last.get(key, 0) < wait:
                continue
            self._restart(deployment, number, count)

    def _read(self) -> dict:
        try:
            return read_checked(self.state_path, state_files.checked) or {}
        except StateUnreadable:
            return {}  # commands say so; nothing here is trusted meanwhile

    @staticmethod
    def _instances(state: dict):
        for name, record in state.get("deployments", {}).items():
            if record.get("status") != "Succeeded":  # starting, or being deleted: not ours
                continue
            for number in range(1 + len(record.get("replicas", []))):
                yield name, number, record

    def _restart(self, deployment: str, number: int, count: int) -> None:
        key = (deployment, number)
        with locked(self.endpoint_dir / ".lock"):  # the lock every change of the file takes
            state = self._read()
            record = state.get("deployments", {}).get(deployment)
            if (
                record is None
                or record.get("status") != "Succeeded"
                or number > len(record.get("replicas", []))
                or processes.alive(_pid(record, number), record["marker"])
            ):
                return  # changed while we waited for the lock
            self._restarts[key], self._last[key] = count + 1, time.monotonic()
            if count == self.tries:
                self._event(events.RESTART_ABANDONED, record, deployment, number, tries=count)
                return
            port = _port(record, number)
            _stop_leftovers(record, port)  # e.g. workers of a killed master, on its port
            server, _ = inference_server.launch_deployment(
                record,
                inference_server.instance_log(number),
                state["name"],
                deployment,
                self.env_dir / "collected",
                state.get("internal_token"),
                port=port,
            )
            instance = record if number == 0 else record["replicas"][number - 1]
            instance.update(pid=server.pid, port=server.port)
            write_json(self.state_path, state)
        self._event(
            events.DEPLOYMENT_RESTARTED, record, deployment, number, attempt=count + 1, port=port
        )

    def _event(self, kind: str, record: dict, deployment: str, number: int, **details) -> None:
        """Appended to the events log (the webhook is the commands' to call)."""
        event = events.make(
            kind,
            self.env_dir.name,
            Path.cwd(),  # the router runs in the checkout
            model=record["model"],
            sha256=record["artifact_sha256"],
            endpoint=self.endpoint_dir.name,
            deployment=deployment,
            instance=number,
            **details,
        )
        events.append_line(self.env_dir.parent / events.LOG_FILE, event.as_dict())
        print(f"supervisor: {json.dumps(event.as_dict()['details'])}", flush=True)


def _pid(record: dict, number: int) -> int | None:
    return (record if number == 0 else record["replicas"][number - 1]).get("pid")


def _port(record: dict, number: int) -> int | None:
    return (record if number == 0 else record["replicas"][number - 1]).get("port")


def _stop_leftovers(record: dict, port: int | None) -> None:
    """Processes of the deployment still serving the instance's port (its command line names
    it) though its master is gone: they would keep the port from the new server."""
    if port is None:
        return
    flag = f"--port {port}"
    leftovers = [
        process
        for process in processes.owned_by(Path(record["folder"]))
        if flag in processes.command_line(process)
    ]
    for process in leftovers:
        processes.stop(process.pid, flag, grace=5)

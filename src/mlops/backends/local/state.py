"""JSON state files that several commands (and the router) read and write safely."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def write_json(path: Path, data: Any) -> None:
    """Write to a temporary file then rename: readers see the old or the new state, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock, so two commands never change one endpoint at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


LAST_JOB = "last_job.json"


def remember_job(folder: Path, job_id: str) -> None:
    """Note the environment's latest training job, so `register` can default to it."""
    write_json(folder / LAST_JOB, {"id": job_id})


def resolve_job(folder: Path, env: str, job_id: str) -> str:
    """A job id as given, or for "last" the one remember_job noted."""
    if job_id != "last":
        return job_id
    last = (read_json(folder / LAST_JOB) or {}).get("id", "")
    if not last:
        raise MlopsError(f"no training job has run in {env} yet; run `mlops train`")
    return last

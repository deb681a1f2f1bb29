"""JSON state files under the state home, read and written safely by several commands at once.

Only what must outlive one command lives here (a local endpoint's processes and port, reports
such as profile.json); what a later verb needs from an earlier one is passed explicitly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlops.errors import MlopsError


class StateUnreadable(MlopsError):
    """A state file exists but is not the JSON object we wrote (cut short, emptied, edited)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"state file {path} is unreadable ({reason})")
        self.path, self.reason = path, reason


def read_json(path: Path, default: Any = None) -> Any:
    """The file's JSON object, default if there is no file, StateUnreadable if it is damaged."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return default
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise StateUnreadable(path, "empty" if not path.stat().st_size else str(exc)) from None
    except OSError as exc:
        raise StateUnreadable(path, exc.strerror or str(exc)) from None
    if not isinstance(data, dict):
        raise StateUnreadable(path, f"a JSON {type(data).__name__}, not an object")
    return data


def read_checked(path: Path, check: Callable[[dict], dict]) -> dict | None:
    """The file's JSON object as check(object) returns it (a pydantic model's validation),
    None if there is no file, StateUnreadable naming the first wrong field if it has another
    shape."""
    data = read_json(path)
    if data is None:
        return None
    try:
        return check(data)
    except ValidationError as wrong:
        raise StateUnreadable(path, _first_problem(wrong)) from None
    except RecursionError:
        raise StateUnreadable(path, "nested too deeply") from None


def _first_problem(wrong: ValidationError) -> str:
    problem = wrong.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "the object"
    return f"{where}: {problem['msg'][:1].lower()}{problem['msg'][1:]}"


def write_json(path: Path, data: Any) -> None:
    """Write to a temporary file then rename: readers see the old or the new state, never half."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: Path, text: str) -> None:
    """The whole text or, on any failure, the file as it was (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def private_dir(path: Path, own: bool = False) -> Path:
    """The folder, made if need be, readable by this user only (0700): what lives under the
    state home (clients' inputs, keys, logs, the tracking store) is no other local user's.

    A folder that already existed keeps its mode unless it is the project's own (own=True,
    e.g. an environment's folder under the home): the home may name a folder the project
    did not make (MLOPS_HOME=/tmp), and closing it would break other users. Such a folder
    open to others gets a warning instead."""
    existed = path.is_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if existed and not own:
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                print(
                    f"warning: {path} is readable by other users; what the project keeps "
                    "in it is closed to them (0700), but not the folder itself",
                    file=sys.stderr,
                )
        return path
    with contextlib.suppress(OSError):  # e.g. a folder another user made for us
        path.chmod(0o700)
    return path


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """While inside, files this process and the processes it starts create are this user's
    only (0600 files, 0700 folders): jobs' outputs, registered data, the registry, batch
    outputs. The mask is process-wide, so it is set back on the way out."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def private_file(path: Path) -> None:
    """Make a file another tool created (e.g. MLflow's SQLite store) this user's only (0600)."""
    with contextlib.suppress(OSError):
        path.chmod(0o600)


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

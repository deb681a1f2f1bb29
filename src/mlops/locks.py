"""One command at a time changes an endpoint: rollouts wait for each other, in one sentence."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mlops.errors import MlopsError

WAIT_S = float(os.environ.get("MLOPS_LOCK_WAIT", "900"))  # longer than any rollout takes


@contextlib.contextmanager
def endpoint_lock(
    home: Path, env: str, endpoint: str, say: Callable[[str], None], wait_s: float = WAIT_S
) -> Iterator[None]:
    """Hold the endpoint's rollout lock; wait (saying for whom) while another command holds it.

    The kernel releases it when its holder exits, even by SIGKILL: a killed command never
    leaves the endpoint locked."""
    path = home / env / "endpoints" / endpoint / ".rollout.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline, told = time.monotonic() + wait_s, False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = path.read_text().strip() or "another command"
                if time.monotonic() >= deadline:
                    raise MlopsError(
                        f"{env} endpoint {endpoint} is still being changed by {holder} after "
                        f"{wait_s:.0f} s; try again when it ends"
                    ) from None
                if not told:
                    say(f"waiting for {holder} to finish changing {env} endpoint {endpoint}")
                    told = True
                time.sleep(0.2)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"mlops (pid {os.getpid()})\n")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)

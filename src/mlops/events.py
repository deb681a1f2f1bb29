"""Lifecycle events: one structured record per step, appended to a local log and, when the
environment file names one, posted to a webhook.

An event says what happened (kind), when (UTC), where (environment), to what (NAME:VERSION
and the artifact's sha256), by whom (the GitHub actor in Actions, else the local user), from
which commit, and which workflow run did it. The log is append-only JSON Lines under the
state home; the webhook gets a bounded number of tries within a bounded time and never fails
the verb: a failed delivery is said in one line and recorded in the log.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops import clock, lineage

# The kinds of event, each one line: a new kind is one more entry here.
TRAINING_COMPLETED = "training.completed"
TRAINING_FAILED = "training.failed"
MODEL_REGISTERED = "model.registered"
MODEL_SHARED = "model.shared"
MODEL_GATED = "model.gated"
MODEL_DEPLOYED = "model.deployed"
ROLLED_BACK = "deployment.rolled_back"
MODEL_PROMOTED = "model.promoted"
DRIFT_DETECTED = "drift.detected"
PERFORMANCE_DEGRADED = "performance.degraded"  # a gated metric past its bound on labels
WEBHOOK_FAILED = "webhook.failed"  # recorded in the log only, never posted
# A local endpoint's router restarted a dead server, or stopped trying (log only: supervisor.py)
DEPLOYMENT_RESTARTED = "deployment.restarted"
RESTART_ABANDONED = "deployment.restart_abandoned"
KINDS = frozenset(
    {
        TRAINING_COMPLETED,
        TRAINING_FAILED,
        MODEL_REGISTERED,
        MODEL_SHARED,
        MODEL_GATED,
        MODEL_DEPLOYED,
        ROLLED_BACK,
        MODEL_PROMOTED,
        DRIFT_DETECTED,
        PERFORMANCE_DEGRADED,
        WEBHOOK_FAILED,
        DEPLOYMENT_RESTARTED,
        RESTART_ABANDONED,
    }
)

LOG_FILE = "events.jsonl"
WEBHOOK_TRIES = 3  # at most this many POSTs per event,
WEBHOOK_SECONDS = 5.0  # all within this long: the verb never waits longer for the webhook
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Event:
    kind: str
    time: str  # UTC, ISO 8601
    environment: str
    model: str | None  # NAME:VERSION
    sha256: str | None  # the served artifact's (model.onnx), where known
    actor: str
    commit: str
    run: str | None  # the workflow run's link, in Actions
    details: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# ---- who, which commit, which run: from GitHub Actions' variables, else this checkout -------


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def actor() -> str:
    if in_actions() and os.environ.get("GITHUB_ACTOR"):
        return os.environ["GITHUB_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (e.g. a container's uid without a passwd line)
        return "unknown"


def source_commit(root: Path) -> str:
    return os.environ.get("GITHUB_SHA") or lineage.git_commit(root)


def run_link() -> str | None:
    server, repo, run = (
        os.environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


_PR_REF = re.compile(r"^refs/pull/(\d+)/")
# A merged pull request's commit on main: "Merge pull request #12 from ..." or "Title (#12)".
_PR_IN_MESSAGE = re.compile(r"^Merge pull request #(\d+)\b|\(#(\d+)\)\s*$")


def pull_request() -> int | None:
    """The pull request behind this run: the PR itself in a pull_request run, or the merged PR
    whose merge commit a push to main carries (how deploy-prod runs after a promotion)."""
    found = _PR_REF.match(os.environ.get("GITHUB_REF", ""))
    if found:
        return int(found.group(1))
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    number = (payload.get("pull_request") or {}).get("number")
    if isinstance(number, int):
        return number
    message = ((payload.get("head_commit") or {}).get("message") or "").splitlines()
    found = _PR_IN_MESSAGE.search(message[0]) if message else None
    return int(found.group(1) or found.group(2)) if found else None


def now() -> str:
    return clock.now().isoformat(timespec="milliseconds")


def make(
    kind: str,
    env: str,
    root: Path,
    model: str | None = None,
    sha256: str | None = None,
    **details: object,
) -> Event:
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    return Event(
        kind=kind,
        time=now(),
        environment=env,
        model=model,
        sha256=sha256 or None,
        actor=actor(),
        commit=source_commit(root),
        run=run_link(),
        details={k: v for k, v in details.items() if v is not None},
    )


# ---- the local log ----------------------------------------------------------------------


def append_line(path: Path, record: dict) -> None:
    """One JSON line, written in one write under an exclusive lock: concurrent commands never
    interleave their lines, and a reader sees whole lines only. A torn last line (a writer
    killed mid-write) is ended first, so the new record starts a line of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, ends_torn_line(fd) + line)
    finally:
        os.close(fd)  # releases the lock


def ends_torn_line(fd: int) -> bytes:
    """b"\n" if the file open at fd ends in the middle of a line, else b"" (call it under the
    file's lock, just before appending)."""
    size = os.fstat(fd).st_size
    return b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""


@dataclass(frozen=True)
class Lines:
    """The records of a JSON Lines file, and how many of its lines could not be read (torn
    by a killed writer, or edited)."""

    records: list[dict]
    unreadable: int


def read_counted(path: Path) -> Lines:
    found, unreadable = [], 0
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Lines(found, 0)
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict):
            found.append(record)
        else:
            unreadable += 1
    return Lines(found, unreadable)


def read_lines(path: Path) -> list[dict]:
    """The records of a JSON Lines file, skipping lines that are not a JSON object."""
    return read_counted(path).records


# ---- the webhook ------------------------------------------------------------------------


def checked_webhook(url: str) -> str:
    """The webhook URL, or ValueError saying why not: https, or http to loopback only, so an
    event never crosses a network in clear text."""
    from urllib.parse import urlsplit

    if url != url.strip() or any(c.isspace() for c in url):
        raise ValueError(f"must be a URL without spaces, not {url!r}")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ValueError(f"has a bad port: {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"must be an https:// URL with a host, not {url!r}")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return url
    raise ValueError(f"must be https:// (http:// only to 127.0.0.1 or localhost), not {url!r}")


def post(
    url: str, event: Event, tries: int | None = None, seconds: float | None = None
) -> str | None:
    """POST the event as JSON: up to `tries` times, all within `seconds`. None when the webhook
    answered 2xx, else why not, as a phrase. Never raises, never waits past the bound (the
    deliveries run in a daemon thread the caller stops waiting for)."""
    tries = tries or WEBHOOK_TRIES
    seconds = seconds if seconds is not None else WEBHOOK_SECONDS
    body = json.dumps(event.as_dict(), sort_keys=True).encode()
    deadline = time.monotonic() + seconds
    outcome: list[str | None] = []
    opener = _opener(url)

    def deliver() -> None:
        problem = "no try"
        for attempt in range(tries):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with opener.open(request, timeout=left) as reply:
                    if 200 <= reply.status < 300:
                        outcome.append(None)
                        return
                    problem = f"HTTP {reply.status}"
            except urllib.error.HTTPError as refused:
                problem = f"HTTP {refused.code}"
            except (urllib.error.URLError, OSError, ValueError) as failed:
                reason = getattr(failed, "reason", failed)
                problem = str(reason) or type(failed).__name__
            if attempt + 1 < tries:  # back off a little, within the bound
                time.sleep(min(0.2 * 2**attempt, max(deadline - time.monotonic(), 0)))
        outcome.append(f"{problem} after {attempt + 1} {'try' if attempt == 0 else 'tries'}")

    worker = threading.Thread(target=deliver, name="mlops-webhook", daemon=True)
    worker.start()
    worker.join(max(deadline - time.monotonic(), 0) + 0.1)
    if not outcome:
        return f"no answer within {seconds:g} s"
    return outcome[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: following it could send the event elsewhere in clear text."""

    def redirect_request(self, *args, **kwargs):
        return None


def _opener(url: str) -> urllib.request.OpenerDirector:
    from urllib.parse import urlsplit

    # a loopback webhook is reached directly, whatever proxy the environment names
    proxies = {} if urlsplit(url).hostname in _LOOPBACK else None
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies), _NoRedirect)


# ---- where events go --------------------------------------------------------------------

Sink = Callable[[Event], None]


class Recorder:
    """The default sink: the events log under the state home, then the environment's webhook.

    webhook_of(env) gives the environment file's webhook URL (or None); say prints a line."""

    def __init__(
        self, home: Path, webhook_of: Callable[[str], str | None], say: Callable[[str], None]
    ):
        self.home, self.webhook_of, self.say = home, webhook_of, say

    @property
    def log(self) -> Path:
        return self.home / LOG_FILE

    def __call__(self, event: Event) -> None:
        append_line(self.log, event.as_dict())
        url = self.webhook_of(event.environment)
        if not url:
            return
        problem = post(url, event)
        if problem is None:
            return
        self.say(f"warning: the events webhook did not take {event.kind}: {problem}")
        failed = {
            **event.as_dict(),
            "kind": WEBHOOK_FAILED,
            "time": now(),
            "details": {"event": event.kind, "event_time": event.time, "problem": problem},
        }
        append_line(self.log, failed)

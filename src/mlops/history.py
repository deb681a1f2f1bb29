"""The audit trail: who deployed, rolled back or promoted which model, where, when and why.

Each entry is kept twice:
- on the model version in the shared registry, as one tag `audit.<env>.<time>` whose value is
  the entry as compact JSON. The registry outlives every CI runner and every endpoint, each
  deploy identity already reads it, and `mlops history` reads the trail back from it: on a
  fresh runner, `mlops history --env prod` lists every version's entries for prod;
- in an append-only file per environment under the state home (`<env>/history.jsonl`).

Writing the tag needs write access to the registry's assets; an identity without it (or a
registry that refuses) gets one warning line, and the verb still succeeds: the deployment has
happened, and the local file and the events log keep the entry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlops import clock, events
from mlops.backends.base import ModelVersion
from mlops.context import Context
from mlops.errors import MlopsError

DEPLOYED, ROLLED_BACK, PROMOTED = "deployed", "rolled back", "promoted"
EVENT_OF = {
    DEPLOYED: events.MODEL_DEPLOYED,
    ROLLED_BACK: events.ROLLED_BACK,
    PROMOTED: events.MODEL_PROMOTED,
}
TAG_PREFIX = "audit."
HISTORY_FILE = "history.jsonl"


@dataclass(frozen=True)
class Entry:
    action: str  # deployed | rolled back | promoted
    time: str  # UTC, ISO 8601
    environment: str
    model: str  # NAME:VERSION
    sha256: str
    actor: str
    commit: str
    pull_request: int | None = None
    run: str | None = None  # the workflow run's link
    endpoint: str | None = None
    deployment: str | None = None

    def tag(self) -> tuple[str, str]:
        """The registry tag: the version and sha256 are the tagged version's own."""
        stamp = self.time.replace("-", "").replace(":", "").replace("+0000", "Z")
        value = {
            k: v for k, v in asdict(self).items() if k not in ("model", "sha256", "environment")
        }
        return f"{TAG_PREFIX}{self.environment}.{stamp}", json.dumps(
            {k: v for k, v in value.items() if v is not None}, separators=(",", ":")
        )


def record(
    ctx: Context,
    env: str,
    action: str,
    model: ModelVersion,
    endpoint: str | None = None,
    deployment: str | None = None,
    **details: object,
) -> Entry:
    """Emit the action's lifecycle event, then keep the audit entry (the file, the tag)."""
    ctx.emit(
        EVENT_OF[action],
        env,
        model.ref,
        model.artifact_sha256,
        endpoint=endpoint,
        deployment=deployment,
        **details,
    )
    entry = Entry(
        action=action,
        time=clock.now().isoformat(timespec="microseconds"),  # the tag key: unique
        environment=env,
        model=model.ref,
        sha256=model.artifact_sha256,
        actor=events.actor(),
        commit=events.source_commit(ctx.root),
        pull_request=events.pull_request(),
        run=events.run_link(),
        endpoint=endpoint,
        deployment=deployment,
    )
    events.append_line(ctx.home / env / HISTORY_FILE, asdict(entry))
    key, value = entry.tag()
    try:
        ctx.backend(env).tag_shared_model(model, {key: value})
    except MlopsError as refused:
        ctx.say(f"warning: the audit entry is not on {model.ref} in the registry: {refused}")
    return entry


def entries(ctx: Context, env: str) -> list[Entry]:
    """The environment's entries, newest first, read back from the registry's versions."""
    cfg = ctx.config(env)
    found = []
    for version in ctx.backend(env).list_shared_models(cfg.model_name):
        prefix = f"{TAG_PREFIX}{env}."
        for key, value in version.tags.items():
            entry = _from_tag(env, version, value) if key.startswith(prefix) else None
            if entry is not None:
                found.append(entry)
    return sorted(found, key=lambda e: _when(e.time), reverse=True)


def _from_tag(env: str, version: ModelVersion, value: str) -> Entry | None:
    """An entry from its tag, or None when the tag is not one we wrote (edited by hand)."""
    try:
        data = json.loads(value)
        return Entry(environment=env, model=version.ref, sha256=version.artifact_sha256, **data)
    except (ValueError, TypeError):
        return None


def _when(time: str) -> datetime:
    """An entry's time for ordering: UTC whatever zone it was written in (a naive one is UTC),
    the oldest possible when it is not a time at all."""
    return clock.parse(str(time)) or datetime.min.replace(tzinfo=UTC)


def lines(found: list[Entry]) -> list[str]:
    """One line per entry for the terminal."""
    shown = []
    for e in found:
        where = f" endpoint {e.endpoint}" if e.endpoint else ""
        where += f" deployment {e.deployment}" if e.deployment else ""
        pr = f" PR #{e.pull_request}" if e.pull_request else ""
        shown.append(
            f"{_short(e.time)}  {e.action:<11} {e.model}  sha256 {e.sha256[:12]}  by {e.actor}  "
            f"commit {e.commit[:12]}{pr}  {e.environment}{where}" + (f"  {e.run}" if e.run else "")
        )
    return shown


def _short(time: str) -> str:
    """2026-11-27T20:33:07.867891+00:00 as 2026-11-27 20:33:07Z."""
    return time[:19].replace("T", " ") + "Z" if time.endswith("+00:00") else time


def markdown(found: list[Entry], last: int = 5) -> str:
    """The last entries as a markdown section, each linking its workflow run where known (for
    the promotion pull request body)."""
    if not found:
        return ""
    rows = []
    for e in found[:last]:
        what = f"[{e.action}]({e.run})" if e.run else e.action
        pr = f", PR #{e.pull_request}" if e.pull_request else ""
        rows.append(
            f"- {_short(e.time)}: {what} `{e.model}` (sha256 `{e.sha256[:12]}`) by {e.actor}, "
            f"commit `{e.commit[:12]}`{pr}"
        )
    return "\n".join(
        ["", f"### Previous entries in {found[0].environment}'s audit trail", "", *rows, ""]
    )


def show(ctx: Context, env: str, last: int | None = None) -> list[Entry]:
    found = entries(ctx, env)
    if not found:
        print(f"no audit entries for {env} yet (deploy, roll back or promote to make one)")
    for line in lines(found[:last] if last else found):
        print(line)
    for log in (ctx.home / env / HISTORY_FILE, ctx.home / events.LOG_FILE):
        torn = events.read_counted(log).unreadable
        if torn:
            print(f"{torn} unreadable line(s) in {log} (torn by a killed command, or edited)")
    return found

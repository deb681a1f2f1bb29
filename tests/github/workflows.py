"""Reading the workflows as data, for the tests beside this file. Running them, with every
expression evaluated by a real engine, is actions_engine.py's."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"


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


def repo_path(relative: str) -> Path:
    return ROOT / relative

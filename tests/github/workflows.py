"""Reading the workflows as data, for the tests beside this file."""

from __future__ import annotations

import re
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


# ---- the few GitHub expressions the workflows use, evaluated as GitHub does ----------
# Contexts: https://docs.github.com/en/actions/reference/workflows-and-actions/contexts
# (steps.<id>.outputs.<name>, needs.<job>.outputs.<name>; an unset output is an empty string).

_EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
_REFERENCE = re.compile(r"^(steps|needs)\.([\w-]+)\.outputs\.([\w-]+)$")
_COMPARISON = re.compile(r"^(\S+)\s*(==|!=)\s*'([^']*)'$")
_SHELL_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def reference(expression: str, outputs: dict) -> str:
    """The value of steps.ID.outputs.NAME or needs.JOB.outputs.NAME; vars.* are unset here."""
    if expression.startswith("vars."):
        return ""
    match = _REFERENCE.match(expression)
    assert match, f"the rehearsal cannot evaluate ${{{{ {expression} }}}}"
    kind, owner, name = match.groups()
    if kind == "needs":  # GitHub: only jobs listed in `needs` are in the needs context
        assert owner in outputs["needs"], f"needs.{owner} is read but {owner} is not in `needs`"
    return outputs[kind].get(owner, {}).get(name, "")


def substitute(text: str, outputs: dict) -> str:
    return _EXPRESSION.sub(lambda m: reference(m.group(1), outputs), text)


def condition_holds(condition: str | None, outputs: dict) -> bool:
    """`if:` of the forms the workflows use: REF == 'v', REF != 'v', optionally after !cancelled()."""
    if condition is None:
        return True
    text = condition.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2].strip()
    text = text.removeprefix("!cancelled() &&").strip()  # a rehearsal is never cancelled
    match = _COMPARISON.match(text)
    assert match, f"the rehearsal cannot evaluate if: {condition}"
    left, operator, value = match.groups()
    # GitHub compares strings ignoring case (docs: expressions, operators)
    return (reference(left, outputs).casefold() == value.casefold()) == (operator == "==")


def shell_expand(line: str, env: dict[str, str]) -> str:
    """$NAME and ${NAME} from the step's environment; an unset one fails the rehearsal."""

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in env, f"{line}: ${name} is not set by the job or the step"
        assert env[name], f"{line}: ${name} is empty: an output it reads was never written"
        return env[name]

    return _SHELL_VARIABLE.sub(value, line)


def read_outputs(path: Path) -> dict[str, str]:
    """A step's $GITHUB_OUTPUT file: NAME=VALUE lines (the one-line form set_outputs writes)."""
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)

"""The promotion pull request: a one-line change of environments/prod.yml and its story.

`render` produces exactly what the pull request carries (the new file, its diff
and a markdown body) without touching tracked files; the workflow then writes
the new file and opens or updates the pull request.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import yaml

from mlops.backends.base import (
    TAG_ARTIFACT,
    TAG_DATA,
    TAG_GIT,
    TAG_JOB,
    TAG_RUN,
    ModelVersion,
)
from mlops.errors import MlopsError
from mlops.gate import Verdict

PROD_FILE = "environments/prod.yml"
_MODEL_BLOCK = re.compile(r"^model:\s*(#.*)?$")
_VERSION_LINE = re.compile(r"^(?P<indent>\s+)version:(?P<value>[^#\n]*)(?P<comment>#.*)?$")


@dataclass(frozen=True)
class Promotion:
    new_text: str
    diff: str
    title: str
    body: str


def bump_version(text: str, version: int) -> str:
    """Set model.version in prod.yml's text, keeping every other line and comment as is."""
    lines = text.splitlines(keepends=True)
    in_model = False
    for index, line in enumerate(lines):
        if _MODEL_BLOCK.match(line):
            in_model = True
            continue
        if in_model and line.strip() and not line[0].isspace():
            break
        match = _VERSION_LINE.match(line.rstrip("\n")) if in_model else None
        if match:
            comment = "  # set by the promotion pull request" if match["comment"] else ""
            lines[index] = f"{match['indent']}version: {version}{comment}\n"
            new_text = "".join(lines)
            if (yaml.safe_load(new_text) or {}).get("model", {}).get("version") != version:
                break
            return new_text
    raise MlopsError(f"{PROD_FILE}: found no `version:` line under `model:` to change")


def render(
    current_text: str, challenger: ModelVersion, champion: ModelVersion | None, verdict: Verdict
) -> Promotion:
    new_text = bump_version(current_text, challenger.version)
    diff = "".join(
        difflib.unified_diff(
            current_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{PROD_FILE}",
            tofile=f"b/{PROD_FILE}",
        )
    )
    title = f"Promote {challenger.ref} to prod"
    return Promotion(new_text, diff, title, _body(challenger, champion, verdict, diff))


def _body(
    challenger: ModelVersion, champion: ModelVersion | None, verdict: Verdict, diff: str
) -> str:
    theirs = champion.metrics if champion else {}
    rows = ["| metric | challenger | champion | change |", "| --- | ---: | ---: | ---: |"]
    for metric, value in sorted(challenger.metrics.items()):
        old = theirs.get(metric)
        change = f"{value - old:+.4f}" if old is not None else "n/a"
        shown_old = f"{old:.4f}" if old is not None else "none"
        rows.append(f"| {metric} | {value:.4f} | {shown_old} | {change} |")
    lineage = [
        "| | challenger | champion |",
        "| --- | --- | --- |",
        f"| model | `{challenger.ref}` | {f'`{champion.ref}`' if champion else 'none'} |",
    ]
    for label, tag in (
        ("git commit", TAG_GIT),
        ("data sha256", TAG_DATA),
        ("training run", TAG_RUN),
        ("training job", TAG_JOB),
        ("artifact sha256 (model.onnx)", TAG_ARTIFACT),
    ):
        old = f"`{champion.tags.get(tag, 'unknown')}`" if champion else ""
        lineage.append(f"| {label} | `{challenger.tags.get(tag, 'unknown')}` | {old} |")
    gate_lines = "\n".join(f"- {reason}" for reason in verdict.reasons)
    return "\n".join(
        [
            f"## Promote `{challenger.ref}` to prod",
            "",
            "Merging this pull request deploys the model below to prod, blue/green, after the",
            "`prod` environment's required reviewers approve the deployment job.",
            "",
            "### Metrics (held-out data)",
            "",
            *rows,
            "",
            "### Gate",
            "",
            gate_lines,
            "",
            "### Lineage",
            "",
            *lineage,
            "",
            "### Change",
            "",
            "```diff",
            diff.rstrip("\n"),
            "```",
            "",
        ]
    )

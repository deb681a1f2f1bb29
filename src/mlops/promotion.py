"""The promotion pull request: a one-line change of environments/prod.yml and its story.

`render` produces exactly what the pull request carries (the new file, its diff
and a markdown body) without touching tracked files; the workflow then writes
the new file and opens or updates the pull request.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import yaml

from mlops import yamledit
from mlops.backends.base import (
    TAG_ARTIFACT,
    TAG_DATA,
    TAG_GIT,
    TAG_JOB,
    TAG_RUN,
)
from mlops.errors import MlopsError
from mlops.gate import GateResult

PROD_FILE = "environments/prod.yml"


@dataclass(frozen=True)
class Promotion:
    new_text: str
    diff: str
    title: str
    body: str


def bump_version(text: str, version: int) -> str:
    """Set model.version in prod.yml's text, keeping every other line and comment as is."""
    try:
        new_text = yamledit.set_scalar(
            text, "model.version", str(version), PROD_FILE, "# set by the promotion pull request"
        )
    except MlopsError:
        new_text = None
    if (
        new_text is None
        or (yaml.safe_load(new_text) or {}).get("model", {}).get("version") != version
    ):
        raise MlopsError(f"{PROD_FILE}: found no `version:` line under `model:` to change")
    return new_text


def render(current_text: str, result: GateResult, preprod_check: str) -> Promotion:
    challenger = result.challenger
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
    return Promotion(new_text, diff, title, _body(result, preprod_check, diff))


def _shown(value: object) -> str:
    try:
        return f"{float(value):.4f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "none" if value is None else f"`{value}`"


def _change(ours: object, theirs: object) -> str:
    try:
        return f"{float(ours) - float(theirs):+.4f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"


def _metric_rows(ours: dict, theirs: dict) -> list[str]:
    rows = ["| metric | challenger | champion | change |", "| --- | ---: | ---: | ---: |"]
    for metric in sorted(ours):
        old = theirs.get(metric)
        rows.append(
            f"| {metric} | {_shown(ours[metric])} | {_shown(old)} | {_change(ours[metric], old)} |"
        )
    return rows


def _body(result: GateResult, preprod_check: str, diff: str) -> str:
    challenger, champion = result.challenger, result.champion_model
    exam_rows = _metric_rows(result.figures, result.champion.metrics or {})
    recorded_rows = _metric_rows(challenger.metrics, champion.metrics if champion else {})
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
    gate_lines = "\n".join(f"- {reason}" for reason in result.verdict.reasons)
    champion_line = (
        f"Champion `{result.champion.ref}`, read from {result.champion.source}."
        if result.champion.ref
        else f"No champion: prod serves no model yet (read from {result.champion.source})."
    )
    return "\n".join(
        [
            f"## Promote `{challenger.ref}` to prod",
            "",
            "Merging this pull request deploys the model below to prod, blue/green, after the",
            "`prod` environment's required reviewers approve the deployment job.",
            "",
            f"Checked before rendering: {preprod_check}.",
            "",
            "### The gate's exam (same held-out rows for both)",
            "",
            f"{champion_line} Both served artifacts (model.onnx) were scored on the held-out",
            f"rows of {result.paper}; the gate judged these figures.",
            "",
            *exam_rows,
            "",
            "### Gate",
            "",
            gate_lines,
            "",
            "### Metrics each training run recorded (for reference; each on its own held-out rows)",
            "",
            *recorded_rows,
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

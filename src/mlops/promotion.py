"""The promotion pull request: a one-line change of environments/prod.yml and its story.

`render` produces exactly what the pull request carries (the new file, its diff
and a markdown body) without touching tracked files; the workflow then writes
the new file and opens or updates the pull request.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from mlops import yamledit
from mlops.backends.base import (
    TAG_ARTIFACT,
    TAG_DATA,
    TAG_DATA_ASSET,
    TAG_DATA_VERSION,
    TAG_GIT,
    TAG_JOB,
    TAG_RUN,
    ModelVersion,
)
from mlops.data_diff import NOTICEABLE, Comparison
from mlops.errors import MlopsError
from mlops.files import load_yaml_text
from mlops.gate import GateResult

PROD_FILE = "environments/prod.yml"
TOP_FEATURES = 5  # importances listed per model


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
        or (load_yaml_text(new_text, PROD_FILE) or {}).get("model", {}).get("version") != version
    ):
        raise MlopsError(f"{PROD_FILE}: found no `version:` line under `model:` to change")
    return new_text


def render(
    current_text: str,
    result: GateResult,
    preprod_check: str,
    data: Comparison | None = None,
) -> Promotion:
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
    return Promotion(new_text, diff, title, _body(result, preprod_check, diff, data))


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


def _data_rows(data: Comparison | None) -> list[str]:
    """The challenger's training data and how it differs from the champion's."""
    if data is None:
        return ["Not compared."]
    theirs = data.champion
    rows = [
        "| | challenger | champion |",
        "| --- | --- | --- |",
        f"| data version | `{data.challenger.name}` | {f'`{theirs.name}`' if theirs else 'none'} |",
    ]
    found = data.diff
    if found is None:
        unread = [side.problem for side in (data.challenger, theirs) if side and side.problem]
        why = unread[0] if unread else "there is no champion to compare with"
        return [*rows, "", f"Not compared: {why}."]
    rows.append(
        f"| rows | {found.rows[0]} | {found.rows[1]} ({found.rows[0] - found.rows[1]:+d}) |"
    )
    ours_labels, their_labels = found.labels
    for label in sorted(set(ours_labels) | set(their_labels)):
        a, b = ours_labels.get(label), their_labels.get(label)
        shown = "target mean" if label == "mean" else f"label {label} share"
        rows.append(f"| {shown} | {_share(a, label)} | {_share(b, label)} |")
    rows += [
        "",
        "Features whose distribution moved most (standardised mean difference, challenger vs",
        f"champion; |SMD| above {NOTICEABLE} is a noticeable shift):",
        "",
        "| feature | challenger mean | champion mean | SMD |",
        "| --- | ---: | ---: | ---: |",
    ]
    for shift in found.shifts:
        rows.append(
            f"| {shift.feature} | {shift.challenger_mean:.4g} | {shift.champion_mean:.4g} | "
            f"{shift.smd:+.3f} |"
        )
    return rows


def _share(value: float | None, label: str) -> str:
    if value is None:
        return "none"
    return f"{value:.4g}" if label == "mean" else f"{value:.1%}"


def _importance_rows(challenger: ModelVersion, champion: ModelVersion | None) -> list[str]:
    """The top features of each model by permutation importance, side by side."""
    ours = list(challenger.importances.items())[:TOP_FEATURES]
    theirs = list(champion.importances.items())[:TOP_FEATURES] if champion else []
    missing = "none" if champion is None else "not recorded"
    rows = ["| rank | challenger | champion |", "| ---: | --- | --- |"]
    for rank in range(max(len(ours), len(theirs), 1)):
        a = f"`{ours[rank][0]}` {ours[rank][1]:.4f}" if rank < len(ours) else ""
        b = f"`{theirs[rank][0]}` {theirs[rank][1]:.4f}" if rank < len(theirs) else ""
        if rank == 0:
            a, b = a or "not recorded", b or missing
        rows.append(f"| {rank + 1} | {a} | {b} |")
    return rows


def _body(result: GateResult, preprod_check: str, diff: str, data: Comparison | None) -> str:
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
        ("data asset", TAG_DATA_ASSET),
        ("data version", TAG_DATA_VERSION),
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
            "### Training data",
            "",
            *_data_rows(data),
            "",
            "### Feature importance (permutation importance on held-out rows, top features)",
            "",
            *_importance_rows(challenger, champion),
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

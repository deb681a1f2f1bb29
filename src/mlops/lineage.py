"""Facts that tie a model to what made it: commit, data and artifact hashes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from mlops.backends.base import (
    COHORT_PREFIX,
    GAP_PREFIX,
    IMPORTANCE_PREFIX,
    METRIC_PREFIX,
    PARAM_PREFIX,
    TAG_ARTIFACT,
    TAG_DATA,
    TAG_DATA_ASSET,
    TAG_DATA_VERSION,
    TAG_GIT,
    TAG_JOB,
    TAG_RUN,
    Job,
    ModelVersion,
    TrainingSpec,
)
from mlops.errors import MlopsError
from mlops.paths import MODEL_CODE

UNCOMMITTED = "uncommitted"
ONNX_FILE = "model.onnx"  # the served artifact, whose sha256 every registered version carries


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_artifact(folder: Path, model: ModelVersion) -> Path:
    """The one model.onnx in a downloaded model folder, refused unless its bytes match the tag."""
    found = sorted(folder.rglob(ONNX_FILE))
    if len(found) != 1:
        raise MlopsError(f"{model.ref}: expected one {ONNX_FILE} in its files, found {len(found)}")
    actual = sha256_of(found[0])
    # the tag is the lineage a reviewer reads; the recorded sha256 is what deployments carry
    for what, recorded in (
        (f"{TAG_ARTIFACT} tag", model.tags.get(TAG_ARTIFACT)),
        ("recorded sha256", model.artifact_sha256),
    ):
        if recorded != actual:
            raise MlopsError(
                f"{model.ref}: {ONNX_FILE} (sha256 {actual[:12]}…) does not match its {what} "
                f"({f'{recorded[:12]}…' if recorded else 'none'})"
            )
    return found[0]


def model_tags(job: Job) -> dict[str, str]:
    """The tags a model version registered from the job carries: its whole lineage."""
    tags = {
        TAG_GIT: job.git_commit,
        TAG_DATA: job.data_sha256,
        TAG_RUN: job.run_id,
        TAG_JOB: job.id,
        TAG_ARTIFACT: job.artifact_sha256,
    }
    if job.data_asset:  # the data asset version it trained on, beside the file's sha256
        tags.update({TAG_DATA_ASSET: job.data_asset, TAG_DATA_VERSION: job.data_version})
    tags.update({f"{METRIC_PREFIX}{k}": str(v) for k, v in job.metrics.items()})
    tags.update({f"{PARAM_PREFIX}{k}": str(v) for k, v in job.params.items()})
    tags.update({f"{IMPORTANCE_PREFIX}{k}": str(v) for k, v in job.importances.items()})
    tags.update(job.cohort_tags)
    return tags


def job_from_run_tags(job_id: str, run_id: str, tags: dict[str, str]) -> Job:
    """A training job as its MLflow run's tags record it: the evaluate step sets them, and on
    Azure ML a job's tags are its run's tags, so both backends read a job's lineage the same
    way."""
    missing = [tag for tag in (TAG_DATA, TAG_ARTIFACT) if tag not in tags]
    if missing:
        raise MlopsError(
            f"job {job_id} has no {', '.join(missing)} tag; did src/model's evaluate step run it?"
        )
    return Job(
        id=job_id,
        run_id=run_id,
        metrics={k: float(v) for k, v in _prefixed(tags, METRIC_PREFIX).items()},
        params=_prefixed(tags, PARAM_PREFIX),
        data_sha256=tags[TAG_DATA],
        artifact_sha256=tags[TAG_ARTIFACT],
        git_commit=tags.get(TAG_GIT, UNCOMMITTED),
        data_asset=tags.get(TAG_DATA_ASSET, ""),
        data_version=tags.get(TAG_DATA_VERSION, ""),
        importances=_prefixed(tags, IMPORTANCE_PREFIX),
        cohort_tags={k: v for k, v in tags.items() if k.startswith((COHORT_PREFIX, GAP_PREFIX))},
    )


def cohort_lines(tags: dict[str, str]) -> list[str]:
    """The cohort table of a run's tags, one line per group: its rows, support and metrics."""
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for key, value in tags.items():
        if key.startswith(COHORT_PREFIX):
            cohort, group, name = key[len(COHORT_PREFIX) :].rsplit(".", 2)
            groups.setdefault((cohort, group), {})[name] = value
    lines = []
    for (cohort, group), found in sorted(groups.items()):
        rows, support = found.pop("rows", "?"), found.pop("support", "?")
        shown = ", ".join(f"{k}={_four(v)}" for k, v in sorted(found.items()))
        lines.append(f"cohort {cohort}={group}: {rows} rows (support {support}) {shown}".rstrip())
    return lines


def _four(value: str) -> str:
    try:
        return f"{float(value):.4f}"
    except ValueError:
        return repr(value)


def _prefixed(tags: dict[str, str], prefix: str) -> dict[str, str]:
    return {key[len(prefix) :]: value for key, value in tags.items() if key.startswith(prefix)}


def git_commit(root: Path, paths: tuple[str, ...] = (MODEL_CODE.as_posix(), "environments")) -> str:
    """HEAD's sha, with '+uncommitted' if the code or settings that shape the model differ from it.

    Outside a git checkout, or before the first commit, the mark is 'uncommitted' alone."""
    try:
        head = _git(root, "rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return UNCOMMITTED
    dirty = _git(root, "status", "--porcelain", "--", *paths)
    return f"{head}+{UNCOMMITTED}" if dirty else head


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def spec_tags(spec: TrainingSpec) -> dict[str, str]:
    """The tags a training job is submitted with: its commit and the data asset version it reads
    (the run adds the rest as it trains)."""
    tags = {TAG_GIT: spec.git_commit}
    if spec.data_asset:
        tags.update({TAG_DATA_ASSET: spec.data_asset, TAG_DATA_VERSION: str(spec.data_version)})
    return tags

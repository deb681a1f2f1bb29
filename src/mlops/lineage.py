"""Facts that tie a model to what made it: commit, data and artifact hashes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.errors import MlopsError

if TYPE_CHECKING:
    from mlops.backends.base import ModelVersion

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
    if sha256_of(found[0]) != model.artifact_sha256:
        raise MlopsError(f"{model.ref}: {ONNX_FILE} does not match its onnx_sha256 tag")
    return found[0]


def git_commit(root: Path, paths: tuple[str, ...] = ("src/model", "environments")) -> str:
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

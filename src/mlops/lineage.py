"""Facts that tie a model to what made it: commit, data and artifact hashes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

UNCOMMITTED = "uncommitted"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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

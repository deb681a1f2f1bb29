"""Helpers the tests share: the repository root, a disposable copy of it, the mlops command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "src" / "model"
sys.path.insert(0, str(MODEL_DIR))  # src/model is a code snapshot, not a package

_IGNORED = shutil.ignore_patterns("__pycache__", "mlruns", "mlflow.db", "outputs")


def env_setting(env: str, dotted: str, root: Path = ROOT):
    """A value of environments/<env>.yml (tests name what `mlops init` rendered, never a literal)."""
    import yaml

    value = yaml.safe_load((root / "environments" / f"{env}.yml").read_text())
    for key in dotted.split("."):
        value = value[key]
    return value


def copy_repo(target: Path, whole: bool = False) -> Path:
    """The parts of the repository the lifecycle reads (whole: also what `mlops init` renders),
    copied so tests may change them."""
    parts = ["environments", "src/model"]
    if whole:
        parts += ["infra", ".github", "README.md", "project.yml"]
    for part in parts:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=_IGNORED)
        else:
            shutil.copy2(source, target / part)
    return target


def run_mlops(
    repo: Path, home: Path, *args: str, check: bool = True, extra_env: dict | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_ROOT": str(repo), "MLOPS_HOME": str(home), "MLOPS_BACKEND": "local"}
    env.pop("GITHUB_OUTPUT", None)  # tests must not write into a real Actions step
    env.update(extra_env or {})
    result = subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"mlops {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def edit(path: Path, replacements: dict[str, str]) -> None:
    """Each old text in the file, which must be there, replaced by its new one."""
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)

"""Helpers the tests share: the repository root, a disposable copy of it, the mlops command."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
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


def run_mlops_here(
    repo: Path, home: Path, *args: str, check: bool = True, extra_env: dict | None = None
) -> subprocess.CompletedProcess:
    """`mlops ARGS` as run_mlops runs it (same environment, folder and result), in this process:
    for verbs that start no server and read no input, such as `init`, where starting Python and
    importing is most of the cost. A traceback is raised here, failing the test."""
    from mlops import cli

    env = {"MLOPS_ROOT": str(repo), "MLOPS_HOME": str(home), "MLOPS_BACKEND": "local"}
    env.update(extra_env or {})
    saved = {name: os.environ.get(name) for name in (*env, "GITHUB_OUTPUT")}
    folder, out, err = os.getcwd(), io.StringIO(), io.StringIO()
    try:
        os.environ.pop("GITHUB_OUTPUT", None)  # tests must not write into a real Actions step
        os.environ.update(env)
        os.chdir(repo)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exit:  # argparse's refusals
                code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
    finally:
        os.chdir(folder)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    result = subprocess.CompletedProcess(["mlops", *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(
            f"mlops {' '.join(args)} exited {code}\n{result.stdout}\n{result.stderr}"
        )
    return result


def edit(path: Path, replacements: dict[str, str]) -> None:
    """Each old text in the file, which must be there, replaced by its new one."""
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)

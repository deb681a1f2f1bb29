"""A small model trained, registered and shared once, for the endpoint tests to deploy."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import copy_repo, run_mlops


@pytest.fixture(scope="session")
def shared_model(tmp_path_factory) -> tuple[Path, Path]:
    """(repo, home) with the model's version 1 in the shared registry and nothing running."""
    base = tmp_path_factory.mktemp("shared-model")
    repo, home = copy_repo(base / "repo"), base / "home"
    dev = repo / "environments" / "dev.yml"
    dev.write_text(dev.read_text().replace("n_estimators: 100", "n_estimators: 10"))
    outputs = base / "github-output"  # where train names its job, as for a workflow's next step
    run_mlops(repo, home, "train", "--env", "dev", extra_env={"GITHUB_OUTPUT": str(outputs)})
    job = outputs.read_text().split("job=")[-1].strip()
    run_mlops(repo, home, "register", "--env", "dev", "--job", job)
    run_mlops(repo, home, "share", "--env", "dev", "--model", "breast-cancer-classifier:1")
    return repo, home

"""Fixtures every test folder shares, and the markers that split the fast tier from the rest."""

from pathlib import Path

import pytest
from helpers import MODEL_DIR, ROOT, copy_repo

# Folders whose tests start servers or train: the rest is `unit` (make test-fast). A module
# may mark itself (pytestmark = pytest.mark.e2e) wherever it lives.
SLOW_FOLDERS = {"e2e": "e2e", "fork": "e2e", "azure": "azure"}
SLOW_MODULES = {
    "tests/github/test_rehearsal.py": "e2e",  # runs the workflows' verbs on the local backend
    "tests/infra/test_fork_projects.py": "e2e",  # renders forks, plans each stack, runs pytest
}
SLOW_MARKERS = set(SLOW_FOLDERS.values()) | set(SLOW_MODULES.values())


def pytest_collection_modifyitems(items):
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            continue
        path = Path(item.path).relative_to(ROOT)
        tier = SLOW_MODULES.get(path.as_posix()) or SLOW_FOLDERS.get(path.parts[1], "unit")
        item.add_marker(tier)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """The outputs of one in-process run of src/model/train.py (a small forest), shared by the
    unit tests that need a real model: training is the slow part of their set-up."""
    import train

    out = tmp_path_factory.mktemp("trained")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
    patch.chdir(out)  # the default experiment keeps its artifacts under the working folder
    try:
        data = MODEL_DIR / "data" / "breast_cancer.csv"
        argv = ["--data", str(data), "--output", str(out / "outputs"), "--n-estimators", "30"]
        assert train.main(argv) == 0
    finally:
        patch.undo()
    return out / "outputs"

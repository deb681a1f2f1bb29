"""Fixtures every test folder shares, and the markers that split the fast tier from the rest."""

import fcntl
import functools
import re
import shutil
from pathlib import Path

import pytest
from helpers import MODEL_DIR, ROOT, copy_repo

# Tiers by folder, then by module where one differs from its folder; everything else is `unit`
# (make test-fast). A test or module may mark itself (pytest.mark.e2e) wherever it lives.
TIER_OF_FOLDER = {"e2e": "e2e", "fork": "e2e", "azure": "azure", "infra": "pulumi"}
TIER_OF_MODULE = {
    "tests/github/test_actions_engine.py": "e2e",  # runs the workflows under act, locally
    "tests/infra/test_fork_projects.py": "e2e",  # renders forks, plans each stack, runs pytest
    "tests/infra/test_policy.py": "unit",  # calls the policy pack's validators, no program
    # each monitor starts the model code's labelled.py and draws the report's charts
    "tests/mlops/test_feedback_monitor.py": "e2e",
}
TIERS = ("unit", "e2e", "azure", "pulumi")
LONGEST_FIRST = ("e2e", "pulumi", "azure", "unit")


def tier_of(path: Path) -> str:
    """The tier of a test file or folder under tests/ (unit unless listed above)."""
    parts = path.relative_to(ROOT).parts if path.is_relative_to(ROOT / "tests") else ()
    folder = parts[1] if len(parts) > 2 or (len(parts) == 2 and path.is_dir()) else ""
    return TIER_OF_MODULE.get("/".join(parts)) or TIER_OF_FOLDER.get(folder, "unit")


def pytest_ignore_collect(collection_path: Path, config):
    """With `-m unit` (make test-fast), files and folders of other tiers are not even imported:
    importing the Azure SDK, MLflow's servers and Pulumi's providers is most of their cost."""
    if config.getoption("markexpr") != "unit" or collection_path.name == "conftest.py":
        return None
    if collection_path.is_dir():
        tier = tier_of(collection_path)
        mixed = any(
            module.startswith(f"tests/{collection_path.name}/") for module in TIER_OF_MODULE
        )
        return True if tier != "unit" and not mixed else None
    if collection_path.name.startswith("test_") and collection_path.suffix == ".py":
        return True if tier_of(collection_path) != "unit" else None
    return None


def pytest_collection_modifyitems(items):
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        # tests/infra/conftest.py's `stacks` runs every stack's program, wherever it is used
        item.add_marker("pulumi" if "stacks" in item.fixturenames else tier_of(Path(item.path)))
    # The longest work first, so no worker is left with a long module at the end: the users of
    # a costly session fixture, then the tiers that run the lifecycle, then the rest.
    items.sort(
        key=lambda item: (
            _costly_fixture_of(item.nodeid.split("::", 1)[0]) is None,
            min(LONGEST_FIRST.index(m.name) for m in item.iter_markers() if m.name in TIERS),
        )
    )


# Session fixtures that cost seconds to make: the modules that use one go to one worker
# together (below), so each is made once per run.
COSTLY_FIXTURES = {"stacks": "the stacks' plan", "trained_model": "the trained model"}


@pytest.hookimpl(optionalhook=True)  # absent when xdist is off (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """make test spreads the tests over the cores (pytest-xdist, --dist loadscope) in whole
    modules, so a module's fixtures are made once, and the modules that use one costly
    session fixture in one unit."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WholeModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return _costly_fixture_of(module) or module

    return WholeModules(config, log)


@functools.cache
def _costly_fixture_of(module: str) -> str | None:
    """The costly fixture a test module uses, read from its source (the controller process
    of pytest-xdist collects no tests)."""
    path = ROOT / module
    text = path.read_text() if path.is_file() else ""
    used = [name for name in COSTLY_FIXTURES if re.search(rf"def \w+\([^)]*\b{name}\b", text)]
    return COSTLY_FIXTURES[used[0]] if used else None


@pytest.fixture(scope="session")
def session_folder(tmp_path_factory, worker_id: str) -> Path:
    """A folder every test process of this run shares (pytest-xdist gives each worker its own
    base folder, beside the others): for work one worker does and the others reuse."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def trained_model(session_folder: Path) -> Path:
    """The outputs of one in-process run of src/model/train.py (a small forest), shared by the
    unit tests that need a real model: training is the slow part of their set-up. One worker
    of the session trains it; the others wait for it and read the same outputs."""
    import train

    out = session_folder / "trained"
    with open(session_folder / "trained.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (out / "done").is_file():
            shutil.rmtree(out, ignore_errors=True)  # a run that died half-way
            out.mkdir()
            patch = pytest.MonkeyPatch()
            patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
            patch.chdir(out)  # the default experiment keeps its artifacts under the working folder
            try:
                data = MODEL_DIR / "data" / "breast_cancer.csv"
                argv = [
                    "--data",
                    str(data),
                    "--output",
                    str(out / "outputs"),
                    "--n-estimators",
                    "30",
                ]
                assert train.main(argv) == 0
            finally:
                patch.undo()
            (out / "done").touch()
    return out / "outputs"

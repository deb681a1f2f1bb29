"""The local training pipeline: prep, train and evaluate as separate processes, a step skipped
when its inputs are unchanged, one MLflow run per job with the evaluate step's record."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from features import FEATURES
from helpers import copy_repo, edit, env_setting
from mlflow import MlflowClient

from mlops import lifecycle
from mlops.errors import MlopsError
from mlops.progress import Progress

MODEL = env_setting("dev", "model.name")
SMALL = {"n_estimators: 100": "n_estimators: 8", "max_depth: 8": "max_depth: 4"}
YEAR_END = datetime(datetime.now(UTC).year, 12, 31, 23, 59, 50, tzinfo=UTC)
STARTS = (YEAR_END, YEAR_END + timedelta(minutes=1), YEAR_END + timedelta(minutes=2))


class Recorder:
    """subprocess.call as the backend uses it, each command recorded before it runs."""

    def __init__(self):
        self.real, self.commands = subprocess.call, []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        return self.real(command, **kwargs)

    def scripts(self, since: int = 0) -> list[str]:
        return [command[1].rsplit("/", 1)[-1] for command in self.commands[since:]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three trainings in one home: a small forest, the same again, then fewer trees. The
    first starts just before a year ends (UTC), the other two in the new year: the clock
    moves, the cache key does not."""
    base = tmp_path_factory.mktemp("pipeline")
    repo, home = copy_repo(base / "repo"), base / "home"
    dev = repo / "environments" / "dev.yml"
    edit(dev, SMALL)
    said = io.StringIO()
    ctx = lifecycle.Context(repo, home, "local", Progress(said))
    calls = Recorder()
    patch = pytest.MonkeyPatch()
    patch.setattr(subprocess, "call", calls)
    try:
        jobs, printed, counts = [], [], []
        for change, started in zip(
            ({}, {}, {"n_estimators: 8": "n_estimators: 6"}), STARTS, strict=True
        ):
            edit(dev, change)
            start = said.tell()
            with time_machine.travel(started, tick=True):
                jobs.append(lifecycle.train(ctx, "dev"))
            printed.append(said.getvalue()[start:])
            counts.append(len(calls.commands))
    finally:
        patch.undo()
    return repo, home, jobs, printed, calls, counts


def test_each_step_runs_as_its_own_process_in_order(world):
    repo, home, jobs, printed, calls, counts = world
    assert calls.scripts()[: counts[0]] == ["prep.py", "train.py", "evaluate.py"]
    assert all(command[0] == sys.executable for command in calls.commands)
    job_dir = home / "dev" / "jobs" / jobs[0].id
    for step, output in (("prep", "prepared"), ("train", "model"), ("evaluate", "evaluation")):
        assert (job_dir / step / output).is_dir() and (job_dir / f"{step}.log").is_file()
    assert "step prep: ran" in printed[0] and "step evaluate: ran" in printed[0]


def test_an_unchanged_run_skips_every_step_and_says_so(world):
    repo, home, jobs, printed, calls, counts = world
    assert counts[1] == counts[0], "no step process started the second time"
    for step in ("prep", "train", "evaluate"):
        assert (
            f"step {step}: reused the outputs of job {jobs[0].id} (inputs unchanged)"
            in (printed[1])
        )
    assert jobs[1].id != jobs[0].id and jobs[1].run_id != jobs[0].run_id, "a job, a run"
    # job ids carry their UTC start, so they sort as the jobs ran, across the year's end
    assert [job.id.split("-")[-3] for job in jobs] == [f"{t:%Y%m%d}" for t in STARTS]
    assert sorted(job.id for job in jobs) == [job.id for job in jobs]
    assert (jobs[1].metrics, jobs[1].artifact_sha256) == (jobs[0].metrics, jobs[0].artifact_sha256)
    second = home / "dev" / "jobs" / jobs[1].id
    assert (second / "train" / "model" / "model" / "model.onnx").is_file(), "outputs in the job"


def test_a_changed_parameter_reruns_train_and_evaluate_but_not_prep(world):
    repo, home, jobs, printed, calls, counts = world
    assert calls.scripts(counts[1]) == ["train.py", "evaluate.py"]
    assert f"step prep: reused the outputs of job {jobs[0].id}" in printed[2]
    assert jobs[2].params["n_estimators"] == "6"
    assert jobs[2].artifact_sha256 != jobs[0].artifact_sha256


def test_the_run_holds_the_evaluate_steps_record_importances_and_charts(world):
    repo, home, jobs, printed, calls, counts = world
    client = MlflowClient(f"sqlite:///{home / 'dev' / 'mlflow.db'}")
    for job in jobs[:2]:  # the reused evaluate step fills its job's run the same way
        run = client.get_run(job.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.metrics == job.metrics
        assert {
            k.removeprefix("importance.") for k in run.data.tags if k.startswith("importance.")
        } == set(FEATURES)
        assert job.importances == {
            k.removeprefix("importance."): v
            for k, v in run.data.tags.items()
            if k.startswith("importance.")
        }
        listed = {a.path for a in client.list_artifacts(job.run_id)}
        assert {"roc_curve.png", "importance.png", "model"} <= listed
    assert jobs[1].importances == jobs[0].importances, "same seed, same figures"
    model = lifecycle.register(
        lifecycle.Context(repo, home, "local", Progress(io.StringIO())), "dev", jobs[2].id
    )
    assert model.importances and list(model.importances) == sorted(
        model.importances, key=lambda f: -model.importances[f]
    )


def test_a_parameter_no_step_takes_is_refused_before_anything_runs(tmp_path):
    repo, home = copy_repo(tmp_path / "repo"), tmp_path / "home"
    dev = repo / "environments" / "dev.yml"
    edit(dev, {"  params:\n": "  params:\n    learning_rate: 0.1\n"})
    ctx = lifecycle.Context(repo, home, "local", Progress(io.StringIO()))
    with pytest.raises(
        MlopsError, match=r"training.params.learning_rate is an input of no pipeline step"
    ):
        lifecycle.train(ctx, "dev")
    assert not (home / "dev" / "jobs").exists()

"""What the azure tests share: real training runs for the double's jobs, a lifecycle on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_azure import CI_PERSONA, FakeAzure, FakeCredential, TrainedRun
from helpers import MODEL_DIR

from mlops import config, lifecycle
from mlops.backends.azure.backend import AzureBackend
from mlops.config import ENVIRONMENTS
from mlops.context import Context
from mlops.progress import Progress

DATA = MODEL_DIR / "data" / "breast_cancer.csv"


class Trainer:
    """Runs src/model/train.py as an Azure ML job would, once per set of flags, and reads the
    tags its MLflow run set: those are the job's tags on Azure (a job is its MLflow run)."""

    def __init__(self, folder: Path):
        self.folder, self.runs = folder, {}

    def __call__(self, flags: dict[str, str]) -> TrainedRun:
        key = tuple(sorted(flags.items()))
        if key not in self.runs:
            self.runs[key] = self._train(flags, self.folder / f"run-{len(self.runs)}")
        return self.runs[key]

    def _train(self, flags: dict[str, str], out: Path) -> TrainedRun:
        import mlflow

        out.mkdir(parents=True)
        tracking = f"sqlite:///{out / 'mlflow.db'}"
        argv = [sys.executable, str(MODEL_DIR / "train.py"), "--data", str(DATA)]
        argv += ["--output", str(out / "outputs")] + [f"--{k}={v}" for k, v in flags.items()]
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
        done = subprocess.run(argv, cwd=out, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        (run,) = mlflow.MlflowClient(tracking).search_runs(
            [mlflow.MlflowClient(tracking).get_experiment_by_name("Default").experiment_id]
        )
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        return TrainedRun(tags, out / "outputs" / "model")


class DoubleBackends:
    """Opens each environment's azure backend on the double, signed in as `identities` says
    (default: the identity that environment's CI job uses)."""

    def __init__(self, fake: FakeAzure, root: Path, home: Path):
        self.fake, self.root, self.home = fake, root, home
        self.identities: dict[str, tuple[str, str]] = {}

    def __call__(self, config) -> AzureBackend:
        persona, of_env = self.identities.get(config.name, (CI_PERSONA, config.name))
        return AzureBackend(
            config,
            self.root,
            self.home,
            azure_credential=FakeCredential(persona, of_env),
            transport=self.fake,
            poll_seconds=0,
        )


def sign_in(ctx: Context, fake: FakeAzure, env: str, persona: str, of_env: str | None = None):
    """Let env's verbs run as another identity: e.g. monitor.yml's, or (of_env) the identity of
    another environment's job, as when preprod's job reads prod's champion."""
    ctx.backend_factory.identities[env] = (persona, of_env or env)
    ctx.reopen(env)


def azure_context(fake: FakeAzure, root: Path, home: Path) -> Context:
    """The lifecycle as the command line builds it, each environment's backend on the double,
    each signed in as the identity its CI job uses."""
    for env in ENVIRONMENTS:
        fake.add_workspace(config.load(env, root).azure["workspace"], env)
    backends = DoubleBackends(fake, root, home)
    return Context(root, home, "azure", Progress(), backend_factory=backends)


def release_to_registry(ctx: Context):
    """What release.yml's train job does: train, register that job, share that version."""
    job = lifecycle.train(ctx, "dev")
    registered = lifecycle.register(ctx, "dev", job.id)
    return lifecycle.share(ctx, "dev", registered.ref)

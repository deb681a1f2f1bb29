"""What the azure tests share: real training runs for the double's jobs, a lifecycle on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_azure import CI_PERSONA, FakeAzure, FakeCredential, TrainedRun
from helpers import MODEL_DIR

from mlops import lifecycle
from mlops.backends.azure.backend import AzureBackend
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


def sign_in(
    ctx: lifecycle.Context, fake: FakeAzure, env: str, persona: str, of_env: str | None = None
) -> None:
    """Let env's verbs run as another identity: e.g. monitor.yml's, or (of_env) the identity of
    another environment's job, as when preprod's job reads prod's champion."""
    ctx._backends[env] = AzureBackend(
        ctx.config(env),
        ctx.root,
        ctx.home,
        azure_credential=FakeCredential(persona, of_env or env),
        transport=fake,
        poll_seconds=0,
    )


def azure_context(fake: FakeAzure, root: Path, home: Path) -> lifecycle.Context:
    """The lifecycle as the command line builds it, each environment's backend on the double,
    each signed in as the identity its CI job uses."""
    context = lifecycle.Context(root=root, home=home, backend_name="azure", progress=Progress())
    for env in ("dev", "preprod", "prod"):
        config = context.config(env)
        fake.add_workspace(config.azure["workspace"], env)
        context._backends[env] = AzureBackend(
            config,
            root,
            home,
            azure_credential=FakeCredential(CI_PERSONA, env),
            transport=fake,
            poll_seconds=0,
        )
    return context


def release_to_registry(ctx: lifecycle.Context):
    """What release.yml's train job does: train, register that job, share that version."""
    job = lifecycle.train(ctx, "dev")
    registered = lifecycle.register(ctx, "dev", job.id)
    return lifecycle.share(ctx, "dev", registered.ref)

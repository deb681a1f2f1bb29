"""What the azure tests share: real runs of the pipeline's steps for the double's jobs, a
lifecycle on it."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from fake_azure import CI_PERSONA, FakeAzure, FakeCredential, StagedFile, StepRun
from helpers import MODEL_DIR

from mlops import config, lifecycle
from mlops.backends.azure.backend import AzureBackend
from mlops.config import ENVIRONMENTS
from mlops.context import Context
from mlops.progress import Progress


class StepRunner:
    """Runs a pipeline step's component command as its Azure ML child job would: the real
    src/model script in its own process, with an MLflow tracking URI set (as Azure ML sets one
    in every job), and reads the tags its run set, if it logged one. A step already run in this
    test session with the same reuse key is not run again, by any test process (the double
    still decides, per workspace, whether Azure would reuse it): folder is shared by the
    session's workers, and a lock per key lets one of them run it while the others wait."""

    def __init__(self, folder: Path):
        self.folder, self.done = folder, {}

    def __call__(self, key: str, component: dict, inputs: dict[str, object]) -> StepRun:
        if key not in self.done:
            self.done[key] = self._once(key, component, inputs)
        return self.done[key]

    def _once(self, key: str, component: dict, inputs: dict[str, object]) -> StepRun:
        out = self.folder / key[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{key[:16]}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            record = out / "step-run.json"
            if not record.is_file():
                run = self._run(out, component, inputs)
                record.write_text(json.dumps(asdict(run), default=str))  # paths as text
            made = json.loads(record.read_text())
        outputs = {name: Path(folder) for name, folder in made["outputs"].items()}
        return StepRun(outputs, made["tags"], made["failed"])

    def _run(self, out: Path, component: dict, inputs: dict[str, object]) -> StepRun:
        import mlflow

        out.mkdir(parents=True)
        command = component["command"]
        for name, value in {**_defaults(component), **inputs}.items():
            local = _local(value, self.folder / "mounted")
            command = command.replace(f"${{{{inputs.{name}}}}}", shlex.quote(local))
        outputs = {name: out / name for name in component.get("outputs") or {}}
        for name, folder in outputs.items():
            folder.mkdir()
            command = command.replace(f"${{{{outputs.{name}}}}}", shlex.quote(str(folder)))
        argv = shlex.split(command)
        assert argv[0] == "python", command
        tracking = f"sqlite:///{out / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
        done = subprocess.run(
            [sys.executable, *argv[1:]],
            cwd=MODEL_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            return StepRun(outputs, failed=done.stderr[-2000:])
        client = mlflow.MlflowClient(tracking)
        default = (
            client.get_experiment_by_name("Default") if (out / "mlflow.db").is_file() else None
        )
        runs = client.search_runs([default.experiment_id]) if default else []
        tags = {
            k: v for run in runs for k, v in run.data.tags.items() if not k.startswith("mlflow.")
        }
        return StepRun(outputs, tags)


def _defaults(component: dict) -> dict[str, object]:
    return {k: v["default"] for k, v in (component.get("inputs") or {}).items() if "default" in v}


def _local(value: object, folder: Path) -> str:
    """A value as the command line gets it; a mounted file written where the step can read it."""
    if isinstance(value, StagedFile):
        path = folder / hashlib.sha256(value.content).hexdigest()[:16] / value.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file():  # whole or absent: another worker may be reading it
            staging = path.with_name(f".{value.name}.{os.getpid()}")
            staging.write_bytes(value.content)
            staging.replace(path)
        return str(path)
    return str(value)


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
        azure = config.load(env, root).azure
        fake.add_workspace(azure["workspace"], env, azure["resource_group"])
    backends = DoubleBackends(fake, root, home)
    return Context(root, home, "azure", Progress(), backend_factory=backends)


def release_to_registry(ctx: Context):
    """What release.yml's train job does: train, register that job, share that version."""
    job = lifecycle.train(ctx, "dev")
    registered = lifecycle.register(ctx, "dev", job.id)
    return lifecycle.share(ctx, "dev", registered.ref)

"""Training jobs on this machine: the pipeline's steps (backends/steps.py) run in order, one
process each, tracked as one run in the environment's MLflow.

Each job's folder, <env>/jobs/<job>/, holds every step's outputs (<step>/<output>/) and log
(<step>.log). A step whose inputs are unchanged is not run again: its key hashes the code
snapshot (as Azure ML's reuse compares snapshots), its component file, its parameters and
its inputs (a file's bytes, or the key of the step that made a folder), and the step cache
<env>/steps/<key>/ keeps the outputs of the run that made them. The MLflow tracking store is
<env>/mlflow.db with artifacts under <env>/artifacts/.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from mlops import clock, lineage
from mlops.backends import steps
from mlops.backends.base import Job, TrainingSpec
from mlops.backends.local import processes, state_files
from mlops.errors import MlopsError
from mlops.state import StateUnreadable, private_file, read_checked, read_json, write_json

IGNORE_FILE = ".amlignore"  # what the code snapshot leaves out, as the Azure ML upload does


class LocalJobs:
    """The training part of LocalBackend (which provides dir, env and say)."""

    def _mlflow(self):
        from mlflow import MlflowClient

        self.dir.mkdir(parents=True, exist_ok=True)
        uri = self.tracking_uri
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # creates the store
        private_file(self.dir / "mlflow.db")
        return client

    def _has_store(self) -> bool:
        # a lookup in an environment that never trained has nothing to find, and creating the
        # store (seconds of schema migrations) only to search it empty would leave state behind
        return (self.dir / "mlflow.db").is_file()

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.dir / 'mlflow.db'}"

    def _experiment_id(self, client, name: str) -> str:
        existing = client.get_experiment_by_name(name)
        if existing:
            return existing.experiment_id
        return client.create_experiment(name, artifact_location=(self.dir / "artifacts").as_uri())

    def run_training_job(self, spec: TrainingSpec) -> Job:
        """The steps in order, each a process (or its earlier outputs, when its inputs are
        unchanged), then their record logged into one run made for the job beforehand, as
        Azure ML makes a job's run with the tags the job was submitted with."""
        components = steps.load(Path(spec.code_dir))
        step_params = steps.parameters(components, spec.params)
        client = self._mlflow()
        experiment_id = self._experiment_id(client, spec.experiment)
        run_id = client.create_run(experiment_id, tags=lineage.spec_tags(spec)).info.run_id
        job_id = f"{spec.experiment}-{clock.stamp()}-{uuid.uuid4().hex[:6]}"
        job_dir = self.dir / "jobs" / job_id
        job_dir.mkdir(parents=True)
        snapshot = code_snapshot_sha256(Path(spec.code_dir))
        keys: dict[str, str] = {}
        reused: dict[str, str | None] = {}
        try:
            for name, component in components.items():
                inputs = {
                    source: (job_dir / step / output, keys[step])
                    for source, (step, output) in steps.WIRING[name].items()
                }
                if name == steps.DATA_INPUT[0]:
                    data = Path(spec.data_path)
                    inputs[steps.DATA_INPUT[1]] = (data, lineage.sha256_of(data))
                values = {**_defaults(component), **step_params[name]}
                keys[name] = _step_key(component, snapshot, values, inputs)
                reused[name] = self._run_step(
                    component, job_id, job_dir, keys[name], inputs, values
                )
            evaluated = job_dir.joinpath(*steps.RECORD_OUTPUT)
            model_dir = job_dir.joinpath(*steps.MODEL_OUTPUT) / "model"
            _log_record(client, run_id, evaluated, model_dir)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            write_json(job_dir / "job.json", {"id": job_id, "run_id": run_id, "status": "Failed"})
            raise
        client.set_terminated(run_id, "FINISHED")
        write_json(
            job_dir / "job.json",
            {"id": job_id, "run_id": run_id, "status": "Completed", "steps": reused, "keys": keys},
        )
        return self.get_job(job_id)

    def _run_step(
        self,
        component: steps.Component,
        job_id: str,
        job_dir: Path,
        key: str,
        inputs: dict[str, tuple[Path, str]],
        values: dict[str, object],
    ) -> str | None:
        """The step's outputs in job_dir/<step>/: copied from the cache when an earlier run had
        the same key (the job that made them is returned), else made by running its command."""
        name, cached = component.name, self.dir / "steps" / key
        damaged = False
        try:  # a damaged cache entry is made again, never trusted
            made = read_checked(cached / "step.json", state_files.checked_step)
        except StateUnreadable:
            made, damaged = None, True
        if made is not None and all((cached / output).is_dir() for output in component.outputs):
            for output in component.outputs:
                shutil.copytree(cached / output, job_dir / name / output)
            self.say(f"step {name}: reused the outputs of job {made['job']} (inputs unchanged)")
            return made["job"]
        started = time.monotonic()
        outputs = {output: job_dir / name / output for output in component.outputs}
        for folder in outputs.values():
            folder.mkdir(parents=True)
        command = _command(component, {k: v[0] for k, v in inputs.items()}, values, outputs)
        log_path = job_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            for variable in ("MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID"):
                env.pop(variable, None)  # the backend logs the run; a step never does here
            code = subprocess.call(
                command,
                cwd=component.path.parent.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if code == STEP_REFUSED and (sentence := refusal_of(log_path)):
            raise MlopsError(f"training job {job_id}, step {name}: {sentence} (log: {log_path})")
        if code != 0:
            raise MlopsError(
                f"training job {job_id} failed in step {name} (exit {code}); its log is "
                f"{log_path}:\n" + processes.tail(log_path, 15)
            )
        staging = cached.with_name(f".{key}.{uuid.uuid4().hex[:6]}")
        for output, folder in outputs.items():
            shutil.copytree(folder, staging / output)
        write_json(staging / "step.json", {"job": job_id, "step": name})
        if made is not None or damaged:  # replaced, never half-trusted
            shutil.rmtree(cached, ignore_errors=True)
        try:
            staging.rename(cached)  # whole or not at all; a concurrent twin may have won
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
        self.say(f"step {name}: ran in {time.monotonic() - started:.0f}s")
        return None

    def get_job(self, job_id: str) -> Job:
        data = read_checked(self.dir / "jobs" / job_id / "job.json", state_files.checked_job)
        if data is None:
            raise MlopsError(f"no job {job_id!r} in {self.env}")
        if data.get("status") != "Completed" or not data.get("run_id"):
            raise MlopsError(f"job {job_id} did not complete; it cannot be registered")
        tags = self._mlflow().get_run(data["run_id"]).data.tags
        return lineage.job_from_run_tags(job_id, data["run_id"], tags)


def _defaults(component: steps.Component) -> dict[str, object]:
    return {
        name: spec["default"]
        for name, spec in component.inputs.items()
        if isinstance(spec, dict) and "default" in spec
    }


def _step_key(
    component: steps.Component,
    snapshot: str,
    values: dict[str, object],
    inputs: dict[str, tuple[Path, str]],
) -> str:
    """What decides a step's outputs: code, component, parameters and inputs, hashed."""
    facts = {
        "step": component.name,
        "code": snapshot,
        "component": lineage.sha256_of(component.path),
        "parameters": {k: str(v) for k, v in values.items()},
        "inputs": {k: digest for k, (_, digest) in inputs.items()},
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _command(
    component: steps.Component,
    inputs: dict[str, Path],
    values: dict[str, object],
    outputs: dict[str, Path],
) -> list[str]:
    """The component's command with its ${{inputs.X}} and ${{outputs.Y}} filled in, run by
    this interpreter."""
    text = component.command
    for name, path in inputs.items():
        text = text.replace(f"${{{{inputs.{name}}}}}", shlex.quote(str(path)))
    for name, value in values.items():
        text = text.replace(f"${{{{inputs.{name}}}}}", shlex.quote(str(value)))
    for name, path in outputs.items():
        text = text.replace(f"${{{{outputs.{name}}}}}", shlex.quote(str(path)))
    if "${{" in text:
        unbound = text[text.index("${{") :].split("}}")[0] + "}}"
        raise MlopsError(f"{component.path}: {unbound} is bound to nothing")
    argv = shlex.split(text)
    if argv[:1] != ["python"]:
        raise MlopsError(f"{component.path}: the command must start with `python`")
    return [sys.executable, *argv[1:]]


def _log_record(client, run_id: str, evaluated: Path, model_dir: Path) -> None:
    """The evaluate step's record into the job's run: parameters, metrics, lineage tags, the
    charts and the model, whether the step ran now or its outputs were reused."""
    from mlflow.entities import Metric, Param, RunTag

    record = read_json(evaluated / steps.RECORD_FILE)
    if not isinstance(record, dict) or not {"params", "metrics", "tags", "charts"} <= set(record):
        raise MlopsError(f"{evaluated / steps.RECORD_FILE}: not the evaluate step's record")
    now = int(clock.now().timestamp() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in record["metrics"].items()],
        params=[Param(k, str(v)) for k, v in record["params"].items()],
        tags=[RunTag(k, str(v)) for k, v in record["tags"].items()],
    )
    for chart in record["charts"]:
        client.log_artifact(run_id, str(evaluated / chart))
    client.log_artifacts(run_id, str(model_dir), artifact_path="model")


def code_snapshot_sha256(code_dir: Path) -> str:
    """The model code as a job uploads it (.amlignore's patterns left out), hashed by path
    and bytes: any change to it reruns every step, as a new snapshot does on Azure ML."""
    ignore_file = code_dir / IGNORE_FILE
    patterns = []
    if ignore_file.is_file():
        for line in ignore_file.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line.rstrip("/"))
    digest = hashlib.sha256()
    for path in sorted(p for p in code_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(code_dir)
        if any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in patterns):
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(lineage.sha256_of(path).encode())
    return digest.hexdigest()


STEP_REFUSED = 2  # a step's exit for input it refuses (src/model: prep, train, evaluate)


def refusal_of(log_path: Path) -> str | None:
    """The one sentence a step that refused its input said last (`error: ...`), if any."""
    said = [
        line.removeprefix("error: ").strip()
        for line in log_path.read_text(errors="replace").splitlines()
        if line.startswith("error: ")
    ]
    return said[-1] if said else None

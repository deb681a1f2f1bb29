"""Training jobs on Azure ML: a pipeline job of three components (backends/steps.py: prep,
train, evaluate, each defined once in src/model/components/) on the environment's compute.
The software environment is registered as an asset versioned by content hash, so an unchanged
file is never registered again; the training data is a data asset version (mlops.data), named
by the spec, the pipeline's input. The components are deterministic and
the pipeline does not force a rerun, so Azure ML reuses a step whose code, environment,
inputs and parameters are unchanged (docs: how-to-debug-pipeline-reuse-issues).

A pipeline job's steps are child jobs, each its own MLflow run. The lineage is the evaluate
step's run: its tags (set by src/model/evaluate.py), read from the child listed under the
pipeline job (ml.jobs.list(parent_job_name=...), which asks run history for the run's
children: azure/ai/ml/operations/_job_operations.py `list`, _run_operations.py
`get_run_children`), or from the job it reused (properties azureml.isreused and
azureml.reusedrunid, azure/ai/ml/constants/_job/pipeline.py; the SDK's own `download`
follows them the same way).
"""

from __future__ import annotations

import time
from pathlib import Path

from mlops import lineage
from mlops.backends import steps
from mlops.backends.base import Job, TrainingSpec
from mlops.errors import MlopsError
from mlops.paths import MODEL_CODE

# A dated tag, not :latest, so a rebuilt image is the same image (newer tags: MCR).
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20250601.v1"
CONDA_FILE = MODEL_CODE / "environment" / "conda.yml"
# Where waiting ends (REST spec JobStatus): a paused job waits for a person, not for us.
TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding", "Paused"}
# How Azure ML marks a pipeline step that reused an earlier job's outputs (SDK constants,
# azure/ai/ml/constants/_job/pipeline.py PipelineConstants.REUSED_FLAG_FIELD/REUSED_JOB_ID).
REUSED_FLAG, REUSED_JOB = "azureml.isreused", "azureml.reusedrunid"


def content_version(path: Path) -> str:
    """An asset version that changes exactly when the file's bytes do."""
    return lineage.sha256_of(path)[:16]


class AzureJobs:
    """The training part of AzureBackend (which provides ml, settings, config, root, env,
    say and poll_seconds)."""

    # ---- assets versioned by content ---------------------------------------------

    def ensure_environment(self):
        from azure.ai.ml.entities import Environment
        from azure.core.exceptions import ResourceNotFoundError

        conda = self.root / CONDA_FILE
        name, version = f"{self.config.model_name}-env", content_version(conda)
        try:
            return self.ml.environments.get(name, version)
        except ResourceNotFoundError:
            self.say(f"registering environment {name}:{version} from {CONDA_FILE}")
            return self.ml.environments.create_or_update(
                Environment(name=name, version=version, image=BASE_IMAGE, conda_file=str(conda))
            )

    # ---- training -----------------------------------------------------------------

    def run_training_job(self, spec: TrainingSpec) -> Job:
        job = self.ml.jobs.create_or_update(self.training_pipeline(spec))
        self.say(f"submitted pipeline job {job.name}: {job.studio_url}")
        final = self._wait(job.name)
        if _status(final) != "Completed":
            raise MlopsError(
                f"training job {final.name} ended {_status(final)}; its logs are at "
                f"{final.studio_url} (or: az ml job stream --name {final.name})"
            )
        for child in self._steps_of(final.name).values():
            reused = (child.properties or {}).get(REUSED_FLAG) == "true"
            self.say(
                f"step {child.display_name}: "
                + (f"reused job {child.properties.get(REUSED_JOB)}" if reused else "ran")
            )
        return self.get_job(final.name)

    def training_pipeline(self, spec: TrainingSpec):
        """The pipeline job: each step's component from src/model/components/, on the pinned
        registered environment, wired as steps.WIRING says, on the environment's compute."""
        from azure.ai.ml import Input, load_component
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.dsl import pipeline

        components = steps.load(Path(spec.code_dir))
        values = steps.parameters(components, spec.params)
        environment = self.ensure_environment()
        pinned = [{"environment": f"azureml:{environment.name}:{environment.version}"}]
        loaded = {
            name: load_component(source=component.path, params_override=pinned)
            for name, component in components.items()
        }

        @pipeline(name="training", default_compute=self.settings.compute)
        def training(raw_data):
            nodes = {}
            for name, component in loaded.items():
                inputs = dict(values[name])
                for source, (step, output) in steps.WIRING[name].items():
                    inputs[source] = nodes[step].outputs[output]
                if name == steps.DATA_INPUT[0]:
                    inputs[steps.DATA_INPUT[1]] = raw_data
                nodes[name] = component(**inputs)
                nodes[name].name = name  # what a later step's binding names
                nodes[name].display_name = name  # how the step's child job is found again
            # the pipeline's own outputs: register reads azureml://jobs/<job>/outputs/model
            return {
                name: nodes[step].outputs[output]
                for name, (step, output) in steps.PIPELINE_OUTPUTS.items()
            }

        # the data asset version train resolved, never the file beside the code
        data = f"azureml:{spec.data_asset}:{spec.data_version}"
        job = training(raw_data=Input(type=AssetTypes.URI_FILE, path=data))
        job.experiment_name = spec.experiment
        job.tags = lineage.spec_tags(spec)  # commit and data version; the steps' runs add the rest
        job.settings.force_rerun = False  # unchanged deterministic steps are reused
        return job

    def _wait(self, name: str):
        """Poll in short steps: each call fetches a token, so no login outlives its assertion."""
        started, last = time.monotonic(), None
        while True:
            job = self.ml.jobs.get(name)
            status = _status(job)
            if status != last:
                self.say(f"job {name}: {status} after {time.monotonic() - started:.0f}s")
                last = status
            if status in TERMINAL:
                return job
            time.sleep(self.poll_seconds)

    def get_job(self, job_id: str) -> Job:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            job = self.ml.jobs.get(job_id)
        except ResourceNotFoundError:
            raise MlopsError(f"no job {job_id!r} in {self.env}") from None
        if _status(job) != "Completed":
            raise MlopsError(
                f"job {job_id} is {_status(job)}; only completed jobs can be registered"
            )
        record = self._steps_of(job.name).get(steps.RECORD_STEP)
        if record is None:
            raise MlopsError(f"job {job_id} has no {steps.RECORD_STEP} step; is it a training job?")
        # a reused step shows the outputs, logs and metrics of the job it reused (docs:
        # how-to-debug-pipeline-reuse-issues); its lineage is that job's run's tags
        origin = (record.properties or {}).get(REUSED_JOB)
        if (record.properties or {}).get(REUSED_FLAG) == "true" and origin:
            record = self.ml.jobs.get(origin)
        # the commit and data version are the pipeline's tags, the rest its evaluate step's
        tags = {**dict(job.tags or {}), **dict(record.tags or {})}
        return lineage.job_from_run_tags(job.name, record.name, tags)

    def _steps_of(self, job_name: str) -> dict:
        """The pipeline job's child jobs by step (their display names, set at submission)."""
        return {child.display_name: child for child in self.ml.jobs.list(parent_job_name=job_name)}


def _status(job) -> str:
    """The job's status as Azure spells it (the SDK hands back an enum whose str() is its name)."""
    return str(getattr(job.status, "value", job.status))

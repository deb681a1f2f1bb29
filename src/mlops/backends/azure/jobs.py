"""Training jobs on Azure ML: a command job running src/model/train.py on the environment's
compute. The software environment is registered as an asset versioned by content hash, so an
unchanged file is never registered again; the training data is a data asset version
(mlops.data), named by the spec.
"""

from __future__ import annotations

import time
from pathlib import Path

from mlops import lineage
from mlops.backends.base import Job, TrainingSpec
from mlops.errors import MlopsError
from mlops.paths import MODEL_CODE

# A dated tag, not :latest, so a rebuilt image is the same image (newer tags: MCR).
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20250601.v1"
CONDA_FILE = MODEL_CODE / "environment" / "conda.yml"
# Where waiting ends (REST spec JobStatus): a paused job waits for a person, not for us.
TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding", "Paused"}


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
        from azure.ai.ml import Input, Output, command
        from azure.ai.ml.constants import AssetTypes

        environment = self.ensure_environment()
        flags = "".join(f" --{k.replace('_', '-')}={v}" for k, v in spec.params.items())
        job = command(
            code=spec.code_dir,
            command="python train.py --data ${{inputs.data}} --output ${{outputs.model}}" + flags,
            inputs={
                # the data asset version train resolved, never the file beside the code
                "data": Input(
                    type=AssetTypes.URI_FILE, path=f"azureml:{spec.data_asset}:{spec.data_version}"
                )
            },
            outputs={"model": Output(type=AssetTypes.URI_FOLDER)},
            environment=f"azureml:{environment.name}:{environment.version}",
            compute=self.settings.compute,
            experiment_name=spec.experiment,
            tags=lineage.spec_tags(spec),
        )
        submitted = self.ml.jobs.create_or_update(job)
        self.say(f"submitted job {submitted.name}: {submitted.studio_url}")
        final = self._wait(submitted.name)
        if _status(final) != "Completed":
            raise MlopsError(
                f"training job {final.name} ended {_status(final)}; its logs are at "
                f"{final.studio_url} (or: az ml job stream --name {final.name})"
            )
        return self.get_job(final.name)

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
        # an Azure ML job is its MLflow run: the run's tags are the job's tags
        return lineage.job_from_run_tags(job.name, job.name, dict(job.tags or {}))


def _status(job) -> str:
    """The job's status as Azure spells it (the SDK hands back an enum whose str() is its name)."""
    return str(getattr(job.status, "value", job.status))

"""The backend seam: what the lifecycle needs from a place that trains and serves models.

Spoken in Azure ML's terms (job, model, registry, endpoint, deployment, traffic)
so the azure backend maps onto it one to one. Backends offer primitive
operations only; every rule (reuse a version holding the same bytes, never
overwrite a shared version, the gate, rollout, promotion) is written once above.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from mlops.config import Autoscale

# Lineage tags every registered model carries (values are strings, as Azure ML tags are).
TAG_GIT = "git_commit"
TAG_DATA = "data_sha256"
TAG_RUN = "run_id"
TAG_JOB = "job_id"
TAG_ARTIFACT = "onnx_sha256"
TAG_DATA_ASSET = "data_asset"  # the training data asset's name and version (issue 19)
TAG_DATA_VERSION = "data_version"
METRIC_PREFIX = "metric."
PARAM_PREFIX = "param."
IMPORTANCE_PREFIX = "importance."  # permutation importance per feature, held-out rows
# each cohort's groups on held-out rows: cohort.<cohort>.<group>.<metric> (and .rows, .support),
# and the largest gap between groups, cohort_gap.<cohort>.<metric> (src/model/evaluate.py)
COHORT_PREFIX, GAP_PREFIX = "cohort.", "cohort_gap."
# Tags every data asset version carries: its bytes, its rows, where it came from.
DATA_SHA256, DATA_ROWS, DATA_SOURCE, DATA_PARENT = "sha256", "rows", "source", "parent"


@dataclass(frozen=True)
class TrainingSpec:
    """What to train: the code snapshot, its data and its hyperparameters."""

    code_dir: str
    data_path: str
    params: dict[str, object]
    experiment: str
    git_commit: str
    data_asset: str = ""  # the data asset version data_path holds, recorded on the run
    data_version: int | None = None


@dataclass(frozen=True)
class Job:
    """A completed training job, as its MLflow run's tags record it (lineage.job_from_run_tags)."""

    id: str
    run_id: str
    metrics: dict[str, float]
    params: dict[str, object]
    data_sha256: str
    artifact_sha256: str
    git_commit: str
    data_asset: str = ""  # empty for jobs run before data assets were versioned
    data_version: str = ""
    # permutation importance per feature on held-out rows (the evaluate step's), as recorded
    importances: dict[str, str] = field(default_factory=dict)
    # the cohort table's tags as recorded, whole (keys with their prefixes)
    cohort_tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataVersion:
    """One version of a data asset: a file whose sha256 and row count its tags record."""

    name: str
    version: int
    tags: dict[str, str]
    location: str  # the file locally, an asset id (azureml://...) on Azure

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def sha256(self) -> str:
        return self.tags.get(DATA_SHA256, "")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    tags: dict[str, str]
    artifact_sha256: str
    location: str  # where the bytes are: a folder locally, an asset id on Azure

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def metrics(self) -> dict[str, str]:
        """The metric tags as recorded (strings); the gate decides what counts as a number."""
        return {
            key[len(METRIC_PREFIX) :]: value
            for key, value in self.tags.items()
            if key.startswith(METRIC_PREFIX)
        }

    @property
    def importances(self) -> dict[str, float]:
        """Permutation importance per feature as recorded, most important first (empty when
        the model was trained before explanations, or a tag is not a number)."""
        found = {}
        for key, value in self.tags.items():
            if key.startswith(IMPORTANCE_PREFIX):
                try:
                    found[key[len(IMPORTANCE_PREFIX) :]] = float(value)
                except ValueError:
                    continue
        return dict(sorted(found.items(), key=lambda item: -item[1]))


@dataclass(frozen=True)
class EndpointStats:
    """What the endpoint measured itself over its last `window` requests (of `total` since its
    router started): answers by status class, latency percentiles over all of them."""

    requests: int
    total: int
    status_classes: dict[str, int]  # "2xx", "4xx", "5xx" -> count
    p50_ms: float
    p95_ms: float

    @property
    def error_rate(self) -> float:
        """The share of 5xx answers: the endpoint's own failures, not refused requests."""
        return self.status_classes.get("5xx", 0) / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Deployment:
    name: str
    model: str  # NAME:VERSION
    artifact_sha256: str
    state: str  # Succeeded | Failed
    autoscale: Autoscale | None = None  # as applied, where the backend records it


@dataclass(frozen=True)
class Endpoint:
    name: str
    scoring_uri: str
    traffic: dict[str, int]
    deployments: dict[str, Deployment] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    stats: EndpointStats | None = None  # measured by the endpoint, where the backend can tell

    @property
    def sole_deployment(self) -> Deployment | None:
        """The deployment taking all live traffic, or None when none or several take a share."""
        whole = [name for name, pct in self.traffic.items() if pct == 100]
        return self.deployments.get(whole[0]) if whole else None

    @property
    def live(self) -> str | None:
        """The deployment taking the most traffic, if any takes some."""
        serving = {name: pct for name, pct in self.traffic.items() if pct > 0}
        return max(serving, key=serving.get) if serving else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    deployment: str | None = None  # which deployment answered, when the backend says


@dataclass(frozen=True)
class BatchEndpoint:
    name: str
    default: str | None  # the deployment a job without one named runs on (defaults.deploymentName)
    deployments: dict[str, Deployment] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchJob:
    id: str
    status: str  # Completed | Failed | Canceled ...
    deployment: str
    outputs: str  # where the predictions and errors files are
    rows: int | None = None  # scored and refused rows, when the backend can tell
    refused: int | None = None


@dataclass(frozen=True)
class CollectedRecord:
    """One scored request as the endpoint collected it: the request id the client got back
    (x-request-id), when, which deployment and model answered, its input rows and, one per
    row, the answer the model gave that row."""

    request_id: str
    time: datetime
    deployment: str
    model: str
    rows: list[dict]
    answers: list[dict]


class DeploymentFailed(Exception):
    """A deployment did not come up; `logs` holds the tail of its log."""

    def __init__(self, message: str, logs: str = ""):
        super().__init__(message)
        self.logs = logs


class Backend(Protocol):
    env: str

    # training and models (the environment's workspace)
    def run_training_job(self, spec: TrainingSpec) -> Job: ...
    def get_job(self, job_id: str) -> Job: ...
    def list_model_versions(self, name: str) -> list[ModelVersion]: ...
    def create_model_version(self, job: Job, name: str, tags: dict[str, str]) -> ModelVersion:
        """Register the job's model output as the next version of `name`."""
        ...

    def get_registered_model(self, name: str, version: int) -> ModelVersion | None: ...

    # the registry shared by all environments
    def share_model(self, model: ModelVersion) -> ModelVersion:
        """Copy a registered version into the registry, same name and version (not there yet)."""
        ...

    def get_shared_model(self, name: str, version: int) -> ModelVersion | None: ...
    def list_shared_models(self, name: str) -> list[ModelVersion]: ...
    def tag_shared_model(self, model: ModelVersion, tags: dict[str, str]) -> ModelVersion:
        """Add (or change) tags of a shared version; its files and other tags stay as they are."""
        ...

    def download_model(self, model: ModelVersion, folder: Path) -> Path:
        """The shared version's model.onnx, copied under `folder`, its sha256 checked."""
        ...

    # data assets (the training environment's workspace): version numbers 1, 2, 3 ...
    def list_data_versions(self, name: str) -> list[DataVersion]: ...
    def get_data_version(self, name: str, version: int) -> DataVersion | None: ...
    def create_data_version(
        self, name: str, version: int, path: Path, tags: dict[str, str]
    ) -> DataVersion:
        """Register the file as this new version (refused if the version exists)."""
        ...

    def download_data(self, data: DataVersion, folder: Path) -> Path:
        """The version's file (a workspace's or the registry's), under `folder`, sha256 checked."""
        ...

    # data versions in the registry: a shared model's training data, for preprod and prod
    def share_data(self, data: DataVersion) -> DataVersion:
        """Copy a workspace data version into the registry, same name and version (not there)."""
        ...

    def get_shared_data(self, name: str, version: int) -> DataVersion | None: ...

    # online endpoints
    def get_endpoint(self, name: str) -> Endpoint | None: ...
    def create_endpoint(self, name: str) -> Endpoint: ...
    def create_deployment(
        self, endpoint: str, deployment: str, model: ModelVersion
    ) -> Deployment: ...
    def set_autoscale(self, endpoint: str, deployment: str, autoscale: Autoscale) -> None:
        """Make the deployment scale as said (it exists and takes no traffic yet)."""
        ...

    def remove_autoscale(self, endpoint: str, deployment: str) -> None:
        """Remove the deployment's autoscale setting, if it has one (idempotent)."""
        ...

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> Endpoint: ...
    def set_mirror(self, endpoint: str, mirror: dict[str, int]) -> Endpoint: ...
    def delete_deployment(self, endpoint: str, deployment: str) -> None: ...
    def deployment_logs(self, endpoint: str, deployment: str, lines: int = 40) -> str: ...
    def invoke(self, endpoint: str, body: bytes, deployment: str | None = None) -> Response: ...
    def scoring_target(self, endpoint: str) -> tuple[str, dict[str, str]]:
        """The scoring URL and the headers a client needs (e.g. the key), for load tests."""
        ...

    def owner_headers(self, endpoint: str) -> dict[str, str]:
        """Headers that mark a request as the lifecycle's own (its smoke tests and probes):
        added to scoring_target's for those requests only, and never handed to a client."""
        ...

    def serving_instances(self) -> int:
        """How many instances serve a deployment here."""
        ...

    def list_endpoints(self) -> list[Endpoint]:
        """Every endpoint, with the figures it measured itself (Endpoint.stats) if any."""
        ...

    def collected_rows(
        self, endpoint: str, model: str | None = None, since: datetime | None = None
    ) -> Iterator[dict[str, float]]:
        """The input rows clients sent the endpoint, oldest first, streamed: only those
        scored by model (NAME:VERSION) and collected since the given time, when given."""
        ...

    def collected_records(
        self,
        endpoint: str,
        model: str | None = None,
        since: datetime | None = None,
        request_ids: set[str] | None = None,
    ) -> Iterator[CollectedRecord]:
        """The live requests the endpoint collected, with their answers, on the same terms as
        collected_rows; request_ids, when given, keeps only those requests (labelled feedback
        reads a few among many). A record that cannot be read is left out."""
        ...

    def delete_endpoint(self, name: str) -> None: ...

    # batch endpoints: jobs that score files on a deployment's compute, which scales to zero
    def get_batch_endpoint(self, name: str) -> BatchEndpoint | None: ...
    def create_batch_endpoint(self, name: str) -> BatchEndpoint: ...
    def create_batch_deployment(
        self, endpoint: str, deployment: str, model: ModelVersion
    ) -> Deployment: ...
    def set_batch_default(self, endpoint: str, deployment: str) -> BatchEndpoint: ...
    def invoke_batch(self, endpoint: str, source: str, deployment: str | None = None) -> BatchJob:
        """Start a scoring job on source (a file, a URI or a data asset), follow it to its end."""
        ...
